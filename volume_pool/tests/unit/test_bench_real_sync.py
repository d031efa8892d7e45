"""The real-Cinder sync benchmark's arguments and the readings it takes
off logs and CPU samples (the run itself needs a real Cinder)."""

import datetime
import random

import pytest

from volume_pool import cinder as vp_cinder
from volume_pool.bench import real_sync

MANAGER_LOG = """\
2026-12-07 12:00:00.100 42 INFO volume_pool.manager [-] Manager rs-m0 \
registered as incarnation x.
2026-12-07 12:00:00.500 42 DEBUG oslo_service.periodic_task [-] Running \
periodic task Manager.sync run_periodic_tasks /p/periodic_task.py:210
2026-12-07 12:00:09.000 42 INFO volume_pool.manager [-] Sync: ready=0, \
adopted=0, removed=0, deleted=0, released=0, retagged=0, errors=0
2026-12-07 12:00:10.000 42 DEBUG oslo_service.periodic_task [-] Running \
periodic task Manager.replenish run_periodic_tasks /p/periodic_task.py:210
2026-12-07 12:01:00.500 42 DEBUG oslo_service.periodic_task [-] Running \
periodic task Manager.sync run_periodic_tasks /p/periodic_task.py:210
2026-12-07 12:01:00.900 42 INFO volume_pool.sync [-] Sync of cluster c \
lists the changes: 17 volumes changed since 2026-12-07T11:59:00.
2026-12-07 12:01:01.250 42 INFO volume_pool.manager [-] Sync: ready=0, \
adopted=0, removed=0, deleted=0, released=0, retagged=0, errors=0
"""

API_LOG = """\
2026-12-07 12:01:00.800 7 INFO eventlet.wsgi.server [None req-a \
volume-pool p - - - -] 127.0.0.1 "GET /v3/p/volumes/detail?limit=1000&\
metadata=x&updated_at=gte%3A2026 HTTP/1.1" status: 200  len: 900 \
time: 0.2500000
2026-12-07 12:01:01.000 7 INFO eventlet.wsgi.server [req-b req-c \
bench-probe p - - - -] 127.0.0.1 "GET /v3/p/volumes/0a1b2c3d-0000-0000-\
0000-000000000000 HTTP/1.1" status: 200  len: 1300 time: 0.0140000
2026-12-07 12:01:01.100 7 INFO cinder.api.openstack.wsgi [None req-d \
volume-pool p - - - -] something else
"""


def _at(text):
    return datetime.datetime.strptime(
        text, '%Y-%m-%d %H:%M:%S.%f').timestamp()


def test_cli_defaults_are_the_target_scale_and_reject_bad_input():
    args = real_sync.parse_cli([])
    assert (args.pool_volumes, args.other_volumes, args.pools,
            args.managers) == (20000, 80000, 1000, 3)
    assert args.modes == ['after', 'before']
    assert args.stagger == args.sync_interval / 3
    args = real_sync.parse_cli(['--pool-volumes', '200', '--pools', '10',
                                '--other-volumes', '0', '--modes', 'after',
                                '--sync-interval', '20', '--stagger', '0'])
    assert args.modes == ['after'] and args.stagger == 0
    for bad in (['--modes', 'sideways'], ['--pools', '0'],
                ['--pool-volumes', '10', '--pools', '20'],
                ['--churn', '-1'], ['--pool-volumes', '5', '--pools', '1',
                                    '--churn', '6']):
        with pytest.raises(SystemExit):
            real_sync.parse_cli(bad)


def test_sync_runs_go_from_the_periodic_task_to_the_sync_line():
    runs = real_sync.sync_runs(MANAGER_LOG)
    assert [(r['kind'], r['changed'], r['wall_s']) for r in runs] == [
        ('full', None, 8.5), ('changes', 17, 0.75)]
    assert runs[1]['start'] == _at('2026-12-07 12:01:00.500')


def test_api_requests_are_the_access_lines_with_their_user_and_time():
    found = real_sync.api_requests(API_LOG)
    assert [(r['user'], r['method'], r['status']) for r in found] == [
        ('volume-pool', 'GET', 200), ('bench-probe', 'GET', 200)]
    assert found[0]['time_s'] == 0.25
    assert found[0]['start'] == pytest.approx(
        _at('2026-12-07 12:01:00.800') - 0.25)
    later = real_sync.api_requests(API_LOG, start=_at(
        '2026-12-07 12:01:00.900'))
    assert [r['user'] for r in later] == ['bench-probe']
    assert real_sync._path_counts(found) == {
        'list changes': 1, 'GET /v3/p/volumes/{id}': 1}


def test_probes_split_by_the_sync_they_met():
    windows = [(10.0, 12.0)]
    assert real_sync.overlaps(9.5, 0.6, windows)
    assert not real_sync.overlaps(12.1, 0.1, windows)
    split = real_sync.split_probes(
        [(5.0, 0.01), (11.0, 0.05), (13.0, 0.02)], windows, [(11.0, 11.5)])
    assert split['during_sync']['count'] == 1
    assert split['during_sync']['p95_ms'] == 50.0
    assert split['between_syncs']['count'] == 2
    assert split['during_listing']['count'] == 1


def test_cpu_is_interpolated_between_samples():
    samples = [(0.0, {'a': 1.0, 'b': 0.0}), (1.0, {'a': 2.0, 'b': 1.0}),
               (3.0, {'a': 2.0, 'b': 5.0})]
    assert real_sync.cpu_at(samples, 0.5, ['a']) == 1.5
    assert real_sync.cpu_at(samples, 2.0, ['a', 'b']) == 5.0
    assert real_sync.cpu_at(samples, -1.0, ['a']) == 1.0
    assert real_sync.cpu_at(samples, 9.0, ['b']) == 5.0


def test_cinder_rows_copy_the_template_and_tag_only_pool_volumes():
    rows = real_sync.plan_rows(['p0', 'p1'], 5, 'snap', 'c')
    template = {'id': 't', 'display_name': 'template', 'size': 1,
                'status': 'available', 'created_at': None}
    now = datetime.datetime(2026, 12, 7, 12, 0, 0)
    volumes, metadata = real_sync.cinder_rows(
        template, rows, 3, 'dep', now, rng=random.Random(1))
    assert len(volumes) == 8 and len({v['id'] for v in volumes}) == 8
    assert all(v['status'] == 'available' and v['created_at'] < now
               for v in volumes)
    assert len(metadata) == 4 * 5
    by_volume = {}
    for item in metadata:
        by_volume.setdefault(item['volume_id'], {})[item['key']] = (
            item['value'])
    for row in rows:
        assert by_volume[row['volume_id']] == vp_cinder.pool_tags(
            row['pool'], 'c', row['request_id'], 'dep')
    names = {v['id']: v['display_name'] for v in volumes}
    assert all(names[row['volume_id']] == row['name'] for row in rows)


def test_targets_are_judged_on_the_after_mode():
    results = {'idle_probe': {'p95_ms': 20.0}, 'modes': [
        {'mode': 'after', 'cinder_api_db_cpu_s_per_interval': 1.5,
         'sync_wall_s': {'max': 3.5},
         'probes': {'during_sync': {'p95_ms': 30.0},
                    'between_syncs': {'p95_ms': 10.0}}},
        {'mode': 'before', 'cinder_api_db_cpu_s_per_interval': 40.0,
         'sync_wall_s': {'max': 30.0}}]}
    checks = real_sync.targets(results)
    assert [(c['measured'], c['met']) for c in checks] == [
        (1.5, True), (3.5, False), (1.5, True), (3.0, False)]


def test_background_is_read_in_chunks():
    samples = [(0.0, {'a': 0.0}), (10.0, {'a': 1.0}), (20.0, {'a': 4.0})]
    assert real_sync.chunk_rates(samples, 10.0) == {'a': [6.0, 18.0]}
