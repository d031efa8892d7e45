"""The shipped alert rules, read as YAML: one rule per alert the
monitoring page describes, with the page's expression and duration, and
a promtool test of each that fires and one that stays quiet (promtool
itself runs them in the functional layer)."""

import os
import re

import yaml

import volume_pool

TOP = os.path.dirname(os.path.dirname(volume_pool.__file__))
RULES_DIR = os.path.join(TOP, 'etc', 'prometheus')
MONITORING = os.path.join(TOP, 'doc', 'source', 'monitoring.rst')


def _yaml(name):
    with open(os.path.join(RULES_DIR, name)) as source:
        return yaml.safe_load(source)


def _rules():
    return {rule['alert']: rule
            for group in _yaml('volume-pool-alerts.yaml')['groups']
            for rule in group['rules']}


def documented_alerts():
    """``{alert: (PromQL, for)}`` of the page's alert table."""
    with open(MONITORING) as source:
        text = source.read()
    table = text.split('\nWhat to alert on\n', 1)[1].split('\nHealth\n', 1)[0]
    rows = re.findall(r'^   \* - ``(\w+)``\n     - ``(.+?)``\n     - (\S+)\n',
                      table, re.M)
    return {name: (expr, duration) for name, expr, duration in rows}


def _one_line(expr):
    return ' '.join(expr.split())


def test_one_rule_per_documented_alert_as_documented():
    documented = documented_alerts()
    assert len(documented) == 10
    shipped = {name: (_one_line(rule['expr']), rule.get('for', '-'))
               for name, rule in _rules().items()}
    assert shipped == documented


def test_every_rule_says_how_bad_and_what_to_do():
    for name, rule in _rules().items():
        assert rule['labels']['severity'] in ('critical', 'warning'), name
        assert set(rule['annotations']) == {'summary', 'description'}, name


def _cases(tests):
    """``{alert: [expected alerts of each evaluation]}``."""
    cases = {}
    for test in tests['tests']:
        for check in test['alert_rule_test']:
            cases.setdefault(check['alertname'], []).append(
                check.get('exp_alerts') or [])
    return cases


def test_each_alert_is_tested_firing_and_quiet():
    tests = _yaml('volume-pool-alerts-tests.yaml')
    # promtool reads rule_files relative to the test file: both ship in
    # one directory.
    assert tests['rule_files'] == ['volume-pool-alerts.yaml']
    cases = _cases(tests)
    assert set(cases) == set(_rules())
    for name, expected in cases.items():
        assert any(expected), (name, 'never fires')
        assert not all(expected), (name, 'never quiet')
