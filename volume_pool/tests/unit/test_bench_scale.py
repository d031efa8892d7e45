"""volume-pool-bench's scale part at tiny sizes, on SQLite and the Cinder
simulator, without a coordination backend: that it counts what really
happened, never its timings."""

import threading

import pytest

from volume_pool.bench import cli
from volume_pool.bench import report
from volume_pool.bench import scale
from volume_pool.db import api as db_api
from volume_pool.fixtures import cinder_handles


def test_done_twice_counts_pools_in_two_shares_and_checks_the_union():
    assert scale.done_twice([{'a', 'b'}, {'c'}], 'abc') == (0, True)
    assert scale.done_twice([{'a', 'b'}, {'b'}, {'b', 'c'}],
                            'abcd') == (1, False)
    assert scale.done_twice([{'a'}, {'a'}, {'a'}], 'a') == (1, True)


def test_volumes_spread_evenly_and_pools_deal_round_the_clusters():
    assert scale.spread(7, 3) == [3, 2, 2]
    assert sum(scale.spread(20000, 1000)) == 20000
    names = scale.pool_names(6, 4)
    assert [len(names[k]) for k in range(4)] == [2, 2, 1, 1]
    assert len({p for k in names for p in names[k]}) == 6


def test_grid_has_four_clusters_only_at_the_largest_pool_count():
    assert scale.grid_points([1, 100, 1000]) == [
        (1, 1, 1), (1, 1, 3), (100, 1, 1), (100, 1, 3), (1000, 1, 1),
        (1000, 1, 3), (1000, 4, 1), (1000, 4, 3)]
    assert scale.grid_points([2]) == [(2, 1, 1), (2, 1, 3)]


def test_counted_sees_only_the_calling_threads_statements(database,
                                                          simulator):
    other = threading.Thread(target=lambda: db_api.count_by_pool(None))
    with scale.counted(simulator) as figures:
        db_api.count_by_pool(None)
        db_api.pool_names(None)
        other.start()
        other.join()
    assert figures['db_statements'] == 2
    assert figures['coordination_round_trips'] == 0
    assert figures['cinder_requests'] == 0
    assert figures['wall_s'] >= 0 and figures['cpu_s'] >= 0


def test_counted_counts_redis_packets_of_tasks_the_caller_submitted(
        database, monkeypatch):
    from redis import connection
    from tooz import utils as tooz_utils
    monkeypatch.setattr(connection.AbstractConnection,
                        'send_packed_command', lambda self, *a, **k: None)

    def send():
        connection.AbstractConnection.send_packed_command(None, b'PING')
    original = tooz_utils.ProxyExecutor.__dict__['submit']
    executor = tooz_utils.ProxyExecutor.build('redis', {})
    executor.start()
    try:
        with scale.counted() as figures:
            send()
            executor.submit(send).result()   # tooz's way: for the caller
            executor.submit(send).result()
            heart = threading.Thread(target=send)   # a heartbeat: not
            heart.start()
            heart.join()
        send()   # afterwards: not counted either
    finally:
        executor.stop()
    assert figures['coordination_round_trips'] == 3
    assert tooz_utils.ProxyExecutor.__dict__['submit'] is original


def test_a_grid_point_seeds_every_volume_and_counts_what_cinder_saw(
        database, simulator, tmp_path):
    point = scale.measure_point(simulator, str(tmp_path), pools=3,
                                volumes=7, clusters=1, managers=1,
                                run_id='t')
    assert point['seeded_rows'] == 7
    # The rows stay (the simulator's volumes are removed afterwards).
    assert len(db_api.get_rows(point['managers'][0]['cluster'])) == 7
    assert simulator.list_volumes() == []
    # The per-pool path ran last: its count is the simulator's.
    per_pool = point['per_pool']
    assert per_pool['cinder_requests'] == sum(
        simulator.request_counts.values()) == 3
    assert per_pool['pools'] == 3 and per_pool['changed'] == {}
    (mgr,) = point['managers']
    # Every pool full: replenish asks Cinder nothing.
    assert mgr['replenish']['cinder_requests'] == 0
    assert mgr['replenish']['db_statements'] >= 1
    assert mgr['sync_run']['pools'] == 3
    assert mgr['sync_run']['changed'] == {}
    assert mgr['sync_run']['cinder_requests'] >= 1
    assert mgr['sync_task']['db_statements'] >= (
        mgr['sync_run']['db_statements'])
    for task in ('replenish', 'sync_run', 'sync_task'):
        assert mgr[task]['coordination_round_trips'] == 0
        assert point['worst'][task]['db_statements'] == (
            mgr[task]['db_statements'])
    assert point['pools_done_twice'] == {'replenish': 0, 'sync': 0}
    assert point['all_pools_covered'] == {'replenish': True, 'sync': True}


def test_managers_without_coordination_each_do_every_pool(
        database, simulator, tmp_path):
    point = scale.measure_point(simulator, str(tmp_path), pools=2,
                                volumes=2, clusters=2, managers=3,
                                run_id='u', per_pool=False)
    assert len(point['managers']) == 6
    assert {m['cluster'] for m in point['managers']} == {
        'scale-u-p2-c2-m3-0', 'scale-u-p2-c2-m3-1'}
    # No backend to share them out: each pool is done by its cluster's
    # three managers, and that is what the figure says.
    assert point['pools_done_twice'] == {'replenish': 2, 'sync': 2}
    assert point['all_pools_covered']['sync'] is True
    assert point['per_pool'] is None


def test_claim_p50_keeps_the_table_size_and_every_claim_hits(
        database, simulator, tmp_path):
    cinder = cinder_handles.make_cinder(simulator.endpoint,
                                        simulator.project_id)
    urls = ['sqlite:///%s' % (tmp_path / name) for name in ('s.db', 'l.db')]
    figures = scale.claim_p50(simulator, cinder, urls,
                              tables=((1, 3), (4, 3)), claims_each=4,
                              warmup=1, blocks=2)
    assert [f['rows'] for f in figures] == [3, 12]
    assert [f['rows_after'] for f in figures] == [3, 12]
    assert [f['misses'] for f in figures] == [0, 0]
    assert [f['claims'] for f in figures] == [4, 4]
    ratio = scale.claim_ratio(figures)
    assert ratio['rows_small'] == 3 and ratio['rows_large'] == 12
    assert ratio['ratio'] == round(figures[1]['p50_ms'] /
                                   figures[0]['p50_ms'], 3)


def test_cli_runs_scale_only_when_named():
    args = cli.parse_cli([])
    assert 'scale' not in args.only
    args = cli.parse_cli(['--only', 'scale', '--scale-pools', '1,10',
                          '--scale-volumes', '40', '--scale-backends',
                          'mysql', '--scale-idle-window', '0'])
    assert args.only == ['scale'] and args.scale_pools == [1, 10]
    assert args.scale_volumes == 40 and args.scale_backends == ['mysql']
    with pytest.raises(SystemExit):
        cli.parse_cli(['--scale-pools', '100', '--scale-volumes', '10'])


def grid_point(pools, managers, clusters=1, backend='mysql', run_db=4,
           run_cinder=20, twice=0, per_pool=None):
    def task(db, coord, cinder):
        return {'db_statements': db, 'coordination_round_trips': coord,
                'cinder_requests': cinder, 'wall_s': 0.1, 'cpu_s': 0.05}
    worst = {'replenish': task(2, 1, 0), 'sync_run': task(run_db, 1,
                                                          run_cinder),
             'sync_task': task(run_db + 5, 2, run_cinder + 1)}
    return {'backend': backend, 'label': 'MariaDB', 'pools': pools,
            'volumes': 20 * pools, 'clusters': clusters,
            'managers_per_cluster': managers, 'worst': worst,
            'pools_done_twice': {'replenish': twice, 'sync': twice},
            'all_pools_covered': {'replenish': True, 'sync': True},
            'per_pool': per_pool or (task(2 * pools, 0, pools)
                                     if managers == 1 else None)}


def test_scale_targets_and_tables():
    results = {'scale': {
        'grid': [grid_point(10, 1), grid_point(10, 3, twice=1),
                 grid_point(100, 1, run_db=40), grid_point(100, 3)],
        'claims': [{'backend': 'mysql', 'label': 'MariaDB',
                    'rows_small': 100, 'rows_large': 100000,
                    'p50_small_ms': 2.0, 'p50_large_ms': 2.2,
                    'ratio': 1.1}],
        'idle': {'label': 'MariaDB', 'pools': 1000, 'volumes': 20000,
                 'core_percent': 0.5, 'rss_mb_max': 160.0, 'cpu_s': 1.0,
                 'window_s': 150.0, 'warmup_s': 20.0,
                 'replenish_interval': 60, 'sync_interval': 300,
                 'syncs_logged': 1}}}
    checks = {c['target']: c for c in report.targets(results)}
    sync_db = [c for name, c in checks.items()
               if name.startswith('scale: Sync.run of 100 pools') and
               'DB statements' in name]
    assert [c['value'] for c in sync_db] == [40]
    assert sync_db[0]['met'] is False
    twice = [c for name, c in checks.items() if 'done twice' in name]
    assert [c['value'] for c in twice] == [1] and twice[0]['met'] is False
    rss = [c for name, c in checks.items() if 'idle' in name and 'RSS' in
           name]
    assert rss[0]['met'] is False
    ratio = [c for name, c in checks.items() if 'p50' in name]
    assert ratio[0]['value'] == 1.1 and ratio[0]['met'] is True
    text = report.render(dict(results, targets=list(checks.values())))
    assert 'cluster-wide vs per-pool' in text
    assert '100000' in text

