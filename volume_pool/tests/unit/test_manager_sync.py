"""Sync, the whole manager against the Cinder simulator over real HTTP:
the table and Cinder brought back in line after deletes, errors, crashes
and snapshot changes, without losing a volume a claim or another manager
still holds."""

import datetime

from oslo_utils import timeutils
import pytest
import sqlalchemy as sa

from volume_pool import cinder as vp_cinder
from volume_pool import manager as vp_manager
from volume_pool import shrink
from volume_pool import sync
from volume_pool.db import api as db_api
from volume_pool.db import claims as db_claims
from volume_pool.db import managers as db_managers
from volume_pool.db import models
from volume_pool.tests.unit import claim_checks
from volume_pool.tests.unit.manager_steps import call
from volume_pool.tests.unit.manager_steps import CTXT
from volume_pool.tests.unit.manager_steps import fill
from volume_pool.tests.unit.manager_steps import ready
from volume_pool.tests.unit.manager_steps import started
from volume_pool.tests.unit.manager_steps import tagged
from volume_pool.tests.unit.manager_steps import wait_for


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
        metadata=claim_checks.pool_tags('debian', None, 'lost-request'))
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
        metadata=claim_checks.pool_tags('debian', None, 'lost-request'))
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
        metadata=claim_checks.pool_tags('debian', None, 'lost-request'))

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
        metadata=claim_checks.pool_tags('debian', None, 'extra'))
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
        metadata=claim_checks.pool_tags('debian', None, 'req-crash-1'))
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
    started(mgr)
    mgr.replenish(CTXT)
    wait_for(lambda: db_api.get_rows(None) and
             db_api.get_rows(None)[0].volume_id)
    [row] = db_api.get_rows(None)
    stuck = row.volume_id
    mgr.sync(CTXT)
    assert simulator.get_volume(stuck)['status'] == 'creating'  # in time
    frozen_time(1.2)  # past creating_timeout
    mgr.sync(CTXT)
    wait_for(lambda: simulator.get_volume(stuck) is None)
    # Its create worker may see the volume go and count a failed create:
    # time moves past the backoff that starts (a race a loaded machine
    # lost before).
    wait_for(lambda: not mgr.replenisher.is_pending(row.request_id),
             what='the stuck create given up')
    frozen_time(mgr.conf.volume_pool.backoff_max + 1)
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
        metadata=claim_checks.pool_tags('windows', None, 'lost-request'))
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


def test_sync_drops_a_live_peers_unbound_create_past_the_late_window(
        make_manager, simulator):
    """A live peer wrote the row and its create request got no answer (or
    never reached Cinder): past the late window no request of it can
    still bind a volume, so the owner of the pool drops the row instead
    of counting it as a create for creating_timeout (the pool would stay
    short that long)."""
    mgr = make_manager({'debian': 1})
    fill(mgr)
    db_managers.register('another-host', None, 'inc-alive')

    def unbound(name, created_at=None):
        row = db_api.create_volume_row(
            request_id='req-%s' % name, pool='debian', cluster=None,
            snapshot_id=mgr.specs['debian'].snapshot_id, size=1,
            name=name, host='another-host', incarnation='inc-alive')
        if created_at is not None:
            table = models.PoolVolume
            with db_api.writer() as session:
                session.execute(sa.update(table)
                                .where(table.id == row.id)
                                .values(created_at=created_at))
        return row
    young = unbound('young')
    # Older than the late window, well within creating_timeout.
    assert mgr.syncer._late_window.seconds < 120 < mgr.syncer._creating_timeout
    old = unbound('old', created_at=timeutils.utcnow() -
                  datetime.timedelta(seconds=120))
    mgr.sync(CTXT)
    left = {r.id for r in db_api.get_rows(None, status=models.CREATING)}
    assert left == {young.id}
    assert old.id not in left


def _claimed_with_pool_tags_in_the_listing(mgr, simulator, now_in_cinder):
    """A leased volume that a listing showed with the pool's tags, and
    what Cinder holds for it now."""
    fill(mgr)
    volume_id = call(mgr.claim, 'debian', name='vnf',
                     claim_key='k')['volume_id']
    listed = dict(simulator.get_volume(volume_id))
    listed['metadata'] = claim_checks.pool_tags('debian', None, 'r-1')
    with simulator._lock:
        simulator._store.volume(volume_id)['metadata'] = now_in_cinder
    stale = vp_cinder.CinderVolume.from_resource(listed)
    mgr.syncer._orphans.settle({'debian': [stale]}, mgr.specs, None,
                               sync.SyncReport())
    return simulator.get_volume(volume_id)['metadata']


def test_a_late_request_that_put_the_tags_back_loses_them(make_manager,
                                                           simulator):
    mgr = make_manager({'debian': 1})
    tags_back = dict(claim_checks.pool_tags('debian', None, 'r-1'))
    assert _claimed_with_pool_tags_in_the_listing(
        mgr, simulator, tags_back) == claim_checks.lease_tags(None)


def test_a_listing_older_than_the_claim_changes_nothing(make_manager,
                                                        simulator):
    # Listed before the claim took it; the caller has set its own since.
    mgr = make_manager({'debian': 1})
    callers = dict(claim_checks.lease_tags(None), app='vnf-1')
    assert _claimed_with_pool_tags_in_the_listing(
        mgr, simulator, callers) == callers


def test_the_start_syncs_before_it_replenishes():
    # oslo.service runs the tasks due in the order they are defined: at
    # start the table is in step with Cinder before the first refill.
    names = [name for name, _task in vp_manager.Manager._periodic_tasks]
    assert names.index('sync') < names.index('replenish')


def test_a_row_is_ready_only_once_its_volume_is_available(make_manager,
                                                          simulator):
    """A create's volume Cinder still works on under another status than
    ``creating`` (``restoring-backup``), in a pool that is no longer
    configured (its volumes stay, recorded): its row stays ``creating``
    until the volume is available."""
    mgr = make_manager({'debian': 1})
    volume_id = simulator.add_volume(
        snapshot_id=mgr.snapshots['debian'], status='restoring-backup',
        metadata=claim_checks.pool_tags('retired', None, 'req-rb'))
    db_api.create_volume_row(
        request_id='req-rb', volume_id=volume_id, pool='retired',
        cluster=None, snapshot_id=mgr.snapshots['debian'], size=1,
        name='n', host='mgr-1')
    mgr.sync(CTXT)
    assert [(r.volume_id, r.status) for r in db_api.get_rows(None)
            if r.pool == 'retired'] == [(volume_id, models.CREATING)]
    simulator.set_volume_status(volume_id, 'available')
    mgr.sync(CTXT)
    assert [r.status for r in db_api.get_rows(None)
            if r.pool == 'retired'] == [models.AVAILABLE]


def test_a_pool_whose_listing_failed_does_not_stop_the_others(
        make_manager, simulator):
    """Each pool is listed alone when they are few: the first one's
    listing failing leaves the next one settled in the same run."""
    mgr = make_manager({'alpha': 1, 'beta': 1})
    fill(mgr, 'alpha')
    fill(mgr, 'beta')
    [broken] = [r.volume_id for r in db_api.get_rows(None)
                if r.pool == 'beta']
    simulator.set_volume_status(broken, 'error')
    simulator.inject_fault(status=503, method='GET', path='/volumes/detail',
                           count=1)
    report = mgr.syncer.run(mgr.specs, mgr.cluster)
    assert report.errors == 1
    assert report.deleted == 1
    assert broken not in {r.volume_id for r in db_api.get_rows(
        None, status=models.AVAILABLE)}


def test_a_create_still_running_keeps_its_row(make_manager, simulator):
    """A creating row with no volume yet, whose create this process is
    still waiting on, is not abandoned by sync: the create binds it."""
    mgr = make_manager({'debian': 1})
    started(mgr)
    held = simulator.inject_fault(status=None, method='POST',
                                  path='/volumes', hold=True)
    mgr.replenish(CTXT)
    held.wait_arrived()
    [row] = db_api.get_rows(None)
    assert (row.status, row.volume_id) == (models.CREATING, None)
    assert mgr.replenisher.is_pending(row.request_id)
    mgr.syncer.run(mgr.specs, mgr.cluster)
    assert [r.request_id for r in db_api.get_rows(None)] == [row.request_id]
    held.release()
    fill(mgr)
    [made] = db_api.get_rows(None, status=models.AVAILABLE)
    assert made.request_id == row.request_id


def _set_status(volume_id, status):
    table = models.PoolVolume
    with db_api.writer() as session:
        assert session.execute(
            sa.update(table).where(table.volume_id == volume_id)
            .values(status=status)).rowcount == 1


def test_a_delete_refused_again_leaves_the_rest_of_the_pool_settled(
        make_manager, simulator):
    """A row being deleted whose delete Cinder refuses again: the error is
    counted, the delete is asked again by the next sync, and the rows
    after it in the same pool are settled in the same run."""
    mgr = make_manager({'debian': 2})
    fill(mgr)
    first, second = db_api.get_rows(None)  # by creation time
    _set_status(first.volume_id, models.DELETING)  # its delete was lost
    _set_status(second.volume_id, models.CREATING)  # ready since
    simulator.inject_fault(status=500, method='DELETE',
                           path='^/volumes/%s$' % first.volume_id)
    report = mgr.syncer.run(mgr.specs, mgr.cluster)
    assert report.errors == 1
    rows = claim_checks.rows_by_volume()
    assert rows[second.volume_id].status == models.AVAILABLE
    assert rows[first.volume_id].status == models.DELETING
    assert simulator.get_volume(first.volume_id)['status'] == 'available'
    report = mgr.syncer.run(mgr.specs, mgr.cluster)
    assert report.errors == 0
    assert simulator.get_volume(first.volume_id) is None or (
        simulator.get_volume(first.volume_id)['status'] == 'deleting')
