"""The whole manager against the Cinder simulator over real HTTP."""

import concurrent.futures
import re
import threading

import oslo_messaging as messaging
import pytest

from volume_pool import cinder as vp_cinder
from volume_pool import context as vp_context
from volume_pool import exception
from volume_pool import shrink
from volume_pool.db import api as db_api
from volume_pool.db import claims as db_claims
from volume_pool.db import managers as db_managers
from volume_pool.db import models
from volume_pool.fixtures import waiting

CTXT = vp_context.get_admin_context()


def call(endpoint_method, *args, ctxt=CTXT, **kwargs):
    """Call an RPC endpoint method as the dispatcher would, unwrapping the
    ExpectedException that marks a typed error for the caller."""
    try:
        return endpoint_method(ctxt, *args, **kwargs)
    except messaging.ExpectedException as wrapped:
        raise wrapped.exc_info[1]


wait_for = waiting.wait_for


def counts(pool='debian'):
    result = {}
    for by_status in db_api.count_by_pool(None).get(pool, {}).values():
        for status, count in by_status.items():
            result[status] = result.get(status, 0) + count
    return result


def ready(pool='debian'):
    return counts(pool).get(models.AVAILABLE, 0)


def fill(mgr, pool='debian', timeout=10.0):
    """Run replenish until the pool is full: one run creates at most
    ``max_creating`` volumes, and a pool backing off skips runs."""
    target = mgr.specs[pool].target

    def full():
        mgr.replenish(CTXT)
        return ready(pool) == target

    wait_for(full, timeout=timeout)


def tagged(simulator, pool='debian'):
    return [v for v in simulator.list_volumes()
            if v['metadata'].get(vp_cinder.TAG_POOL) == pool]


# -- replenish --------------------------------------------------------------

def test_replenish_fills_each_pool_to_target_with_tagged_volumes(
        make_manager, simulator):
    mgr = make_manager({'debian': 3, 'windows': 2})
    fill(mgr, 'debian')
    wait_for(lambda: ready('windows') == 2)
    volumes = tagged(simulator, 'debian')
    assert len(volumes) == 3
    for volume in volumes:
        assert volume['snapshot_id'] == mgr.snapshots['debian']
        assert volume['status'] == 'available'
        assert volume['metadata'][vp_cinder.TAG_REQUEST]
    rows = db_api.get_rows(None, pool='debian')
    assert {r.volume_id for r in rows} == {v['id'] for v in volumes}
    # A second run creates nothing: no overshoot (a run reserves the rows
    # of its creates before it returns).
    mgr.replenish(CTXT)
    assert counts() == {models.AVAILABLE: 3}
    assert len(tagged(simulator, 'debian')) == 3


def test_replenish_of_full_pools_reads_the_counts_once(
        make_manager, simulator, monkeypatch):
    mgr = make_manager({'debian': 1, 'windows': 1, 'ubuntu': 1})
    for pool in ('debian', 'windows', 'ubuntu'):
        fill(mgr, pool)
    reads, locks, rereads = [], [], []
    monkeypatch.setattr(db_api, 'count_by_pool', record(
        db_api.count_by_pool, reads))
    monkeypatch.setattr(db_api, 'reserve_creates', record(
        db_api.reserve_creates, rereads))
    monkeypatch.setattr(mgr.coordination, 'pool_lock', record(
        mgr.coordination.pool_lock, locks))
    mgr.replenish(CTXT)
    assert (len(reads), len(locks), len(rereads)) == (1, 0, 0)
    # A claim empties one pool: only that pool is locked and re-read,
    # under its lock in the database.
    call(mgr.claim, 'windows')
    mgr.replenish(CTXT)
    assert len(reads) == 2
    assert [args[0] for args in locks] == ['windows']
    assert [args[1] for args in rereads] == ['windows']
    wait_for(lambda: ready('windows') == 1)


def record(function, calls):
    def recorded(*args, **kwargs):
        calls.append(args)
        return function(*args, **kwargs)
    return recorded


def test_replenish_counts_creating_volumes(make_manager, simulator):
    simulator.creation_delay = 0.5
    mgr = make_manager({'debian': 4})
    mgr.replenish(CTXT)
    mgr.replenish(CTXT)  # while the first four are still creating
    wait_for(lambda: ready() == 4)
    assert len(tagged(simulator)) == 4


def test_cinder_errors_do_not_crash_replenish_and_are_retried(
        make_manager, simulator):
    mgr = make_manager({'debian': 2}, backoff_initial=0.1)
    simulator.inject_fault(status=500, method='POST', path='^/volumes$',
                           count=1)
    simulator.inject_fault(status=413, method='POST', path='^/volumes$',
                           count=1)
    mgr.replenish(CTXT)  # both creates fail, the task returns normally
    wait_for(lambda: counts().get(models.CREATING, 0) <= 1)
    mgr.sync(CTXT)  # settles the row whose create got a 500
    assert ready() == 0
    fill(mgr)  # the next run succeeds
    assert len(tagged(simulator)) == 2


def test_volume_that_ends_in_error_is_deleted_and_replaced(
        make_manager, simulator, frozen_time):
    mgr = make_manager({'debian': 2})
    simulator.fail_next_creates(1)
    mgr.replenish(CTXT)
    settle(mgr)  # one ready, one in error (the backoff counted it)
    assert ready() == 1
    mgr.sync(CTXT)
    wait_for(lambda: not [v for v in simulator.list_volumes()
                          if v['status'] == 'error'])
    frozen_time(4)  # past the backoff: 2 s, jitter up to 2 s
    fill(mgr)


# -- claim ------------------------------------------------------------------

def test_claim_hands_over_a_ready_volume(make_manager, simulator):
    mgr = make_manager({'debian': 2})
    fill(mgr)
    result = call(mgr.claim, 'debian', name='vnf-1-root')
    assert result['source'] == 'pool'
    assert result['status'] == 'available'
    assert result['name'] == 'vnf-1-root'
    assert result['snapshot_id'] == mgr.snapshots['debian']
    volume = simulator.get_volume(result['volume_id'])
    assert volume['name'] == 'vnf-1-root'
    assert vp_cinder.TAG_POOL not in volume['metadata']
    assert result['volume_id'] not in {
        r.volume_id for r in db_api.get_rows(None)}
    fill(mgr)  # the pool refills


def test_claim_on_miss_creates_or_fails_typed(make_manager, simulator):
    mgr = make_manager({'debian': 0})
    with pytest.raises(exception.PoolEmpty):
        call(mgr.claim, 'debian', create_on_miss=False)
    result = call(mgr.claim, 'debian', name='vnf-2')
    assert result['source'] == 'created'
    volume = simulator.get_volume(result['volume_id'])
    assert volume['name'] == 'vnf-2'
    assert vp_cinder.TAG_POOL not in volume['metadata']
    assert db_api.get_rows(None) == []


def test_50_concurrent_claims_get_distinct_volumes(make_manager, simulator):
    mgr = make_manager({'debian': {'target': 30, 'max_miss_creates': 20}},
                       create_concurrency=8)
    fill(mgr)
    barrier = threading.Barrier(50)

    def one(n):
        barrier.wait()
        return call(mgr.claim, 'debian', name='vnf-%d' % n)

    with concurrent.futures.ThreadPoolExecutor(50) as executor:
        results = list(executor.map(one, range(50)))
    ids = [r['volume_id'] for r in results]
    assert len(set(ids)) == 50
    sources = [r['source'] for r in results]
    assert sources.count('pool') == 30
    assert sources.count('created') == 20
    assert ready() == 0
    assert counts().get(models.CLAIMING, 0) == 0


@pytest.mark.parametrize('kwargs, error', [
    ({'snapshot_type': ''}, exception.InvalidClaimRequest),
    ({'snapshot_type': 42}, exception.InvalidClaimRequest),
    ({'snapshot_type': 'debian', 'name': 'x' * 256},
     exception.InvalidClaimRequest),
    ({'snapshot_type': 'debian', 'create_on_miss': 'yes'},
     exception.InvalidClaimRequest),
    ({'snapshot_type': 'debian', 'cluster': ''},
     exception.InvalidClaimRequest),
    ({'snapshot_type': 'debian', 'cluster': 'west'},
     exception.ClusterNotServed),
    ({'snapshot_type': 'nope'}, exception.PoolNotFound),
])
def test_bad_claim_input_is_typed_and_changes_nothing(
        make_manager, simulator, kwargs, error):
    mgr = make_manager({'debian': 2})
    fill(mgr)
    before = sorted((v['id'], v['name'], tuple(sorted(v['metadata'])))
                    for v in simulator.list_volumes())
    rows_before = sorted((r.id, r.status) for r in db_api.get_rows(None))
    with pytest.raises(error):
        call(mgr.claim, **kwargs)
    after = sorted((v['id'], v['name'], tuple(sorted(v['metadata'])))
                   for v in simulator.list_volumes())
    assert after == before
    assert sorted((r.id, r.status)
                  for r in db_api.get_rows(None)) == rows_before


def test_claim_reverts_when_cinder_fails(make_manager, simulator):
    mgr = make_manager({'debian': 1})
    fill(mgr)
    volume_id = db_api.get_rows(None)[0].volume_id
    simulator.inject_fault(status=500, method='PUT', path='^/volumes/',
                           count=1)
    with pytest.raises(exception.CinderUnavailable):
        call(mgr.claim, 'debian')
    row = db_api.get_rows(None)[0]
    assert (row.volume_id, row.status) == (volume_id, models.AVAILABLE)
    assert simulator.get_volume(volume_id)['metadata'][
        vp_cinder.TAG_POOL] == 'debian'
    assert call(mgr.claim, 'debian')['volume_id'] == volume_id


def test_claim_skips_a_volume_deleted_behind_the_pool(make_manager,
                                                      simulator):
    mgr = make_manager({'debian': 2})
    fill(mgr)
    first = db_api.get_rows(None)[0].volume_id
    simulator.remove_volume(first)
    result = call(mgr.claim, 'debian', create_on_miss=False)
    assert result['volume_id'] != first
    assert ready() == 0


# -- sync -------------------------------------------------------------------

def test_sync_drops_deleted_errored_and_attached_volumes(make_manager,
                                                         simulator):
    mgr = make_manager({'debian': 3})
    fill(mgr)
    gone, broken, taken = [r.volume_id for r in db_api.get_rows(None)]
    simulator.remove_volume(gone)
    simulator.set_volume_status(broken, 'error')
    simulator.attach_volume(taken)
    mgr.sync(CTXT)
    assert db_api.get_rows(None, status=models.AVAILABLE) == []
    wait_for(lambda: simulator.get_volume(broken) is None)
    mgr.sync(CTXT)  # the deleted volume's row goes once Cinder drops it
    assert db_api.get_rows(None) == []
    assert vp_cinder.TAG_POOL not in simulator.get_volume(taken)['metadata']
    fill(mgr)


def test_sync_adopts_a_tagged_volume_without_row(make_manager, simulator):
    mgr = make_manager({'debian': 2})
    orphan = simulator.add_volume(
        snapshot_id=mgr.snapshots['debian'],
        metadata=vp_cinder.pool_tags('debian', None, 'lost-request'))
    mgr.sync(CTXT)
    rows = db_api.get_rows(None)
    assert [(r.volume_id, r.status) for r in rows] == [
        (orphan, models.AVAILABLE)]
    fill(mgr)
    assert len(tagged(simulator)) == 2


def test_sync_leaves_an_orphan_another_sync_adopted_first(
        make_manager, simulator, monkeypatch):
    mgr = make_manager({'debian': 2})
    orphan = simulator.add_volume(
        snapshot_id=mgr.snapshots['debian'],
        metadata=vp_cinder.pool_tags('debian', None, 'lost-request'))
    create_row = db_api.create_volume_row

    def adopted_meanwhile(**row):
        create_row(**row)  # the other manager's sync wins the race
        return create_row(**row)
    monkeypatch.setattr(db_api, 'create_volume_row', adopted_meanwhile)
    mgr.sync(CTXT)
    assert [(r.volume_id, r.status) for r in db_api.get_rows(None)] == [
        (orphan, models.AVAILABLE)]
    assert simulator.get_volume(orphan) is not None


def test_a_bug_while_adopting_is_not_taken_for_a_race(make_manager,
                                                      simulator, monkeypatch):
    mgr = make_manager({'debian': 2})
    simulator.add_volume(
        snapshot_id=mgr.snapshots['debian'],
        metadata=vp_cinder.pool_tags('debian', None, 'lost-request'))

    def broken(**row):
        raise TypeError('a bug')
    monkeypatch.setattr(db_api, 'create_volume_row', broken)
    with pytest.raises(TypeError, match='a bug'):
        mgr.sync(CTXT)


def test_sync_deletes_orphans_beyond_target(make_manager, simulator):
    mgr = make_manager({'debian': 1})
    fill(mgr)
    extra = simulator.add_volume(
        snapshot_id=mgr.snapshots['debian'],
        metadata=vp_cinder.pool_tags('debian', None, 'extra'))
    mgr.sync(CTXT)
    wait_for(lambda: simulator.get_volume(extra) is None)
    assert len(tagged(simulator)) == 1


def test_sync_reunites_row_and_volume_after_a_crash(make_manager, simulator):
    """Crash between Cinder's create and saving the volume id."""
    mgr = make_manager({'debian': 1})
    row = db_api.create_volume_row(
        request_id='req-crash-1', pool='debian', cluster=None,
        snapshot_id=mgr.snapshots['debian'], size=1, name='n',
        host='another-host')
    volume_id = simulator.add_volume(
        snapshot_id=mgr.snapshots['debian'],
        metadata=vp_cinder.pool_tags('debian', None, 'req-crash-1'))
    mgr.sync(CTXT)
    rows = db_api.get_rows(None)
    assert [(r.id, r.volume_id, r.status) for r in rows] == [
        (row.id, volume_id, models.AVAILABLE)]


def test_sync_forgets_own_rows_whose_create_never_happened(make_manager):
    mgr = make_manager({'debian': 1})
    db_api.create_volume_row(
        request_id='req-never-sent', pool='debian', cluster=None,
        snapshot_id=mgr.snapshots['debian'], size=1, name='n',
        host='test-host')
    mgr.sync(CTXT)
    assert db_api.get_rows(None) == []


def test_stuck_creating_volume_is_reaped_and_replaced(make_manager,
                                                      simulator,
                                                      frozen_time):
    simulator.creation_delay = 60
    mgr = make_manager({'debian': 1}, creating_timeout=1)
    mgr.replenish(CTXT)
    wait_for(lambda: db_api.get_rows(None) and
             db_api.get_rows(None)[0].volume_id)
    stuck = db_api.get_rows(None)[0].volume_id
    mgr.sync(CTXT)
    assert simulator.get_volume(stuck)['status'] == 'creating'  # in time
    frozen_time(1.2)  # past creating_timeout
    mgr.sync(CTXT)
    wait_for(lambda: simulator.get_volume(stuck) is None)
    simulator.creation_delay = 0
    mgr.sync(CTXT)
    fill(mgr)
    assert stuck not in {r.volume_id for r in db_api.get_rows(None)}


def test_snapshot_change_drains_old_volumes(make_manager, simulator, conf):
    mgr = make_manager({'debian': 2})
    fill(mgr)
    old = {r.volume_id for r in db_api.get_rows(None)}
    new_snapshot = simulator.add_snapshot(size=1)
    conf.set_override('snapshot_id', new_snapshot, group='pool:debian')
    mgr.reset()
    mgr.replenish(CTXT)  # new volumes come while old ones drain
    mgr.sync(CTXT)
    wait_for(lambda: all(simulator.get_volume(v) is None for v in old))
    mgr.sync(CTXT)
    wait_for(lambda: ready() == 2)
    rows = db_api.get_rows(None)
    assert {r.snapshot_id for r in rows} == {new_snapshot}
    assert not old & {r.volume_id for r in rows}


def _hold(mgr, incarnation, hold=60.0):
    take = db_claims.Take(claim_id='claim-of-%s' % incarnation, hold=hold)
    taken, _done = db_claims.commit_steps(
        'debian', None, mgr.specs['debian'].snapshot_id, incarnation, [take])
    return taken[0]


def test_sync_spares_a_claim_its_live_manager_still_runs(make_manager):
    mgr = make_manager({'debian': 1})
    fill(mgr)
    _hold(mgr, mgr.incarnation)
    mgr.sync(CTXT)
    assert db_api.get_rows(None)[0].status == models.CLAIMING


def test_sync_returns_an_abandoned_claim_to_the_pool(make_manager,
                                                     simulator):
    mgr = make_manager({'debian': 1})
    fill(mgr)
    row = _hold(mgr, 'a-dead-manager')
    # The dead manager had already handed the volume over in Cinder.
    mgr.claimer._cinder.update_volume(row.volume_id, name='vnf-x',
                                      metadata={})
    mgr.sync(CTXT)
    row = db_api.get_rows(None)[0]
    assert row.status == models.AVAILABLE
    volume = simulator.get_volume(row.volume_id)
    assert volume['metadata'][vp_cinder.TAG_POOL] == 'debian'
    assert volume['name'] == row.name


def test_pool_status_reports_counts_and_claims(make_manager):
    mgr = make_manager({'debian': 2, 'windows': 0})
    fill(mgr)
    call(mgr.claim, 'debian')
    status = {p['name']: p for p in call(mgr.pool_status)}
    assert status['debian']['target'] == 2
    assert status['debian']['ready'] == 1
    assert status['debian']['claims']['hits'] == 1
    assert status['windows']['ready'] == 0
    with pytest.raises(exception.ClusterNotServed):
        call(mgr.pool_status, cluster='west')


def test_graceful_stop_waits_for_inflight_claims(make_manager, simulator):
    mgr = make_manager({'debian': 1})
    fill(mgr)
    rename = simulator.inject_fault(status=None, method='PUT',
                                    path='^/volumes/', hold=True)
    with concurrent.futures.ThreadPoolExecutor(1) as executor:
        inflight = executor.submit(call, mgr.claim, 'debian')
        rename.wait_arrived()  # the claim is in Cinder now
        mgr.prepare_for_shutdown()
        with pytest.raises(exception.ServiceShuttingDown):
            call(mgr.claim, 'debian')
        assert not mgr.drain(timeout=0.1)  # held by the claim in flight
        rename.release()
        assert mgr.drain(timeout=5)
        assert inflight.result(timeout=5)['source'] == 'pool'
    assert db_api.get_rows(None) == []


# -- backoff -----------------------------------------------------------------

def settle(mgr):
    """Wait until every create the last replenish queued was answered (a
    failure is counted by the backoff before its create is done)."""
    queued = [r.request_id for r in
              db_api.get_rows(None, status=models.CREATING)]
    wait_for(lambda: not any(mgr.replenisher.is_pending(request_id)
                             for request_id in queued),
             what='the queued creates answered')


def test_quota_storm_backs_off_instead_of_hammering(make_manager, simulator,
                                                    frozen_time):
    mgr = make_manager({'debian': 5}, backoff_initial=0.5, backoff_max=2)
    simulator.inject_fault(status=413, method='POST', path='^/volumes$',
                           count=1000)
    simulator.reset_counts()
    for _ in range(40):  # two seconds of replenish runs, 50 ms apart
        mgr.replenish(CTXT)
        settle(mgr)
        frozen_time(0.05)
    posts = simulator.request_counts[('POST', '/volumes')]
    # Without backoff: 5 creates a run, 200 in all.  With it: a handful.
    assert 1 <= posts <= 20, posts
    status = call(mgr.pool_status)[0]
    assert status['reason'].startswith(('backing off', 'paused'))
    assert 'VolumeLimitExceeded' in status['backoff']['last_error'] or \
        'Injected' in status['backoff']['last_error']
    simulator.clear_faults()
    frozen_time(2.5)  # past backoff_max
    fill(mgr)  # full speed after the first success
    assert call(mgr.pool_status)[0]['backoff'] is None


def test_pool_pauses_after_errors_in_a_row_and_resumes_on_reload(
        make_manager, simulator, frozen_time):
    mgr = make_manager({'debian': 2}, backoff_initial=0.1, backoff_max=1,
                       max_consecutive_errors=3)
    simulator.fail_next_creates(100)
    for _ in range(40):
        mgr.replenish(CTXT)
        settle(mgr)
        mgr.sync(CTXT)
        if mgr.backoff.state('debian') and \
                mgr.backoff.state('debian')['paused']:
            break
        frozen_time(1)  # past any backoff delay
    status = call(mgr.pool_status)[0]
    # Creates already in flight when the pool pauses still count.
    failures = re.match(r'paused after (\d+) failed creates',
                        status['reason'])
    assert failures and int(failures.group(1)) >= 3, status['reason']
    errors_made = len([v for v in simulator.list_volumes()
                       if v['status'] == 'error'])
    frozen_time(60)  # paused is not backing off: time does not resume it
    mgr.replenish(CTXT)
    assert counts().get(models.CREATING, 0) == 0  # no create queued
    assert len([v for v in simulator.list_volumes()
                if v['status'] == 'error']) == errors_made  # no new ones
    simulator.clear_faults()
    mgr.reset()  # SIGHUP
    mgr.sync(CTXT)
    fill(mgr)


def test_refill_resumes_a_paused_pool_and_creates_its_deficit(
        make_manager, simulator):
    # One create at a time: a success beside the failure would clear it.
    mgr = make_manager({'debian': 1}, backoff_initial=0.1, backoff_max=1,
                       max_consecutive_errors=1)
    simulator.fail_next_creates(1)
    mgr.replenish(CTXT)
    wait_for(lambda: mgr.backoff.state('debian') and
             mgr.backoff.state('debian')['paused'])
    wait_for(lambda: (mgr.sync(CTXT), counts() == {})[1])  # error deleted
    assert call(mgr.refill, 'debian') == 1
    assert mgr.backoff.state('debian') is None
    wait_for(lambda: ready() == 1)
    assert call(mgr.refill, 'debian') == 0  # full: nothing to create
    with pytest.raises(exception.PoolNotFound):
        call(mgr.refill, 'no-such-pool')
    with pytest.raises(exception.InvalidClaimRequest):
        call(mgr.refill, '')


def test_max_creating_caps_creates_in_flight(make_manager, simulator, conf):
    simulator.creation_delay = 0.5
    mgr = make_manager({'debian': 6})
    conf.set_override('max_creating', 2, group='pool:debian')
    mgr.reset()
    mgr.replenish(CTXT)
    assert counts().get(models.CREATING, 0) == 2
    status = call(mgr.pool_status)[0]
    assert status['reason'] == 'creating (capped at max_creating=2)'
    mgr.replenish(CTXT)
    assert counts().get(models.CREATING, 0) == 2


def test_a_pool_left_out_of_the_config_keeps_its_volumes(
        make_manager, simulator, conf):
    """A pool missing from enabled_pools (removed, or a typo) is never
    drained by sync: only the operator's drain deletes its volumes."""
    mgr = make_manager({'debian': 2, 'windows': 1})
    fill(mgr)
    fill(mgr, 'windows')
    windows = {r.volume_id for r in db_api.get_rows(None, pool='windows')}
    # A tagged volume of that pool nobody recorded yet is kept too.
    stray = simulator.add_volume(
        snapshot_id=mgr.snapshots['windows'],
        metadata=vp_cinder.pool_tags('windows', None, 'lost-request'))
    conf.set_override('enabled_pools', ['debian'], group='volume_pool')
    mgr.reset()
    for _ in range(2):
        mgr.sync(CTXT)
        mgr.replenish(CTXT)
    kept = {r.volume_id for r in db_api.get_rows(None, pool='windows')}
    assert kept == windows | {stray}
    assert all(simulator.get_volume(v) is not None for v in kept)
    status = {p['name']: p for p in call(mgr.pool_status)}['windows']
    assert not status['configured']
    assert 'pool drain windows' in status['reason']
    report = shrink.drain_pool(mgr.claimer._cinder, 'windows', None)
    assert report.deleted == 2
    wait_for(lambda: all(simulator.get_volume(v) is None for v in kept))


def test_sync_drops_an_unbound_create_of_a_manager_that_is_gone(
        make_manager, simulator):
    """A manager killed between writing a row and asking Cinder leaves a
    'creating' row with no volume; once its process is gone the owner of
    the pool drops it at once instead of after creating_timeout."""
    mgr = make_manager({'debian': 1})
    fill(mgr)

    def unbound(incarnation):
        return db_api.create_volume_row(
            request_id='req-%s' % incarnation, pool='debian', cluster=None,
            snapshot_id=mgr.specs['debian'].snapshot_id, size=1,
            name='never-created', host='another-host',
            incarnation=incarnation)

    db_managers.register('another-host', None, 'inc-alive')
    alive, dead = unbound('inc-alive'), unbound('inc-killed')
    mgr.sync(CTXT)
    left = {r.id for r in db_api.get_rows(None, status=models.CREATING)}
    assert left == {alive.id}
    assert dead.id not in left
