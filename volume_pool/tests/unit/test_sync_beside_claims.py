"""Sync beside claims, manager-level, against the Cinder simulator: the
claim of a dead manager goes back to the pool at once, a live claim is
left alone until its deadline, and sync never retags or deletes a volume
a running claim is handing over.

The checks are those of ``claim_checks``: what Cinder and the tables
hold."""

import threading

import pytest
import sqlalchemy as sa

from volume_pool import claim_request
from volume_pool.db import api as db_api
from volume_pool.db import claims as db_claims
from volume_pool.db import managers as db_managers
from volume_pool.db import models
from volume_pool.fixtures import waiting
from volume_pool.tests.unit.claim_checks import all_receipts
from volume_pool.tests.unit.claim_checks import assert_in_pool
from volume_pool.tests.unit.claim_checks import assert_settled
from volume_pool.tests.unit.claim_checks import in_thread
from volume_pool.tests.unit.claim_checks import lease_tags
from volume_pool.tests.unit.claim_checks import ONE_VOLUME
from volume_pool.tests.unit.claim_checks import PAST
from volume_pool.tests.unit.claim_checks import receipt
from volume_pool.tests.unit.claim_checks import rows_by_volume
from volume_pool.tests.unit.manager_steps import call
from volume_pool.tests.unit.manager_steps import counts
from volume_pool.tests.unit.manager_steps import CTXT
from volume_pool.tests.unit.manager_steps import fill

# -- claims left by a manager that died -------------------------------------


def _hold(mgr, incarnation, key=None, hold=60.0, name='vnf-x'):
    """A claim's take, as a claim of ``name`` with ``key`` writes it."""
    take = db_claims.Take(
        claim_id='claim-of-%s' % incarnation, hold=hold, claim_key=key,
        fingerprint=claim_request.fingerprint(mgr.specs['debian'], name,
                                              True, None))
    taken, _done = db_claims.commit_steps(
        'debian', None, mgr.specs['debian'].snapshot_id, incarnation, [take])
    assert taken[0] is not None
    return take, taken[0]


def _handed_over(mgr, row, name='vnf-x', key=True):
    """What the holder did in Cinder before it stopped: the rename."""
    mgr.claimer._cinder.update_volume(
        row.volume_id, name=name, metadata=lease_tags() if key else {})


def _set_heartbeat(incarnation, moment):
    table = models.Manager
    with db_api.writer() as session:
        session.execute(sa.update(table)
                        .where(table.incarnation == incarnation)
                        .values(heartbeat_at=moment))


def _dead_holder(holder):
    """The incarnation of a manager that is gone, as ``holder`` says."""
    incarnation = 'inc-%s' % holder
    if holder != 'unregistered':
        db_managers.register('dead-host', None, incarnation)
    if holder == 'stopped':
        db_managers.stopped(incarnation)
    if holder == 'silent':
        _set_heartbeat(incarnation, PAST)  # > service_down_time ago
    return incarnation


@pytest.mark.parametrize('holder', ['unregistered', 'stopped', 'silent'])
def test_sync_returns_the_claim_of_a_dead_manager_at_once(
        make_manager, simulator, holder):
    """Its hand-over never landed: the volume is the pool's."""
    mgr = make_manager({'debian': 2})
    fill(mgr)
    take, row = _hold(mgr, _dead_holder(holder), key='k-dead')
    assert receipt('k-dead').state == models.R_CLAIMING
    # Well within its deadline, but its manager is gone.
    mgr.sync(CTXT)
    assert_in_pool(simulator, row.volume_id)
    assert simulator.get_volume(row.volume_id)['name'] == row.name
    assert receipt('k-dead') is None  # never answered: the key is free
    assert_settled(mgr, simulator)


@pytest.mark.parametrize('holder', ['unregistered', 'stopped', 'silent'])
def test_sync_records_a_dead_managers_handed_over_claim_as_its_callers(
        make_manager, simulator, holder):
    """A keyed claim answers before its finish is written: once its
    hand-over landed, the volume is its caller's, whatever the claim's
    manager did next.  Sync records it, and the key's retry gets it."""
    mgr = make_manager({'debian': 2})
    fill(mgr)
    take, row = _hold(mgr, _dead_holder(holder), key='k-dead')
    _handed_over(mgr, row)
    mgr.sync(CTXT)
    held = receipt('k-dead')
    assert (held.state, held.volume_id) == (models.R_LEASED, row.volume_id)
    assert held.lease_expires_at is not None
    volume = simulator.get_volume(row.volume_id)
    assert (volume['name'], volume['metadata']) == ('vnf-x', lease_tags())
    assert row.volume_id not in rows_by_volume()
    assert counts() == {models.AVAILABLE: 1}
    again = call(mgr.claim, 'debian', name='vnf-x', claim_key='k-dead')
    assert (again['volume_id'], again['name']) == (row.volume_id, 'vnf-x')
    assert counts() == {models.AVAILABLE: 1}


def test_sync_returns_a_dead_managers_handed_over_unkeyed_claim(
        make_manager, simulator):
    """An unkeyed claim answers only after its finish: a hand-over it
    never finished reached nobody, so the volume goes back."""
    mgr = make_manager({'debian': 2})
    fill(mgr)
    _take, row = _hold(mgr, _dead_holder('stopped'))
    _handed_over(mgr, row, key=False)
    mgr.sync(CTXT)
    assert_in_pool(simulator, row.volume_id)
    assert simulator.get_volume(row.volume_id)['name'] == row.name
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
    assert (volume['name'], volume['metadata']) == ('vnf-live', lease_tags())
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
    take, row = _hold(mgr, mgr.incarnation, hold=-3600.0)
    _handed_over(mgr, row, key=False)
    mgr.sync(CTXT)
    assert_settled(mgr, simulator)
    assert all_receipts() == []  # never answered: nothing recorded
    # The claim, finishing now, is refused: it must undo, not answer.
    _taken, [answer] = db_claims.commit_steps(
        'debian', None, mgr.specs['debian'].snapshot_id, mgr.incarnation,
        [], [db_claims.Finish(row_id=row.id, claim_id=take.claim_id,
                              state=models.R_LEASED,
                              result={'volume_id': row.volume_id})])
    assert answer is None
    assert_settled(mgr, simulator)


# -- a claim running while sync runs ---------------------------------------


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
    assert (volume['name'], volume['metadata']) == ('vnf-k', lease_tags())


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
    assert (volume['name'], volume['metadata']) == ('vnf-miss', lease_tags())


def test_sync_settles_the_rows_after_a_held_one(make_manager, simulator):
    """A row held by a live claim is passed over, not the end of the
    pool's run: a volume broken after it is still dealt with."""
    mgr = make_manager({'debian': 2})
    fill(mgr)
    take, held = _hold(mgr, mgr.incarnation, key='k-held')
    [broken] = [v for v in rows_by_volume() if v != held.volume_id]
    simulator.set_volume_status(broken, 'error')
    mgr.sync(CTXT)
    assert broken not in rows_by_volume() or \
        rows_by_volume()[broken].status == models.DELETING
    assert rows_by_volume()[held.volume_id].claim_id == take.claim_id


def test_sync_settles_the_rows_after_one_of_a_newer_release(make_manager,
                                                            simulator):
    """A row in a state this release does not know (a newer manager's,
    in a rolling upgrade) is passed over, not the end of its pool's run."""
    mgr = make_manager({'debian': 2})
    fill(mgr)
    first, broken = sorted(rows_by_volume().items(),
                           key=lambda item: item[1].id)
    table = models.PoolVolume
    with db_api.writer() as session:
        session.execute(sa.update(table).where(table.id == first[1].id)
                        .values(status='a-newer-state'))
    simulator.set_volume_status(broken[0], 'error')
    mgr.sync(CTXT)
    assert rows_by_volume()[first[0]].status == 'a-newer-state'
    assert broken[0] not in rows_by_volume() or \
        rows_by_volume()[broken[0]].status == models.DELETING
