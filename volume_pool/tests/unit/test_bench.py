"""volume-pool-bench's pieces at tiny sizes, on SQLite and the Cinder
simulator: structure and sanity of the figures, never their timings.  The
claim bench on a real manager process and the CPU meter of processes run
in the functional layer."""

import json

import pytest
import sqlalchemy as sa

from volume_pool.bench import claim
from volume_pool.bench import cli
from volume_pool.bench import hitrate
from volume_pool.bench import measure
from volume_pool.bench import profile
from volume_pool.bench import refill
from volume_pool.bench import report
from volume_pool.bench import services as bench_services
from volume_pool.bench import sync
from volume_pool.db import api as db_api
from volume_pool.fixtures import cinder_handles
from volume_pool.fixtures.simulator import server as sim_server


def test_uniqueness_check_names_every_duplicate():
    assert measure.check_unique(['a', 'b', 'c']) == 3
    with pytest.raises(measure.DuplicateClaim) as caught:
        measure.check_unique(['a', 'b', 'a', 'c', 'b'])
    assert '2 volume(s)' in str(caught.value)
    assert 'a, b' in str(caught.value)


def test_summary_orders_percentiles_and_counts_calls():
    durations, results, wall = measure.run_concurrently(
        lambda i: i * 2, 50, 4)
    assert results == [i * 2 for i in range(50)]
    figures = measure.summarize(durations, wall)
    assert figures['count'] == 50
    assert figures['p50_ms'] <= figures['p95_ms'] <= figures['p99_ms']
    assert measure.percentile([], 0.5) is None


def test_simulator_sends_headers_and_body_without_nagle_delay():
    assert sim_server.Handler.disable_nagle_algorithm is True


def test_sync_counts_requests_beside_one_get_per_volume(database,
                                                        simulator):
    cinder = cinder_handles.make_cinder(
        simulator.endpoint, simulator.project_id, page_size=5)
    figures = sync.run(simulator, cinder, [10], latencies=(0.0, 1.0),
                       repeats=2)
    assert [f['api_latency_ms'] for f in figures] == [0.0, 1.0]
    for result in figures:
        # Two full pages, and an empty third: no count is asked of
        # Cinder (it would count again for every page).
        assert result['sync_requests'] == 3
        assert result['baseline_requests'] == 10
        assert result['request_ratio'] == 3.3
    # The latency is taken off again afterwards.
    assert simulator._faults == []
    assert len(db_api.get_rows(None, pool='sync-10')) == 10


def test_hit_rate_trace_claims_through_the_claimer(database, simulator):
    cinder = cinder_handles.make_cinder(simulator.endpoint,
                                        simulator.project_id)
    [figures] = hitrate.run(simulator, cinder, [2], concurrency=2,
                            poll_interval=0.01, interval=0.05, bursts=1,
                            burst=3, gap=0.05)
    assert figures['claims'] == 3
    # The trace starts from a full pool of 2.
    assert figures['hits'] >= 2
    assert figures['avg_ready'] > 0


def test_refill_records_the_level_as_it_rises(database, simulator):
    cinder = cinder_handles.make_cinder(simulator.endpoint,
                                        simulator.project_id)
    figures = refill.run(simulator, cinder, 3, concurrency=2, delay=0.0,
                         poll_interval=0.01, interval=0.05)
    for key in ('level_trace', 'serial_level_trace'):
        times = [t for t, _ in figures[key]]
        levels = [level for _, level in figures[key]]
        assert times == sorted(times)
        # Nothing claims: one point per rise of the level, up to full.
        assert levels == sorted(set(levels))
        assert levels[-1] == 3
    assert figures['level_trace'][-1][0] <= figures['wall_s'] + 0.01


def test_report_checks_targets_and_writes_json(tmp_path):
    results = {
        'settings': {'creation_delay': 1.0},
        'sync': [{'volumes': 10000, 'api_latency_ms': 10.0,
                  'sync_requests': 11, 'sync_wall_s': 1.0,
                  'baseline_requests': 10000, 'baseline_wall_s': 100.0,
                  'request_ratio': 909.1, 'speedup': 100.0}],
        'refill': {'size': 50, 'concurrency': 4, 'creation_delay_s': 1.0,
                   'wall_s': 13.5, 'ideal_s': 13.0, 'over_ideal': 1.04,
                   'serial_wall_s': 52.0, 'speedup_vs_serial': 3.9}}
    results['targets'] = report.targets(results)
    met = {c['target'].split(':')[-1].strip(): c['met']
           for c in results['targets']}
    assert met == {'Cinder requests': False,
                   'speed-up over one GET per volume': True,
                   'refill of 50 / (ceil(50/4) x L)': True}
    assert 'Sync of one pool' in report.render(results)
    path = report.write_json(results, str(tmp_path / 'out' / 'b.json'))
    with open(path) as written:
        assert json.load(written)['sync'][0]['volumes'] == 10000


def test_cli_quick_sets_short_sizes_and_rejects_bad_input(capsys):
    args = cli.parse_cli(['--quick', '--sync-sizes', '7'])
    assert args.sync_sizes == [7]
    assert args.calls == cli.QUICK['calls']
    with pytest.raises(SystemExit):
        cli.parse_cli(['--backends', 'oracle'])
    assert 'choose from' in capsys.readouterr().err


def _frames(*paths):
    return ['thread (12)'] + ['f (%s:1)' % path for path in paths]


def test_profile_splits_samples_by_the_first_library_under_the_claim():
    endpoint = 'volume_pool/api_endpoint.py'
    collapsed = [
        # Receiving and replying: outside the endpoint, whatever it calls.
        ';'.join(_frames('oslo_messaging/rpc/server.py',
                         'sqlalchemy/engine/base.py')) + ' 4',
        # The claim's transaction, entered through volume_pool code.
        ';'.join(_frames('oslo_messaging/rpc/server.py', endpoint,
                         'volume_pool/claims.py', 'volume_pool/db/claims.py',
                         'sqlalchemy/engine/base.py')) + ' 3',
        # The rename: cinderclient first, so requests' logging is Cinder's.
        ';'.join(_frames(endpoint, 'volume_pool/claims.py',
                         '/venv/lib/site-packages/cinderclient/client.py',
                         'logging/__init__.py')) + ' 2',
        ';'.join(_frames(endpoint, 'logging/__init__.py')) + ' 1',
        'a line that is no sample',
    ]
    assert profile.shares(collapsed) == {
        'rpc dispatch': 0.4, 'database': 0.3, 'cinder call': 0.2,
        'bookkeeping': 0.1}
    assert profile.shares(['a line that is no sample']) is None


def _level(callers, p50, p99, cpu_over_rpc):
    return {'callers': callers, 'p50_over_safe_floor': p50,
            'p99_over_safe_floor': p99, 'cpu_over_rpc': cpu_over_rpc}


def test_claim_targets_judge_latency_alone_and_at_most_callers_and_cpu():
    """Over the floor of a safe claim: p50 alone (1.3) and at the most
    callers (1.5), p99 at the most callers (2.5), the manager's CPU at
    the most callers (3x); the levels in between are shown, not
    judged."""
    results = {'claim': [{
        'backend': 'mysql', 'label': 'MariaDB',
        'levels': [_level(1, 1.3, 9.0, 9.0), _level(8, 9.0, 9.0, 9.0),
                   _level(32, 1.51, 2.5, 3.01)]}]}
    safe = '(RPC floor + rename + one commit)'
    met = {c['target']: c['met'] for c in report.targets(results)}
    assert met == {
        'claim p50 / %s, MariaDB, 1 caller' % safe: True,
        'claim p50 / %s, MariaDB, 32 callers' % safe: False,
        'claim p99 / %s, MariaDB, 32 callers' % safe: True,
        'manager CPU per claim / per empty RPC, MariaDB, 32 callers': False,
    }


def test_a_run_without_the_commit_floor_meets_no_latency_target():
    """Figures of a run before the commit floor was measured: the
    latency targets are unmeasured (None), not met."""
    results = {'claim': [{'backend': 'mysql', 'label': 'MariaDB',
                          'levels': [{'callers': 1, 'p50_over_floor': 1.0,
                                      'p99_over_floor': 1.0,
                                      'cpu_over_rpc': 1.0}]}]}
    checks = {c['target']: c['met'] for c in report.targets(results)}
    assert [met for target, met in checks.items()
            if target.startswith('claim p')] == [None, None]


def test_report_shows_the_waiting_rpc_and_the_phases():
    results = {
        'rpc_wait': [{'wait_ms': 0, 'calls': 5, 'call_ms': 1.2,
                      'server_cpu_ms': 0.6},
                     {'wait_ms': 10, 'calls': 5, 'call_ms': 11.5,
                      'server_cpu_ms': 1.3}],
        'claim': [{'backend': 'mysql', 'label': 'MariaDB', 'levels': [{
            'callers': 1, 'p50_over_floor': 2.0, 'p99_over_floor': 2.0,
            'cpu_over_rpc': 3.0, 'flame_graph': 'p/claim-mysql-1.svg',
            'manager_cpu_ms_by_phase': {
                'rpc dispatch': 0.9, 'database': 1.4, 'cinder call': 0.5,
                'bookkeeping': 0.2}}]}]}
    lines = report.render({'rpc_wait': results['rpc_wait']}).splitlines()
    assert lines[-1].split() == ['10', '11.5', '1.30']
    phases = report._phase_rows(results)
    assert phases == [['MariaDB', 1, 0.9, 1.4, 0.5, 0.2,
                       'p/claim-mysql-1.svg']]


def test_the_commit_floor_commits_each_call_once_and_cleans_up(tmp_path):
    url = 'sqlite:///%s' % (tmp_path / 'floor.sqlite')
    floor = claim.CommitFloor(url)
    summary = floor.measure(10, 2)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = dict(conn.execute(sa.text(
                'SELECT id, n FROM %s' % claim.COMMIT_TABLE)).all())
        # Each caller its own row; two warm-up calls each beside the ten.
        assert rows == {0: 7, 1: 7}
        assert summary['count'] == 10 and summary['p50_ms'] > 0
        floor.close()
        assert claim.COMMIT_TABLE not in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_a_driver_replaces_the_one_of_the_url_and_nothing_else():
    url = 'mysql+pymysql://root:secret@127.0.0.1:3306/vp_bench_x'
    assert bench_services.with_driver(url, 'mysqldb') == (
        'mysql+mysqldb://root:secret@127.0.0.1:3306/vp_bench_x')
    assert bench_services.with_driver(url, None) == url


def test_the_driver_option_names_a_known_driver_of_a_known_backend(capsys):
    args = cli.parse_cli(['--driver', 'mysql=mysqldb',
                          '--driver', 'postgresql=psycopg'])
    assert dict(args.driver) == {'mysql': 'mysqldb',
                                 'postgresql': 'psycopg'}
    for bad in ('mysql=psycopg', 'oracle=cx', 'mysql'):
        with pytest.raises(SystemExit):
            cli.parse_cli(['--driver', bad])
        assert '--driver' in capsys.readouterr().err
