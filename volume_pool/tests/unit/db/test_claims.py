"""The claim's transactions and receipts on SQLite, MariaDB and PostgreSQL:
holds fenced by claim id, incarnation and the database's clock."""

import concurrent.futures
import threading

from oslo_utils import uuidutils
import pytest
import sqlalchemy as sa

from volume_pool.db import api as db_api
from volume_pool.db import claims as db_claims
from volume_pool.db import clock
from volume_pool.db import holds as db_holds
from volume_pool.db import managers as db_managers
from volume_pool.db import models
from volume_pool.db import receipts as db_receipts

# The functional layer runs these again on the real services.
pytestmark = pytest.mark.recollect

INCARNATION = 'inc-alive'


def _add(pool='debian', cluster=None, status=models.AVAILABLE,
         snapshot_id='snap-1'):
    request_id = uuidutils.generate_uuid()
    return db_api.create_volume_row(
        request_id=request_id, volume_id=uuidutils.generate_uuid(),
        pool=pool, cluster=cluster, snapshot_id=snapshot_id, size=1,
        name='volume-pool-%s-%s' % (pool, request_id[:8]), host='h1',
        status=status)


def _take(claim_id=None, hold=60.0, key=None, project='p1',
          fingerprint='fp', pool='debian', cluster=None, snapshot='snap-1',
          incarnation=INCARNATION):
    take = db_claims.Take(claim_id=claim_id or uuidutils.generate_uuid(),
                          hold=hold, fingerprint=fingerprint, claim_key=key,
                          project_id=project)
    taken, _done = db_claims.commit_steps(pool, cluster, snapshot,
                                           incarnation, [take])
    return take, taken[0]


def _finish(row, claim_id, state=models.R_LEASED, lease=60.0):
    _taken, done = db_claims.commit_steps(
        'debian', None, 'snap-1', INCARNATION, [], [db_claims.Finish(
            row_id=row.id, claim_id=claim_id, state=state,
            result={'volume_id': row.volume_id}, lease=lease)])
    return done[0]


def _statuses():
    return {r.id: (r.status, r.claim_id)
            for r in db_api.get_rows(None, pool='debian')}


def test_take_holds_oldest_row_and_writes_its_receipt(any_database):
    first, _second = _add(), _add()
    take, row = _take(key='k1')
    assert (row.id, row.status, row.claim_id, row.incarnation) == (
        first.id, models.CLAIMING, take.claim_id, INCARNATION)
    assert row.claim_deadline is not None
    receipt = db_receipts.get(None, 'p1', 'k1')
    assert (receipt.state, receipt.volume_id, receipt.claim_id,
            receipt.volume_name) == (models.R_CLAIMING, first.volume_id,
                                     take.claim_id, first.name)


def test_take_respects_pool_cluster_and_snapshot(any_database):
    _add(pool='windows')
    _add(cluster='east')
    _add(snapshot_id='old-snap')
    assert _take()[1] is None
    assert _take(cluster='east')[1].cluster == 'east'
    assert _take(snapshot=None)[1].snapshot_id == 'old-snap'


def test_finish_deletes_row_and_records_answer(any_database):
    row = _add()
    take, held = _take(key='k1')
    answer = _finish(held, take.claim_id, lease=3600.0)
    assert answer['volume_id'] == row.volume_id
    assert answer['lease_expires_at'].endswith('Z')
    assert _statuses() == {}
    receipt = db_receipts.get(None, 'p1', 'k1')
    assert receipt.state == models.R_LEASED
    assert db_receipts.answer(receipt) == answer


def test_finish_refused_to_another_claim_id(any_database):
    _add()
    _take_, held = _take()
    assert _finish(held, 'someone-else') is None
    assert _statuses()[held.id][0] == models.CLAIMING


def test_finish_refused_after_the_deadline(any_database):
    _add()
    take, held = _take(hold=0.0)  # the deadline is the moment of the take
    assert _finish(held, take.claim_id) is None
    assert _statuses()[held.id] == (models.CLAIMING, take.claim_id)


def test_same_key_is_answered_from_its_receipt(any_database):
    _add()
    _add()
    first, held = _take(key='k1')
    again, existing = _take(key='k1')
    assert isinstance(existing, db_claims.Existing)
    assert existing.receipt.claim_id == first.claim_id
    # The retry took no second row.
    assert sorted(s for s, _c in _statuses().values()) == [
        models.AVAILABLE, models.CLAIMING]
    # Another project may use the same key.
    _other, row = _take(key='k1', project='p2')
    assert row is not None and not isinstance(row, db_claims.Existing)


def test_batch_with_a_used_key_still_serves_the_others(any_database):
    for _ in range(3):
        _add()
    _take(key='dup')
    takes = [db_claims.Take(claim_id=uuidutils.generate_uuid(), hold=60,
                            claim_key=key, project_id='p1')
             for key in ('fresh', 'dup', None)]
    taken, _done = db_claims.commit_steps('debian', None, 'snap-1',
                                           INCARNATION, takes)
    assert isinstance(taken[1], db_claims.Existing)
    assert taken[0].status == taken[2].status == models.CLAIMING
    assert taken[0].id != taken[2].id


def test_empty_pool_still_writes_the_receipt_for_the_miss(any_database):
    take, row = _take(key='k1')
    assert row is None
    assert db_receipts.get(None, 'p1', 'k1').volume_id is None
    db_claims.drop_receipt(take.claim_id)
    assert db_receipts.get(None, 'p1', 'k1') is None


def test_give_back_drops_a_failed_claims_receipt(any_database):
    _add()
    take, held = _take(key='k1')
    assert db_holds.give_back(held.id, 'other') is False
    assert db_holds.give_back(held.id, take.claim_id) == models.R_CLAIMING
    assert _statuses()[held.id] == (models.AVAILABLE, None)
    assert db_receipts.get(None, 'p1', 'k1') is None  # the key is free


def test_extend_hold_only_for_the_holder(any_database):
    _add()
    take, held = _take(hold=0.0)
    assert not db_holds.extend_hold(held.id, 'other', INCARNATION, 60)
    assert db_holds.extend_hold(held.id, take.claim_id, INCARNATION, 60)
    assert _finish(held, take.claim_id) is not None


def _take_over(down_time=60):
    return db_holds.take_over(None, 'debian', 'inc-sync', 60, down_time,
                               legacy_timeout=120)


def test_take_over_spares_live_holders_within_their_deadline(any_database):
    db_managers.register('h1', None, INCARNATION)
    _add()
    _take()
    assert _take_over() == []


def test_take_over_after_the_deadline_fences_the_claim(any_database):
    db_managers.register('h1', None, INCARNATION)
    _add()
    take, held = _take(key='k1', hold=0.0)
    [(row, state)] = _take_over()
    assert (row.id, state) == (held.id, models.R_CLAIMING)
    assert row.claim_id != take.claim_id
    # The receipt follows the hold; the old claim can no longer act.
    assert db_receipts.get(None, 'p1', 'k1').claim_id == row.claim_id
    assert not db_holds.extend_hold(held.id, take.claim_id, INCARNATION, 60)
    assert _finish(held, take.claim_id) is None
    assert db_holds.give_back(row.id, row.claim_id) == models.R_CLAIMING
    assert db_receipts.get(None, 'p1', 'k1') is None


def test_take_over_when_the_incarnation_is_gone(any_database):
    db_managers.register('h1', None, INCARNATION)
    db_managers.register('h2', None, 'inc-sync')
    _add()
    _add()
    _take()
    db_managers.stopped(INCARNATION)
    assert len(_take_over()) == 1
    # Never registered, or silent past service_down_time, is gone too.
    _take(incarnation='never-registered')
    assert len(_take_over()) == 1


def test_silent_manager_is_gone_by_the_database_clock(any_database):
    db_managers.register('h1', None, INCARNATION)
    _add()
    _take()
    with db_api.writer() as session:
        old = clock.later(clock.now(session), -120)
        session.execute(sa.update(models.Manager).values(heartbeat_at=old))
    assert db_managers.live(None, 60) == []
    assert len(_take_over(down_time=60)) == 1
    assert db_managers.heartbeat(INCARNATION)
    assert [host for host, _i, _t in db_managers.live(None, 60)] == ['h1']


def test_uncertain_rows_are_taken_over_at_once(any_database):
    db_managers.register('h1', None, INCARNATION)
    _add()
    take, held = _take()
    assert db_holds.mark_uncertain(held.id, take.claim_id)
    [(row, _state)] = _take_over()
    assert row.status == models.UNCERTAIN
    assert db_holds.let_go(row.id, row.claim_id) == models.R_CLAIMING
    assert _statuses() == {}


def test_release_holds_the_volume_again_then_gives_it_back(any_database):
    row = _add()
    take, held = _take(key='k1')
    _finish(held, take.claim_id)
    receipt, hold = db_receipts.begin_release(None, 'p1', 'k1', 'h1',
                                              INCARNATION, 60)
    assert receipt.state == models.R_RELEASING
    assert (hold.volume_id, hold.status, hold.claim_id, hold.name) == (
        row.volume_id, models.CLAIMING, receipt.claim_id, row.name)
    # Releasing again while it runs changes nothing.
    again, none = db_receipts.begin_release(None, 'p1', 'k1', 'h1',
                                            INCARNATION, 60)
    assert (again.state, none) == (models.R_RELEASING, None)
    assert db_holds.give_back(hold.id, hold.claim_id) == models.R_RELEASING
    assert db_receipts.get(None, 'p1', 'k1').state == models.R_RELEASED
    assert _statuses()[hold.id] == (models.AVAILABLE, None)


def test_released_volume_let_go_ends_used(any_database):
    _add()
    take, held = _take(key='k1')
    _finish(held, take.claim_id)
    _receipt, hold = db_receipts.begin_release(None, 'p1', 'k1', 'h1',
                                               INCARNATION, 60)
    assert db_holds.let_go(hold.id, hold.claim_id) == models.R_RELEASING
    assert db_receipts.get(None, 'p1', 'k1').state == models.R_USED


def test_confirm_then_no_lease_return(any_database):
    _add()
    take, held = _take(key='k1')
    _finish(held, take.claim_id, lease=-1)  # ran out a second ago
    assert [r.claim_key for r in db_receipts.expired_leases(None)] == ['k1']
    assert db_receipts.confirm(None, 'p1', 'k1').state == models.R_USED
    assert db_receipts.expired_leases(None) == []
    _r, hold = db_receipts.begin_lease_return(take.claim_id, 'h1',
                                              INCARNATION, 60)
    assert hold is None


def test_expired_lease_is_returned(any_database):
    _add()
    take, held = _take(key='k1')
    _finish(held, take.claim_id, lease=-1)  # ran out a second ago
    receipt, hold = db_receipts.begin_lease_return(take.claim_id, 'h1',
                                                   INCARNATION, 60)
    assert receipt.state == models.R_RETURNING and hold is not None
    assert db_holds.give_back(hold.id, hold.claim_id) == models.R_RETURNING
    assert db_receipts.get(None, 'p1', 'k1').state == models.R_RETURNED


def test_a_lease_not_run_out_is_not_returned(any_database):
    _add()
    take, held = _take(key='k1')
    _finish(held, take.claim_id, lease=3600)
    assert db_receipts.expired_leases(None) == []
    _r, hold = db_receipts.begin_lease_return(take.claim_id, 'h1',
                                              INCARNATION, 60)
    assert hold is None


def test_purge_drops_receipts_of_claims_that_died_rowless(any_database):
    take, row = _take(key='k1', hold=0.0)
    assert row is None
    assert db_receipts.purge(None, ttl=3600) == 1
    assert db_receipts.get(None, 'p1', 'k1') is None


def test_concurrent_claims_never_hand_out_a_row_twice(any_database):
    total = 40
    for _ in range(total):
        _add()
    barrier = threading.Barrier(6)

    def claimer(n):
        barrier.wait()
        taken = []
        for batch in range(100):
            takes = [db_claims.Take(claim_id=uuidutils.generate_uuid(),
                                    hold=60, claim_key='k-%d-%d-%d'
                                    % (n, batch, i)) for i in range(3)]
            rows, _done = db_claims.commit_steps(
                'debian', None, 'snap-1', INCARNATION, takes)
            taken += [r.volume_id for r in rows if r is not None]
            if rows[-1] is None:
                return taken
        return taken

    with concurrent.futures.ThreadPoolExecutor(6) as executor:
        claimed = [v for taken in executor.map(claimer, range(6))
                   for v in taken]
    assert len(claimed) == total
    assert len(set(claimed)) == total
