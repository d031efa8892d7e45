"""Exactly-once claims, manager-level, against the Cinder simulator.

Every test checks the invariant itself -- what the simulator's Cinder and
the tables hold -- never a log line: a volume is handed to one caller at
most, a failed or undone claim leaves its volume in the pool with its pool
name and tags, a retry with the same key gets the same answer, and the
pool ends at its target with a row for every tagged volume.
"""

import concurrent.futures
import datetime
import threading
import time

import pytest
import sqlalchemy as sa

from volume_pool import cinder as vp_cinder
from volume_pool import context as vp_context
from volume_pool import exception
from volume_pool.db import api as db_api
from volume_pool.db import claims as db_claims
from volume_pool.db import managers as db_managers
from volume_pool.db import models
from volume_pool.db import receipts as db_receipts
from volume_pool.fixtures import waiting
from volume_pool.tests.unit.test_manager import call
from volume_pool.tests.unit.test_manager import counts
from volume_pool.tests.unit.test_manager import fill
from volume_pool.tests.unit.test_manager import ready
from volume_pool.tests.unit.test_manager import tagged
from volume_pool.tests.unit.test_miss_creates import held_past_its_deadline

CTXT = vp_context.get_admin_context()
LEASE_TAGS = {vp_cinder.TAG_LEASE: 'default'}
PUT = ('PUT', '/volumes/{id}')
POST = ('POST', '/volumes')
# A volume by id (GET and PUT), not the listing (/volumes/detail).
ONE_VOLUME = r'^/volumes/[0-9a-f]{8}-[0-9a-f-]+$'
PAST = datetime.datetime(2000, 1, 1)


def receipt(key, project=''):
    return db_receipts.get(None, project, key)


def all_receipts():
    with db_api.reader() as session:
        return list(session.execute(
            sa.select(models.ClaimReceipt)).scalars())


def rows_by_volume():
    return {r.volume_id: r for r in db_api.get_rows(None)}


def snapshot_of_world(simulator):
    """Cinder's volumes and the table's rows and receipts, comparable."""
    volumes = sorted((v['id'], v['name'], v['status'],
                      tuple(sorted(v['metadata'].items())))
                     for v in simulator.list_volumes())
    rows = sorted((r.id, r.volume_id, r.status, r.claim_id)
                  for r in db_api.get_rows(None))
    receipts = sorted((r.claim_id, r.claim_key, r.state, r.volume_id)
                      for r in all_receipts())
    return volumes, rows, receipts


def assert_in_pool(simulator, volume_id, pool='debian'):
    """The volume is a ready pool volume: row available, and in Cinder the
    row's name and the pool's tags, no lease tag."""
    row = rows_by_volume().get(volume_id)
    assert row is not None, 'volume %s has no row' % volume_id
    assert row.status == models.AVAILABLE
    assert row.claim_id is None
    volume = simulator.get_volume(volume_id)
    assert volume['name'] == row.name
    assert volume['metadata'].get(vp_cinder.TAG_POOL) == pool
    assert volume['metadata'].get(vp_cinder.TAG_REQUEST) == row.request_id
    assert vp_cinder.TAG_LEASE not in volume['metadata']


def assert_settled(mgr, simulator, pool='debian'):
    """At target, every tagged volume has a row and every row a volume,
    nothing held."""
    target = mgr.specs[pool].target
    assert counts(pool) == ({models.AVAILABLE: target} if target else {})
    volumes = tagged(simulator, pool)
    assert len(volumes) == target
    assert {v['id'] for v in volumes} == set(rows_by_volume())
    for volume in volumes:
        assert_in_pool(simulator, volume['id'], pool)


def expire_lease(key, project=''):
    """Move the receipt's lease into the past (the DB clock is real)."""
    table = models.ClaimReceipt
    with db_api.writer() as session:
        done = session.execute(
            sa.update(table)
            .where(table.claim_key == key,
                   table.project_id == project)
            .values(lease_expires_at=PAST)).rowcount
    assert done == 1


def record_bodies(simulator, monkeypatch):
    """Keep (method, path, body) of every request the simulator serves."""
    seen = []
    handle = simulator.handle

    def recording(method, path, query, body, project=None):
        seen.append((method, path, body))
        return handle(method, path, query, body, project=project)

    monkeypatch.setattr(simulator, 'handle', recording)
    return seen


def in_thread(function, *args, **kwargs):
    """Run ``function`` in a thread; returns a future."""
    executor = concurrent.futures.ThreadPoolExecutor(1)
    future = executor.submit(function, *args, **kwargs)
    executor.shutdown(wait=False)
    return future


# -- keyed and unkeyed claims --------------------------------------------


def test_keyed_claim_is_leased_and_its_retry_takes_no_second_volume(
        make_manager, simulator):
    mgr = make_manager({'debian': 2})
    fill(mgr)
    simulator.reset_counts()
    before = time.time()
    result = call(mgr.claim, 'debian', name='vnf-1-root', claim_key='k1')
    assert result['claim_key'] == 'k1'
    assert result['source'] == 'pool'
    expires = datetime.datetime.strptime(result['lease_expires_at'],
                                         '%Y-%m-%dT%H:%M:%S.%fZ')
    expires = expires.replace(tzinfo=datetime.timezone.utc).timestamp()
    # claim_lease defaults to an hour, on the database's clock.
    assert before + 3500 < expires < time.time() + 3700
    volume = simulator.get_volume(result['volume_id'])
    assert volume['name'] == 'vnf-1-root'
    assert volume['metadata'] == LEASE_TAGS  # no pool tag left
    assert result['volume_id'] not in rows_by_volume()
    held = receipt('k1')
    assert (held.state, held.volume_id) == (models.R_LEASED,
                                            result['volume_id'])
    assert ready() == 1

    again = call(mgr.claim, 'debian', name='vnf-1-root', claim_key='k1')
    assert again == result
    assert ready() == 1
    assert simulator.request_counts[PUT] == 1  # one rename, not two
    assert simulator.request_counts[POST] == 0
    assert [r.claim_key for r in all_receipts()] == ['k1']


def test_same_key_with_other_arguments_conflicts_and_changes_nothing(
        make_manager, simulator):
    mgr = make_manager({'debian': 2})
    fill(mgr)
    call(mgr.claim, 'debian', name='vnf-1', claim_key='k1')
    world = snapshot_of_world(simulator)
    for kwargs in ({'name': 'vnf-other'}, {'name': None},
                   {'name': 'vnf-1', 'create_on_miss': False}):
        with pytest.raises(exception.ClaimKeyConflict) as caught:
            call(mgr.claim, 'debian', claim_key='k1', **kwargs)
        assert caught.value.claim_key == 'k1'
    assert snapshot_of_world(simulator) == world


def test_unkeyed_claim_carries_no_lease(make_manager, simulator):
    mgr = make_manager({'debian': 1})
    fill(mgr)
    result = call(mgr.claim, 'debian', name='vnf-2')
    assert 'claim_key' not in result
    assert 'lease_expires_at' not in result
    volume = simulator.get_volume(result['volume_id'])
    assert volume['name'] == 'vnf-2'
    assert volume['metadata'] == {}
    [used] = all_receipts()
    assert (used.claim_key, used.state, used.volume_id) == (
        None, models.R_USED, result['volume_id'])
    # No lease to run out: sync leaves it with its caller.
    mgr.sync(CTXT)
    assert simulator.get_volume(result['volume_id'])['name'] == 'vnf-2'
    assert rows_by_volume() == {}


def test_claim_keys_are_scoped_to_the_callers_project(make_manager,
                                                      simulator):
    mgr = make_manager({'debian': 2})
    fill(mgr)
    alice = vp_context.RequestContext(project_id='p-alice')
    bob = vp_context.RequestContext(project_id='p-bob')
    first = call(mgr.claim, 'debian', claim_key='k', ctxt=alice)
    second = call(mgr.claim, 'debian', claim_key='k', ctxt=bob)
    assert first['volume_id'] != second['volume_id']
    assert ready() == 0
    # Bob's release gives back Bob's volume only.
    call(mgr.release, 'k', ctxt=bob)
    assert_in_pool(simulator, second['volume_id'])
    assert receipt('k', 'p-alice').state == models.R_LEASED
    assert simulator.get_volume(first['volume_id'])['metadata'] == LEASE_TAGS
    with pytest.raises(exception.ClaimNotFound):
        call(mgr.release, 'k')  # the admin context has no project


# -- a rename that lands after the claim's time ---------------------------


def test_late_rename_undoes_the_claim_and_never_hands_the_volume_twice(
        make_manager, simulator):
    mgr = make_manager({'debian': 1})
    fill(mgr)
    [volume_id] = rows_by_volume()
    pool_name = rows_by_volume()[volume_id].name
    rename = simulator.inject_fault(status=None, method='PUT',
                                    path=ONE_VOLUME, count=1, hold=True)
    first = in_thread(call, mgr.claim, 'debian', name='vnf-late',
                      claim_key='late', time_left=1.5)
    rename.wait_arrived()  # the first claim holds its row, renaming
    # While the first claim runs, its volume is nobody else's ...
    with pytest.raises(exception.PoolEmpty):
        call(mgr.claim, 'debian', name='vnf-second', create_on_miss=False)
    # ... and its key answers "in progress", never a second volume.
    with pytest.raises(exception.ClaimInProgress):
        call(mgr.claim, 'debian', name='vnf-late', claim_key='late',
             time_left=1.5)
    # The rename lands once the claim's time is up.
    waiting.wait_for(held_past_its_deadline, timeout=15,
                     what="the first claim's deadline passed")
    rename.release()
    with pytest.raises(exception.ClaimTimedOut) as caught:
        first.result(timeout=15)
    assert caught.value.claim_key == 'late'
    # Undone: the late PUT landed, the undo put name and tags back.
    assert_in_pool(simulator, volume_id)
    assert simulator.get_volume(volume_id)['name'] == pool_name
    assert receipt('late') is None  # a failed claim leaves no receipt
    mgr.sync(CTXT)
    assert_settled(mgr, simulator)
    # The key may be used again, and the volume is there to claim.
    result = call(mgr.claim, 'debian', name='vnf-late', claim_key='late')
    assert result['volume_id'] == volume_id
    assert simulator.get_volume(volume_id)['name'] == 'vnf-late'


def _late_rename_with_sync_running(mgr, simulator, second_claim=True):
    """The first claim's rename is held past the claim's time (1.5 s)
    while sync runs: sync leaves the volume to the claim (its rename may
    still land), the rename lands, the claim is undone; then a second
    claim (create_on_miss=False) takes the volume.

    Returns (first's error, second's answer or None, the volume).
    """
    fill(mgr)
    [volume_id] = rows_by_volume()
    rename = simulator.inject_fault(status=None, method='PUT',
                                    path=ONE_VOLUME, count=1, hold=True)
    first = in_thread(call, mgr.claim, 'debian', name='vnf-first',
                      claim_key='first', time_left=1.5)
    rename.wait_arrived()
    waiting.wait_for(held_past_its_deadline, timeout=15,
                     what="the first claim's deadline passed")
    mgr.sync(CTXT)
    # Not given back while a rename of the claim may still land.
    assert counts() == {models.CLAIMING: 1}
    rename.release()
    with pytest.raises(exception.ClaimTimedOut) as caught:
        first.result(timeout=15)
    second = None
    if second_claim:
        second = call(mgr.claim, 'debian', name='vnf-second',
                      claim_key='second', create_on_miss=False)
    return caught.value, second, volume_id


def test_late_rename_with_sync_running_answers_one_caller(make_manager,
                                                          simulator):
    mgr = make_manager({'debian': 1})
    error, second, volume_id = _late_rename_with_sync_running(
        mgr, simulator)
    # Two claims of one volume: one answer, one error -- never both.
    assert error.claim_key == 'first'
    assert second['volume_id'] == volume_id
    assert receipt('first') is None
    assert receipt('second').state == models.R_LEASED
    mgr.sync(CTXT)
    # The volume stays the second caller's: no row, not in the pool.
    assert rows_by_volume() == {}
    assert tagged(simulator) == []
    assert simulator.get_volume(volume_id)['metadata'] == LEASE_TAGS
    # The first key is free again: a new claim gets a new volume.
    again = call(mgr.claim, 'debian', name='vnf-first', claim_key='first')
    assert (again['source'], again['volume_id'] != volume_id) == (
        'created', True)


def test_late_rename_never_renames_the_next_callers_volume(make_manager,
                                                           simulator):
    mgr = make_manager({'debian': 1})
    _error, second, volume_id = _late_rename_with_sync_running(
        mgr, simulator)
    mgr.sync(CTXT)
    volume = simulator.get_volume(volume_id)
    assert (volume['name'], volume['metadata']) == (second['name'],
                                                    LEASE_TAGS)


def test_late_rename_of_a_volume_back_in_the_pool_is_retagged(
        make_manager, simulator, conf):
    """A rename that outlives the Cinder timeout: the claim gives up on
    it, and sync gives the volume back once that timeout is past.  When
    the rename, held in Cinder, lands after all, it strips the pool tags
    of a pool volume; the next sync finds the row's volume missing from
    the listing, asks Cinder by id and tags it again instead of
    forgetting it: the pool ends whole."""
    conf.set_override('timeout', 1, group='cinder')
    mgr = make_manager({'debian': 1})
    fill(mgr)
    [volume_id] = rows_by_volume()
    rename = simulator.inject_fault(status=None, method='PUT',
                                    path=ONE_VOLUME, count=1, hold=True)
    first = in_thread(call, mgr.claim, 'debian', name='vnf-first',
                      claim_key='first', time_left=1.5)
    rename.wait_arrived()
    with pytest.raises(exception.VolumePoolException):
        first.result(timeout=15)

    def given_back():
        mgr.sync(CTXT)
        return counts() == {models.AVAILABLE: 1}
    waiting.wait_for(given_back, timeout=15, interval=0.1,
                     what='sync giving the volume back')
    rename.release()
    # The late rename lands on a pool volume.
    waiting.wait_for(lambda: simulator.get_volume(volume_id)['name'] ==
                     'vnf-first', what='the held rename landed')
    assert simulator.get_volume(volume_id)['metadata'] == LEASE_TAGS
    mgr.sync(CTXT)
    assert_settled(mgr, simulator)
    assert list(rows_by_volume()) == [volume_id]
    assert receipt('first') is None


# -- Cinder failing the rename ---------------------------------------------


def test_503_on_the_rename_fails_claims_cleanly_without_overfill(
        make_manager, simulator):
    mgr = make_manager({'debian': 3})
    fill(mgr)
    volumes = set(rows_by_volume())
    simulator.inject_fault(status=503, method='PUT', path=ONE_VOLUME,
                           count=6)
    for n in range(6):
        key = 'k%d' % n if n % 2 else None
        with pytest.raises(exception.CinderUnavailable):
            call(mgr.claim, 'debian', name='vnf-%d' % n, claim_key=key)
    # Nothing was renamed: every row is back, no receipt is left.
    assert counts() == {models.AVAILABLE: 3}
    assert all_receipts() == []
    simulator.reset_counts()
    mgr.replenish(CTXT)
    mgr.sync(CTXT)
    assert simulator.request_counts[POST] == 0
    assert_settled(mgr, simulator)
    assert set(rows_by_volume()) == volumes
    # Claims work again, and the failed keys may be used again.
    result = call(mgr.claim, 'debian', name='vnf-1', claim_key='k1')
    assert result['volume_id'] in volumes


def test_503_on_the_rename_and_the_undo_is_settled_by_sync_no_overfill(
        make_manager, simulator):
    """Six 503s: three claims failed and their undo failed too: rows
    ``uncertain``, replenish must not replace them, sync settles them
    from Cinder's truth."""
    mgr = make_manager({'debian': 3})
    fill(mgr)
    volumes = set(rows_by_volume())
    # Each claim: its rename PUT fails, then its undo's GET by id.
    simulator.inject_fault(status=503, method=None, path=ONE_VOLUME,
                           count=6)
    for n in range(3):
        with pytest.raises(exception.CinderUnavailable):
            call(mgr.claim, 'debian', name='vnf-%d' % n,
                 claim_key='k%d' % n)
    assert counts() == {models.UNCERTAIN: 3}
    # A retry of a claim whose fate is unknown is told to wait.
    with pytest.raises(exception.ClaimInProgress):
        call(mgr.claim, 'debian', name='vnf-0', claim_key='k0')
    # Replenish counts uncertain volumes as ready: no replacement.
    simulator.reset_counts()
    mgr.replenish(CTXT)
    assert simulator.request_counts[POST] == 0
    assert counts() == {models.UNCERTAIN: 3}
    # Within the grace a late request of the failed claims could still
    # land: sync leaves the rows alone.
    mgr.sync(CTXT)
    assert counts() == {models.UNCERTAIN: 3}
    # Past it (the grace moved to zero), sync asks Cinder: the volumes are
    # untouched pool volumes.
    mgr.syncer._late_request_grace = 0.0
    mgr.sync(CTXT)
    mgr.replenish(CTXT)
    assert simulator.request_counts[POST] == 0
    assert_settled(mgr, simulator)
    assert set(rows_by_volume()) == volumes
    assert all_receipts() == []
    result = call(mgr.claim, 'debian', name='vnf-0', claim_key='k0')
    assert result['volume_id'] in volumes


# -- claims left by a manager that died -------------------------------------


def _hold(mgr, incarnation, key=None, hold=60.0):
    take = db_claims.Take(claim_id='claim-of-%s' % incarnation, hold=hold,
                          fingerprint='fp', claim_key=key)
    taken, _done = db_claims.commit_steps(
        'debian', None, mgr.specs['debian'].snapshot_id, incarnation, [take])
    assert taken[0] is not None
    return take, taken[0]


def _handed_over(mgr, row, name='vnf-x', key=True):
    """What the holder did in Cinder before it stopped: the rename."""
    mgr.claimer._cinder.update_volume(
        row.volume_id, name=name, metadata=LEASE_TAGS if key else {})


def _set_heartbeat(incarnation, moment):
    table = models.Manager
    with db_api.writer() as session:
        session.execute(sa.update(table)
                        .where(table.incarnation == incarnation)
                        .values(heartbeat_at=moment))


@pytest.mark.parametrize('holder', ['unregistered', 'stopped', 'silent'])
def test_sync_returns_the_claim_of_a_dead_manager_at_once(
        make_manager, simulator, holder):
    mgr = make_manager({'debian': 2})
    fill(mgr)
    incarnation = 'inc-%s' % holder
    if holder != 'unregistered':
        db_managers.register('dead-host', None, incarnation)
    if holder == 'stopped':
        db_managers.stopped(incarnation)
    if holder == 'silent':
        _set_heartbeat(incarnation, PAST)  # > service_down_time ago
    take, row = _hold(mgr, incarnation, key='k-dead')
    _handed_over(mgr, row)
    assert receipt('k-dead').state == models.R_CLAIMING
    # Well within its deadline, but its manager is gone.
    mgr.sync(CTXT)
    assert_in_pool(simulator, row.volume_id)
    assert simulator.get_volume(row.volume_id)['name'] == row.name
    assert receipt('k-dead') is None  # never answered: the key is free
    assert_settled(mgr, simulator)


def test_sync_lets_a_dead_managers_attached_volume_go(make_manager,
                                                      simulator):
    mgr = make_manager({'debian': 2})
    fill(mgr)
    _take, row = _hold(mgr, 'inc-dead', key='k-dead')
    _handed_over(mgr, row)
    simulator.attach_volume(row.volume_id)
    mgr.sync(CTXT)
    assert row.volume_id not in rows_by_volume()
    assert simulator.get_volume(row.volume_id)['name'] == 'vnf-x'
    assert counts() == {models.AVAILABLE: 1}


def test_sync_leaves_a_live_claim_within_its_deadline_alone(make_manager,
                                                            simulator):
    mgr = make_manager({'debian': 2})
    fill(mgr)
    take, row = _hold(mgr, mgr.incarnation, key='k-live')
    _handed_over(mgr, row, name='vnf-live')
    mgr.sync(CTXT)
    mgr.replenish(CTXT)
    held = rows_by_volume()[row.volume_id]
    assert (held.status, held.claim_id) == (models.CLAIMING, take.claim_id)
    assert receipt('k-live').state == models.R_CLAIMING
    volume = simulator.get_volume(row.volume_id)
    assert (volume['name'], volume['metadata']) == ('vnf-live', LEASE_TAGS)
    # ... and the claim can still finish: sync did not fence it.
    _taken, [answer] = db_claims.commit_steps(
        'debian', None, mgr.specs['debian'].snapshot_id, mgr.incarnation,
        [], [db_claims.Finish(row_id=row.id, claim_id=take.claim_id,
                              state=models.R_LEASED,
                              result={'volume_id': row.volume_id},
                              lease=60.0)])
    assert answer['volume_id'] == row.volume_id
    assert receipt('k-live').state == models.R_LEASED
    assert row.volume_id not in rows_by_volume()


def test_sync_returns_a_live_claim_whose_deadline_passed(make_manager,
                                                         simulator):
    mgr = make_manager({'debian': 1})
    fill(mgr)
    take, row = _hold(mgr, mgr.incarnation, key='k-late',
                      hold=-3600.0)
    _handed_over(mgr, row)
    mgr.sync(CTXT)
    assert_settled(mgr, simulator)
    assert receipt('k-late') is None
    # The claim, finishing now, is refused: it must undo, not answer.
    _taken, [answer] = db_claims.commit_steps(
        'debian', None, mgr.specs['debian'].snapshot_id, mgr.incarnation,
        [], [db_claims.Finish(row_id=row.id, claim_id=take.claim_id,
                              state=models.R_LEASED,
                              result={'volume_id': row.volume_id})])
    assert answer is None
    assert_settled(mgr, simulator)


# -- release -----------------------------------------------------------------


def test_release_gives_the_volume_back_and_is_idempotent(make_manager,
                                                         simulator):
    mgr = make_manager({'debian': 2})
    fill(mgr)
    result = call(mgr.claim, 'debian', name='vnf-r', claim_key='r1')
    volume_id = result['volume_id']
    view = call(mgr.release, 'r1')
    assert (view['state'], view['volume_id'], view['claim_key']) == (
        models.R_RELEASED, volume_id, 'r1')
    assert_in_pool(simulator, volume_id)
    assert_settled(mgr, simulator)
    world = snapshot_of_world(simulator)
    again = call(mgr.release, 'r1')
    assert again['state'] == models.R_RELEASED
    assert snapshot_of_world(simulator) == world
    # The claim is over: its retry and its confirm say so.
    with pytest.raises(exception.ClaimReleased):
        call(mgr.claim, 'debian', name='vnf-r', claim_key='r1')
    with pytest.raises(exception.ClaimReleased):
        call(mgr.confirm, 'r1')
    assert snapshot_of_world(simulator) == world
    mgr.sync(CTXT)
    assert_settled(mgr, simulator)


def test_release_of_an_attached_volume_is_refused_and_the_claim_is_used(
        make_manager, simulator):
    mgr = make_manager({'debian': 2})
    fill(mgr)
    result = call(mgr.claim, 'debian', name='vnf-a', claim_key='a1')
    simulator.attach_volume(result['volume_id'])
    for _ in range(2):
        with pytest.raises(exception.ClaimNotReleasable) as caught:
            call(mgr.release, 'a1')
        assert caught.value.claim_key == 'a1'
        assert receipt('a1').state == models.R_USED
        assert result['volume_id'] not in rows_by_volume()
    volume = simulator.get_volume(result['volume_id'])
    assert (volume['name'], volume['status']) == ('vnf-a', 'in-use')
    assert counts() == {models.AVAILABLE: 1}
    # A retry still gets its volume.
    assert call(mgr.claim, 'debian', name='vnf-a', claim_key='a1') == result


def test_release_and_confirm_of_an_unknown_key_are_not_found(make_manager,
                                                             simulator):
    mgr = make_manager({'debian': 1})
    fill(mgr)
    world = snapshot_of_world(simulator)
    for method in (mgr.release, mgr.confirm):
        with pytest.raises(exception.ClaimNotFound) as caught:
            call(method, 'nobody')
        assert caught.value.claim_key == 'nobody'
    assert snapshot_of_world(simulator) == world


def test_release_of_a_created_volume_puts_it_in_the_pool(make_manager,
                                                        simulator):
    mgr = make_manager({'debian': 1})  # empty: the claim misses
    result = call(mgr.claim, 'debian', name='vnf-new', claim_key='n1')
    assert result['source'] == 'created'
    assert call(mgr.release, 'n1')['state'] == models.R_RELEASED
    assert_in_pool(simulator, result['volume_id'])
    assert rows_by_volume()[result['volume_id']].name.startswith(
        mgr.specs['debian'].volume_name_prefix)
    mgr.sync(CTXT)
    assert_settled(mgr, simulator)


def test_release_retried_after_a_cinder_error_finishes_or_says_so(
        make_manager, simulator):
    mgr = make_manager({'debian': 1})
    fill(mgr)
    result = call(mgr.claim, 'debian', name='vnf-rr', claim_key='rr')
    simulator.inject_fault(status=503, method='GET', path=ONE_VOLUME,
                           count=1)
    with pytest.raises(exception.CinderUnavailable):
        call(mgr.release, 'rr')
    try:
        view = call(mgr.release, 'rr')
    except exception.ClaimInProgress:
        return  # "ask again later": honest
    assert view['state'] == models.R_RELEASED
    assert_in_pool(simulator, result['volume_id'])


# -- confirm and the lease ---------------------------------------------------


def test_confirm_ends_the_lease_for_good_and_is_idempotent(make_manager,
                                                           simulator):
    mgr = make_manager({'debian': 2})
    fill(mgr)
    result = call(mgr.claim, 'debian', name='vnf-c', claim_key='c1')
    view = call(mgr.confirm, 'c1')
    assert (view['state'], view['lease_expires_at'], view['volume_id']) == (
        models.R_USED, None, result['volume_id'])
    volume = simulator.get_volume(result['volume_id'])
    assert (volume['name'], volume['metadata']) == ('vnf-c', {})
    assert call(mgr.confirm, 'c1')['state'] == models.R_USED
    assert simulator.get_volume(result['volume_id'])['metadata'] == {}
    # Even with its (old) lease time in the past, sync never takes it.
    expire_lease('c1')
    mgr.sync(CTXT)
    assert result['volume_id'] not in rows_by_volume()
    assert receipt('c1').state == models.R_USED
    assert simulator.get_volume(result['volume_id'])['name'] == 'vnf-c'
    assert call(mgr.claim, 'debian', name='vnf-c', claim_key='c1') == result


def test_unconfirmed_lease_runs_out_and_the_pool_is_trimmed_to_target(
        make_manager, simulator):
    mgr = make_manager({'debian': 2})
    fill(mgr)
    result = call(mgr.claim, 'debian', name='vnf-l', claim_key='l1')
    fill(mgr)  # replenish replaced it: the return makes a surplus
    mgr.sync(CTXT)
    assert simulator.get_volume(result['volume_id'])['metadata'] == \
        LEASE_TAGS  # the lease has not run out: untouched
    expire_lease('l1')
    mgr.sync(CTXT)
    assert receipt('l1').state == models.R_RETURNED
    # The returned volume is a pool volume again; the oldest surplus one
    # is deleted, never more: the pool is at its target.
    assert_in_pool(simulator, result['volume_id'])
    assert counts() == {models.AVAILABLE: 2, models.DELETING: 1}
    waiting.wait_for(lambda: len(simulator.list_volumes()) == 2,
                     what='the surplus volume deleted')
    mgr.sync(CTXT)
    assert_settled(mgr, simulator)
    with pytest.raises(exception.ClaimLeaseExpired):
        call(mgr.claim, 'debian', name='vnf-l', claim_key='l1')
    with pytest.raises(exception.ClaimLeaseExpired):
        call(mgr.confirm, 'l1')
    assert call(mgr.release, 'l1')['state'] == models.R_RETURNED
    assert_settled(mgr, simulator)


def test_returned_lease_below_target_deletes_nothing(make_manager,
                                                     simulator):
    mgr = make_manager({'debian': 2})
    fill(mgr)
    result = call(mgr.claim, 'debian', claim_key='l2')
    expire_lease('l2')
    mgr.sync(CTXT)
    assert_settled(mgr, simulator)
    assert result['volume_id'] in rows_by_volume()


def test_short_lease_runs_out_on_the_database_clock(make_manager,
                                                    simulator):
    mgr = make_manager({'debian': 1}, claim_lease=1)
    fill(mgr)
    result = call(mgr.claim, 'debian', name='vnf-s', claim_key='s1')

    def returned():
        mgr.sync(CTXT)
        return receipt('s1').state == models.R_RETURNED

    waiting.wait_for(returned, timeout=10, interval=0.2,
                     what='the one-second lease returned')
    assert_settled(mgr, simulator)
    assert list(rows_by_volume()) == [result['volume_id']]


def test_leased_volume_seen_attached_is_latched_used_and_kept(make_manager,
                                                              simulator):
    mgr = make_manager({'debian': 1})
    fill(mgr)
    result = call(mgr.claim, 'debian', name='vnf-u', claim_key='u1')
    simulator.attach_volume(result['volume_id'])
    mgr.sync(CTXT)
    assert receipt('u1').state == models.R_USED
    volume = simulator.get_volume(result['volume_id'])
    assert (volume['name'], volume['metadata']) == ('vnf-u', {})
    # Latched: a lease time in the past changes nothing now.
    expire_lease('u1')
    mgr.sync(CTXT)
    assert receipt('u1').state == models.R_USED
    assert rows_by_volume() == {}
    assert simulator.get_volume(result['volume_id'])['name'] == 'vnf-u'


def test_expired_lease_of_an_attached_volume_is_never_returned(
        make_manager, simulator):
    """Attached and out of lease in the same sync: used, not returned."""
    mgr = make_manager({'debian': 1})
    fill(mgr)
    result = call(mgr.claim, 'debian', name='vnf-e', claim_key='e1')
    simulator.attach_volume(result['volume_id'])
    expire_lease('e1')
    mgr.sync(CTXT)
    assert receipt('e1').state == models.R_USED
    assert rows_by_volume() == {}
    volume = simulator.get_volume(result['volume_id'])
    assert (volume['name'], volume['status']) == ('vnf-e', 'in-use')


# -- a miss -----------------------------------------------------------------


def test_keyed_miss_creates_with_the_pool_tags_first_and_replays(
        make_manager, simulator, monkeypatch):
    mgr = make_manager({'debian': 0})
    seen = record_bodies(simulator, monkeypatch)
    result = call(mgr.claim, 'debian', name='vnf-m', claim_key='m1')
    assert (result['source'], result['claim_key']) == ('created', 'm1')
    [create] = [body for method, path, body in seen
                if (method, path) == ('POST', '/volumes')]
    metadata = create['volume']['metadata']
    assert metadata[vp_cinder.TAG_POOL] == 'debian'
    assert metadata[vp_cinder.TAG_REQUEST]
    [rename] = [body for method, path, body in seen if method == 'PUT']
    assert rename['volume']['metadata'] == LEASE_TAGS
    volume = simulator.get_volume(result['volume_id'])
    assert (volume['name'], volume['metadata']) == ('vnf-m', LEASE_TAGS)
    assert receipt('m1').state == models.R_LEASED
    assert rows_by_volume() == {}
    again = call(mgr.claim, 'debian', name='vnf-m', claim_key='m1')
    assert again == result
    assert len([1 for method, path, _ in seen
                if (method, path) == ('POST', '/volumes')]) == 1
    assert len(simulator.list_volumes()) == 1


def test_keyed_miss_whose_lease_put_fails_leaves_the_volume_in_the_pool(
        make_manager, simulator):
    mgr = make_manager({'debian': 1})  # empty: the claim misses
    # The PUT after the create, then the undo's PUT back, both fail.
    simulator.inject_fault(status=503, method='PUT', path=ONE_VOLUME,
                           count=2)
    with pytest.raises(exception.CinderUnavailable):
        call(mgr.claim, 'debian', name='vnf-m', claim_key='m2')
    [volume] = simulator.list_volumes()
    assert volume['metadata'][vp_cinder.TAG_POOL] == 'debian'
    assert counts() == {models.UNCERTAIN: 1}
    simulator.reset_counts()
    mgr.replenish(CTXT)
    assert simulator.request_counts[POST] == 0  # no replacement
    mgr.syncer._late_request_grace = 0.0  # past the late-request grace
    mgr.sync(CTXT)
    waiting.wait_for(lambda: (mgr.sync(CTXT), ready() == 1)[1],
                     what='the created volume ready in the pool')
    assert_settled(mgr, simulator)
    assert list(rows_by_volume()) == [volume['id']]
    assert receipt('m2') is None
    again = call(mgr.claim, 'debian', name='vnf-m', claim_key='m2')
    assert (again['volume_id'], again['source']) == (volume['id'], 'pool')


def test_keyed_miss_whose_create_answer_is_lost_is_not_leaked(
        make_manager, simulator):
    mgr = make_manager({'debian': 1})
    cinder = mgr.claimer._cinder
    real_create = cinder.create_volume

    def lost_answer(**kwargs):
        real_create(**kwargs)  # Cinder made it; the answer never came
        raise exception.CinderUnavailable(reason='connection reset')

    # Not monkeypatch.undo(): that would undo the database fixture too.
    cinder.create_volume = lost_answer
    try:
        with pytest.raises(exception.CinderUnavailable):
            call(mgr.claim, 'debian', name='vnf-lost', claim_key='m3')
    finally:
        del cinder.create_volume
    [volume] = simulator.list_volumes()
    assert volume['metadata'][vp_cinder.TAG_POOL] == 'debian'
    assert counts() == {models.UNCERTAIN: 1}
    with pytest.raises(exception.ClaimInProgress):
        call(mgr.claim, 'debian', name='vnf-lost', claim_key='m3')
    simulator.reset_counts()
    mgr.replenish(CTXT)
    assert simulator.request_counts[POST] == 0
    mgr.syncer._late_request_grace = 0.0  # past the late-request grace
    mgr.sync(CTXT)
    assert_settled(mgr, simulator)
    assert list(rows_by_volume()) == [volume['id']]
    again = call(mgr.claim, 'debian', name='vnf-lost', claim_key='m3')
    assert again['volume_id'] == volume['id']


# -- a lost reply -------------------------------------------------------------


def test_retry_after_a_lost_reply_gets_the_receipt_on_any_manager(
        make_manager, simulator):
    """A crash between the finish and the reply: the caller retries, with
    the same key, possibly on another manager process."""
    mgr = make_manager({'debian': 2})
    fill(mgr)
    simulator.reset_counts()
    result = call(mgr.claim, 'debian', name='vnf-x', claim_key='x1',
                  time_left=30)
    restarted = make_manager({'debian': 2})  # a new incarnation
    assert restarted.incarnation != mgr.incarnation
    again = call(restarted.claim, 'debian', name='vnf-x', claim_key='x1',
                 time_left=10)
    assert again == result
    assert simulator.request_counts[PUT] == 1
    assert simulator.request_counts[POST] == 0
    assert [(r.claim_key, r.volume_id) for r in all_receipts()] == [
        ('x1', result['volume_id'])]
    assert counts() == {models.AVAILABLE: 1}


# -- bad input ---------------------------------------------------------------


@pytest.mark.parametrize('kwargs', [
    {'claim_key': 'k' * 300},
    {'claim_key': 'k' * 256},
    {'claim_key': 'bad\x00key'},
    {'claim_key': 'bad\nkey'},
    {'claim_key': '\x1b[31m'},
    {'claim_key': '   '},
    {'claim_key': ''},
    {'claim_key': 42},
    {'claim_key': b'bytes-key'},
    {'claim_key': ['k']},
    {'claim_key': 'k', 'time_left': 0},
    {'claim_key': 'k', 'time_left': -1.5},
    {'claim_key': 'k', 'time_left': True},
    {'claim_key': 'k', 'time_left': False},
    {'claim_key': 'k', 'time_left': '30'},
    {'claim_key': 'k', 'time_left': float('nan')},
    {'claim_key': 'k', 'time_left': float('inf')},
    {'time_left': 0},
], ids=lambda kwargs: repr(kwargs)[:40])
def test_bad_claim_key_or_time_left_is_refused_and_changes_nothing(
        make_manager, simulator, kwargs):
    mgr = make_manager({'debian': 1})
    fill(mgr)
    world = snapshot_of_world(simulator)
    simulator.reset_counts()
    with pytest.raises(exception.InvalidClaimRequest):
        call(mgr.claim, 'debian', name='vnf-bad', **kwargs)
    assert snapshot_of_world(simulator) == world
    assert simulator.request_counts[PUT] == 0


@pytest.mark.parametrize('key', [None, '', 'k' * 300, 'a\tb', 7])
def test_bad_key_to_confirm_or_release_is_refused(make_manager, simulator,
                                                  key):
    mgr = make_manager({'debian': 1})
    fill(mgr)
    world = snapshot_of_world(simulator)
    for method in (mgr.confirm, mgr.release):
        with pytest.raises(exception.InvalidClaimRequest):
            call(method, key)
    assert snapshot_of_world(simulator) == world


def test_longest_key_is_accepted(make_manager, simulator):
    mgr = make_manager({'debian': 1})
    fill(mgr)
    key = 'k' * 255
    result = call(mgr.claim, 'debian', claim_key=key)
    assert result['claim_key'] == key
    assert call(mgr.claim, 'debian', claim_key=key) == result


# -- bugs found: each test states what should hold ---------------------------


def test_same_key_twice_in_one_batch_fails_neither_the_batch_nor_the_key(
        make_manager, simulator, monkeypatch):
    mgr = make_manager({'debian': 3})
    fill(mgr)
    real = db_claims.commit_steps
    gate, entered = threading.Event(), threading.Event()
    batches = []

    def gated(pool, cluster, snapshot_id, incarnation, takes=(),
              finishes=()):
        if not entered.is_set():
            entered.set()
            assert gate.wait(10)  # hold the first batch: the rest queue
        batches.append([take.claim_key for take in takes])
        return real(pool, cluster, snapshot_id, incarnation, takes,
                    finishes)

    monkeypatch.setattr(db_claims, 'commit_steps', gated)
    with concurrent.futures.ThreadPoolExecutor(4) as executor:
        leader = executor.submit(call, mgr.claim, 'debian', name='lead')
        assert entered.wait(10)
        same = [executor.submit(call, mgr.claim, 'debian', name='twin',
                                claim_key='twin') for _ in range(2)]
        other = executor.submit(call, mgr.claim, 'debian', name='other',
                                claim_key='other')
        waiting.wait_for(lambda: len(mgr.claimer._steps(
            mgr.specs['debian'])._committer._queue) == 3,
            what='three claims queued behind the first batch')
        gate.set()
        leader.result(timeout=10)
        assert sorted(batches[1]) == ['other', 'twin', 'twin']
        other_result = other.result(timeout=10)
        answers = []
        for future in same:
            try:
                answers.append(future.result(timeout=10))
            except exception.ClaimInProgress:
                pass
    assert other_result['claim_key'] == 'other'
    assert answers and all(a == answers[0] for a in answers)
    assert receipt('twin').state == models.R_LEASED
    assert counts() == {}


def test_claim_past_many_vanished_volumes_creates_one(make_manager,
                                                      simulator):
    mgr = make_manager({'debian': 5})
    fill(mgr)
    for volume_id in rows_by_volume():
        simulator.remove_volume(volume_id)
    result = call(mgr.claim, 'debian', name='vnf-v', claim_key='v1')
    assert result['source'] == 'created'
    assert rows_by_volume() == {}
    assert receipt('v1').state == models.R_LEASED


def _gate_finishes(monkeypatch):
    """Hold every claim's finish step until the returned event is set."""
    real = db_claims.commit_steps
    gate = threading.Event()

    def gated(pool, cluster, snapshot_id, incarnation, takes=(),
              finishes=()):
        if finishes:
            assert gate.wait(15)
        return real(pool, cluster, snapshot_id, incarnation, takes,
                    finishes)

    monkeypatch.setattr(db_claims, 'commit_steps', gated)
    return gate


def test_sync_never_retags_a_volume_a_running_claim_renamed(
        make_manager, simulator, monkeypatch):
    mgr = make_manager({'debian': 1})
    fill(mgr)
    [volume_id] = rows_by_volume()
    gate = _gate_finishes(monkeypatch)
    # Sync reads the rows (the volume is ready), then its listing of
    # Cinder is slow ...
    simulator.inject_fault(status=None, delay=1.0, method='GET',
                           path=r'^/volumes/detail$', count=1)
    listed = simulator.request_counts[('GET', '/volumes/detail')]
    syncing = in_thread(mgr.sync, CTXT)
    waiting.wait_for(lambda: simulator.request_counts[
        ('GET', '/volumes/detail')] > listed, what='sync listing Cinder')
    # ... while a claim takes the row and renames the volume.
    claiming = in_thread(call, mgr.claim, 'debian', name='vnf-k',
                         claim_key='k')
    waiting.wait_for(
        lambda: simulator.get_volume(volume_id)['name'] == 'vnf-k',
        what='the claim renaming the volume')
    syncing.result(timeout=15)
    gate.set()
    result = claiming.result(timeout=15)
    assert result['volume_id'] == volume_id
    volume = simulator.get_volume(volume_id)
    assert (volume['name'], volume['metadata']) == ('vnf-k', LEASE_TAGS)


def test_sync_never_deletes_the_volume_a_miss_is_creating(
        make_manager, simulator):
    mgr = make_manager({'debian': 0})  # every claim misses
    # The claim's create, then its lease-tag PUT, are slow ...
    simulator.inject_fault(status=None, delay=1.0, method='POST',
                           path=r'^/volumes$', count=1)
    simulator.inject_fault(status=None, delay=1.0, method='PUT',
                           path=ONE_VOLUME, count=1)
    claiming = in_thread(call, mgr.claim, 'debian', name='vnf-miss',
                         claim_key='miss')
    waiting.wait_for(lambda: counts().get(models.CLAIMING) == 1,
                     what='the miss holding its intent row')
    # ... sync reads the rows now, lists Cinder once the volume exists
    # (still tagged for the pool), and its delete is slow too.
    simulator.inject_fault(status=None, delay=1.5, method='GET',
                           path=r'^/volumes/detail$', count=1)
    simulator.inject_fault(status=None, delay=1.5, method='DELETE',
                           path=ONE_VOLUME, count=1)
    mgr.sync(CTXT)
    result = claiming.result(timeout=15)
    assert result['source'] == 'created'
    # (sync has returned: a delete it sent has landed)
    volume = simulator.get_volume(result['volume_id'])
    assert volume is not None, 'the claimed volume was deleted'
    assert (volume['name'], volume['metadata']) == ('vnf-miss', LEASE_TAGS)
