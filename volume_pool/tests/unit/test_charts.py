"""The charts of the benchmark and the demo, drawn from small figures made
by hand (and from a short demo run): each is a PNG, and a part that did
not run draws none."""

import json
import sys

from oslo_db.sqlalchemy import enginefacade
import pytest

from volume_pool import manager
from volume_pool.bench import charts
from volume_pool.bench import cli
from volume_pool.bench import plot
from volume_pool.bench import report
from volume_pool.db import api as db_api
from volume_pool.tests.unit import test_bench_scale as scale_tests


def _level(callers, p50, p99, floor):
    return {'callers': callers, 'floor_ms': floor,
            'claim': {'p50_ms': p50, 'p95_ms': p99, 'p99_ms': p99}}


def _results():
    return {
        'claim': [
            {'backend': 'mysql', 'label': 'MariaDB',
             'levels': [_level(1, 5.0, 9.5, 1.8),
                        _level(8, 27.5, 41.1, 13.8)]},
            {'backend': 'sqlite', 'label': 'SQLite',
             'levels': [_level(1, 9.3, 53.3, 1.6),
                        _level(8, 33.6, 125, 10.2)]},
        ],
        'refill': {
            'size': 6, 'concurrency': 2, 'creation_delay_s': 1.0,
            'wall_s': 3.4, 'ideal_s': 3.0, 'over_ideal': 1.13,
            'serial_wall_s': 6.5, 'serial_ideal_s': 6.0,
            'speedup_vs_serial': 1.9,
            'level_trace': [[0.0, 0], [1.1, 2], [2.2, 4], [3.4, 6]],
            'serial_level_trace': [[0.0, 0]] + [
                [1.05 * n + 0.2, n] for n in range(1, 7)]},
        'hit_rate': [
            {'target': target, 'claims': 40, 'hits': hits,
             'hit_rate': hits / 40, 'avg_ready': target * 0.7,
             'bursts': 2, 'burst': 20, 'gap_s': 8.0}
            for target, hits in ((5, 18), (20, 40))],
    }


def _assert_png(path):
    with open(path, 'rb') as png:
        data = png.read()
    assert data.startswith(b'\x89PNG')
    assert len(data) > 1000


def test_every_part_that_ran_gets_its_chart(tmp_path):
    paths = charts.draw(_results(), str(tmp_path / 'charts'))
    assert sorted(p.rsplit('/', 1)[-1] for p in paths) == [
        'claim-latency.png', 'hit-rate.png', 'refill.png']
    for path in paths:
        _assert_png(path)


def test_refill_without_a_level_trace_draws_its_times(tmp_path):
    results = _results()
    for key in ('level_trace', 'serial_level_trace'):
        del results['refill'][key]
    fig = charts.refill(results)
    assert fig is not None
    [path] = charts.draw({'refill': results['refill']}, str(tmp_path))
    _assert_png(path)


@pytest.mark.parametrize('missing', ['claim', 'refill', 'hit_rate'])
def test_a_part_that_did_not_run_draws_no_chart(tmp_path, missing):
    results = _results()
    del results[missing]
    paths = charts.draw(results, str(tmp_path))
    assert len(paths) == 2
    drawn = sorted(p.name for p in tmp_path.iterdir())
    assert drawn == sorted(p.rsplit('/', 1)[-1] for p in paths)


def test_charts_are_drawn_again_from_a_json(tmp_path, capsys):
    path = tmp_path / 'run.json'
    path.write_text(json.dumps({'hit_rate': _results()['hit_rate']}))
    assert charts.main([str(path)]) == 0
    drawn = tmp_path / 'run-charts' / 'hit-rate.png'
    assert capsys.readouterr().out.split() == [str(drawn)]
    _assert_png(drawn)


def test_no_part_no_chart_and_no_directory(tmp_path):
    assert charts.draw({'settings': {}}, str(tmp_path / 'none')) == []
    assert not (tmp_path / 'none').exists()


def _without_matplotlib(monkeypatch):
    for name in list(sys.modules):
        if name == 'matplotlib' or name.startswith('matplotlib.'):
            monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, 'matplotlib', None)


def test_without_matplotlib_one_line_says_how_to_get_it(monkeypatch,
                                                        tmp_path):
    _without_matplotlib(monkeypatch)
    assert not plot.available()
    with pytest.raises(plot.Unavailable) as caught:
        charts.draw(_results(), str(tmp_path))
    assert str(caught.value) == (
        "charts need matplotlib: pip install 'volume-pool[bench]'")
    assert list(tmp_path.iterdir()) == []


def test_bench_charts_go_beside_the_json_unless_told(capsys):
    assert charts.directory_beside('bench-results/bench-1.json') == (
        'bench-results/bench-1-charts')
    args = cli.parse_cli(['--quick', '--charts', 'pictures'])
    assert (args.charts, args.no_charts) == ('pictures', False)
    assert cli.parse_cli(['--no-charts']).no_charts is True


# The parts of the benchmark that need no RabbitMQ, at tiny sizes.
TINY = ['--only', 'refill,hitrate', '--creation-delay', '0.05',
        '--poll-interval', '0.01', '--replenish-interval', '0.05',
        '--refill-size', '2', '--concurrency', '2', '--hit-targets', '2',
        '--bursts', '1', '--burst', '2', '--gap', '0.05']


@pytest.fixture
def bench_process(conf, monkeypatch):
    """What volume-pool-bench would have as a process of its own: an
    engine (it configures it on its SQLite file) and no RabbitMQ to ask
    for its version."""
    monkeypatch.setattr(db_api, 'context_manager',
                        enginefacade.transaction_context())
    monkeypatch.setattr(report, 'machine', lambda: {'nproc': 2})
    yield
    db_api.context_manager.dispose_pool()


def test_bench_draws_its_charts_beside_its_json(bench_process, tmp_path):
    path = tmp_path / 'results' / 'tiny.json'
    assert cli.main(TINY + ['--json', str(path)]) == 0
    with open(path) as written:
        results = json.load(written)
    assert results['refill']['level_trace'][-1][1] == 2
    drawn = tmp_path / 'results' / 'tiny-charts'
    assert sorted(p.name for p in drawn.iterdir()) == [
        'hit-rate.png', 'refill.png']  # no claims ran: no claim chart
    for png in drawn.iterdir():
        _assert_png(png)


def test_bench_without_charts_draws_none(bench_process, tmp_path):
    path = tmp_path / 'tiny.json'
    assert cli.main(['--only', 'refill', *TINY[2:], '--json', str(path),
                     '--no-charts']) == 0
    assert [p.name for p in tmp_path.iterdir()] == ['tiny.json']


def test_demo_chart_shows_the_pools_over_the_run(console, monkeypatch,
                                                 tmp_path):
    # The manager's periodic spacing is read when its module is imported:
    # in this process, before the demo's config (replenish every 1 s).
    monkeypatch.setitem(manager.Manager._periodic_spacing, 'replenish', 1)
    path = tmp_path / 'out' / 'demo.png'
    result = console('volume-pool-demo', '--creation-delay', '0.1',
                     '--claims', '1', '--state-dir', str(tmp_path / 'state'),
                     '--chart', str(path), own_manager=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'Chart of the pool levels: %s' % path in result.stdout
    _assert_png(path)


def test_demo_chart_without_matplotlib_stops_before_the_run(
        console, monkeypatch, tmp_path):
    _without_matplotlib(monkeypatch)
    result = console('volume-pool-demo', '--chart', str(tmp_path / 'd.png'))
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].endswith(
        "charts need matplotlib: pip install 'volume-pool[charts]'")
    assert result.stdout == ''


def test_scale_chart_is_drawn_from_the_one_manager_points(tmp_path):
    point = scale_tests.grid_point
    results = {'scale': {'grid': [point(10, 1), point(10, 3),
                                  point(100, 1)]}}
    fig = charts.scale_sync(results)
    ax = fig.axes[0]
    # Two figures x two paths, each at the two pool counts with one
    # manager.
    assert [list(line.get_xdata()) for line in ax.lines] == [[10, 100]] * 4
    assert list(ax.lines[1].get_ydata()) == [20, 200]   # per-pool DB
    assert ax.get_yscale() == 'log'
    paths = charts.draw(results, str(tmp_path))
    assert [p.rsplit('/', 1)[1] for p in paths] == ['scale-sync.png']
    assert charts.scale_sync({'sync': []}) is None
