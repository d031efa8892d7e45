"""The Grafana dashboard, read as JSON: every panel draws one quantity on
one axis, in the unit Grafana is told, so no line sits flat at 0 beside
another counted in millions; and the panels do not overlap."""

import itertools
import json
import os
import re

import volume_pool

TOP = os.path.dirname(os.path.dirname(volume_pool.__file__))
DASHBOARD = os.path.join(TOP, 'etc', 'grafana', 'volume-pool-dashboard.json')

# Grafana unit ids that can show each quantity.
UNITS_OF = {
    'bytes': {'bytes', 'decbytes'},
    'cores': {'suffix: cores'},
    'seconds': {'s'},
    'per second': {'reqps', 'ops', 'cps'},
    'ratio': {'percentunit'},
    'count': {'short', 'none'},
}


def quantity(expr):
    """What a panel query measures, from its metric names and functions
    (the naming rules of Prometheus: base units in the suffix)."""
    if re.search(r'\brate\(process_cpu_seconds_total\b', expr):
        return 'cores'
    if re.search(r'_bytes\b', expr):
        return 'bytes'
    if expr.startswith('histogram_quantile(') and '_seconds_bucket' in expr:
        return 'seconds'
    if re.match(r'time\(\) - \w+_timestamp_seconds\b', expr):
        return 'seconds'
    if re.search(r'\) / sum\b', expr):
        return 'ratio'
    if re.search(r'\brate\(\w+_total\b', expr):
        return 'per second'
    return 'count'


def _dashboard():
    with open(DASHBOARD) as source:
        return json.load(source)


def mixed_panels(dashboard):
    """``{title: problem}`` of the panels whose queries measure several
    quantities, or one their unit cannot show."""
    problems = {}
    for panel in dashboard['panels']:
        quantities = {quantity(t['expr']) for t in panel['targets']}
        unit = panel['fieldConfig']['defaults'].get('unit')
        # A unit per series would put a second axis on the panel.
        per_series = [o for o in panel['fieldConfig']['overrides']
                      if any(p['id'] == 'unit' for p in o['properties'])]
        if len(quantities) != 1 or per_series:
            problems[panel['title']] = sorted(quantities)
        elif unit not in UNITS_OF[quantities.pop()]:
            problems[panel['title']] = unit
    return problems


def test_each_panel_draws_one_quantity_in_its_unit():
    assert mixed_panels(_dashboard()) == {}


def test_the_check_sees_bytes_and_cores_on_one_axis():
    """The memory-and-CPU panel as it was: the CPU line sat at 0."""
    panel = {'title': 'Manager memory and CPU',
             'fieldConfig': {'defaults': {'unit': 'short'}, 'overrides': []},
             'targets': [
                 {'expr': 'process_resident_memory_bytes{job=~"$job"}'},
                 {'expr': 'rate(process_cpu_seconds_total{job=~"$job"}'
                          '[5m])'}]}
    assert mixed_panels({'panels': [panel]}) == {
        'Manager memory and CPU': ['bytes', 'cores']}


def test_memory_and_cpu_are_drawn():
    units = {quantity(t['expr']): panel['fieldConfig']['defaults']['unit']
             for panel in _dashboard()['panels']
             for t in panel['targets']}
    assert units['bytes'] == 'bytes'
    assert units['cores'] == 'suffix: cores'


def _cells(panel):
    grid = panel['gridPos']
    return {(x, y) for x in range(grid['x'], grid['x'] + grid['w'])
            for y in range(grid['y'], grid['y'] + grid['h'])}


def test_panels_do_not_overlap_and_have_their_own_id():
    panels = _dashboard()['panels']
    assert len({panel['id'] for panel in panels}) == len(panels)
    for one, other in itertools.combinations(panels, 2):
        assert not _cells(one) & _cells(other), (one['title'],
                                                 other['title'])
        assert max(_cells(one))[0] < 24
