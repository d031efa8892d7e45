"""Guards of a held row's end and of the receipts that follow it, each
pinned on its own: the claim id a statement acts on, the state a receipt
must be in, and which receipt an outcome is written to."""

import datetime

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
from volume_pool.tests.unit.db.test_claims import _add
from volume_pool.tests.unit.db.test_claims import _finish
from volume_pool.tests.unit.db.test_claims import _take
from volume_pool.tests.unit.db.test_claims import INCARNATION

# The functional layer runs these again on the real services.
pytestmark = pytest.mark.recollect


def _state(key):
    return db_receipts.get(None, 'p1', key).state


def test_a_stopped_claim_given_back_ends_its_own_receipt_released(
        any_database):
    """give_back of a claim released before it answered: only that claim's
    receipt becomes ``released``; another caller's lease is untouched."""
    _add()
    _add()
    stopped, held = _take(key='k1')
    other, other_held = _take(key='k2')
    _finish(other_held, other.claim_id)
    assert db_receipts.stop_claim(stopped.claim_id).state == (
        models.R_RELEASING)
    assert db_holds.give_back(held.id, stopped.claim_id) == (
        models.R_RELEASING)
    assert (_state('k1'), _state('k2')) == (models.R_RELEASED,
                                            models.R_LEASED)


def test_give_back_records_a_new_size_and_keeps_an_unknown_one(
        any_database):
    """give_back writes the size Cinder reported, and only that: without
    one, the row keeps the size it had."""
    _add()
    take, held = _take()
    assert db_holds.give_back(held.id, take.claim_id, size=3)
    again, held = _take()
    assert db_holds.give_back(held.id, again.claim_id)
    [row] = db_api.get_rows(None, pool='debian')
    assert row.size == 3


def _take_into(project, key):
    take = db_claims.Take(claim_id=uuidutils.generate_uuid(), hold=60.0,
                          fingerprint='fp', claim_key=key, project_id='p1',
                          target_project=project)
    taken, _done = db_claims.commit_steps('debian', None, 'snap-1',
                                           INCARNATION, [take])
    return take, taken[0]


def test_let_go_to_the_claims_target_project_ends_used(any_database):
    """let_go with the owner Cinder reports: a claim into that very project
    handed the volume over (``used``, with its answer)."""
    row = _add()
    take, held = _take_into('p2', 'k1')
    assert db_holds.let_go(held.id, take.claim_id, owner='p2') == (
        models.R_CLAIMING)
    receipt = db_receipts.get(None, 'p1', 'k1')
    assert receipt.state == models.R_USED
    assert db_receipts.answer(receipt)['volume_id'] == row.volume_id


def test_a_let_go_hand_over_keeps_a_deadline_only_once_it_passed(
        any_database):
    """Recorded ``used`` past the claim's deadline, the receipt keeps the
    deadline (no caller can have been told: a release brings the volume
    back); within it, a retry with the key may have got the answer, and
    the receipt keeps none."""
    _add()
    _add()
    late, late_row = _take_into('p2', 'late')
    soon, soon_row = _take_into('p2', 'soon')
    table = models.ClaimReceipt
    with db_api.writer() as session:
        session.execute(sa.update(table)
                        .where(table.claim_id == late.claim_id)
                        .values(deadline=datetime.datetime(2000, 1, 1)))
    db_holds.let_go(late_row.id, late.claim_id, owner='p2')
    db_holds.let_go(soon_row.id, soon.claim_id, owner='p2')
    assert db_receipts.get(None, 'p1', 'late').deadline == (
        datetime.datetime(2000, 1, 1))
    assert db_receipts.get(None, 'p1', 'soon').deadline is None


def test_let_go_to_another_project_is_no_hand_over(any_database):
    """let_go with an owner that is not the claim's target: the claim gave
    nothing, its receipt goes and the key is free."""
    _add()
    _add()
    take, held = _take_into('p2', 'k1')
    assert db_holds.let_go(held.id, take.claim_id, owner='p3') == (
        models.R_CLAIMING)
    assert db_receipts.get(None, 'p1', 'k1') is None
    plain, held = _take(key='k2')
    assert db_holds.let_go(held.id, plain.claim_id, owner='p3') == (
        models.R_CLAIMING)
    assert db_receipts.get(None, 'p1', 'k2') is None


def test_a_legacy_hold_is_taken_over_only_after_the_legacy_timeout(
        any_database):
    """take_over of a row held by a manager of the previous release (no
    incarnation): spared while younger than ``legacy_timeout``."""
    _add()
    _take(incarnation=None)
    assert db_holds.take_over(None, 'debian', 'inc-sync', 60, 60,
                              legacy_timeout=120) == []
    with db_api.writer() as session:
        old = clock.later(clock.now(session), -200)
        session.execute(sa.update(models.PoolVolume).values(claimed_at=old))
    assert len(db_holds.take_over(None, 'debian', 'inc-sync', 60, 60,
                                  legacy_timeout=120)) == 1


def test_a_volume_given_back_ready_is_ready_from_then(any_database):
    """give_back as ``available`` restarts the row's ready time (idle
    shrink counts from it); given back still creating, it has none."""
    _add()
    with db_api.writer() as session:
        old = clock.later(clock.now(session), -3600)
        session.execute(sa.update(models.PoolVolume).values(ready_at=old))
    take, held = _take()
    assert db_holds.give_back(held.id, take.claim_id)
    [row] = db_api.get_rows(None, pool='debian')
    assert row.ready_at > old
    take, held = _take()
    with db_api.writer() as session:
        session.execute(sa.update(models.PoolVolume).values(ready_at=None))
    assert db_holds.give_back(held.id, take.claim_id,
                              status=models.CREATING)
    [row] = db_api.get_rows(None, pool='debian')
    assert row.ready_at is None


def test_a_stopped_claim_whose_volume_is_let_go_ends_released(
        any_database):
    """let_go of a claim released before it answered: the caller has
    nothing, so its receipt ends ``released``, never ``used``."""
    _add()
    take, held = _take(key='k1')
    db_receipts.stop_claim(take.claim_id)
    assert db_holds.let_go(held.id, take.claim_id) == models.R_RELEASING
    assert _state('k1') == models.R_RELEASED


def test_only_a_leased_receipt_is_latched_used(any_database):
    """latch_used (sync saw the volume attached) turns ``leased`` into
    ``used``, and leaves a receipt in any other state alone."""
    _add()
    _add()
    take, held = _take(key='k1')
    _finish(held, take.claim_id)
    assert db_receipts.latch_used(take.claim_id)
    assert _state('k1') == models.R_USED
    stopped, _held = _take(key='k2')
    db_receipts.stop_claim(stopped.claim_id)
    assert not db_receipts.latch_used(stopped.claim_id)
    assert _state('k2') == models.R_RELEASING


def test_purge_keeps_a_settled_receipt_until_its_ttl(any_database):
    """purge forgets a settled receipt only ``ttl`` seconds after it
    settled: a retry within that time still gets its answer."""
    db_receipts.record_release(None, 'p1', 'k1')
    assert db_receipts.purge(None, ttl=3600) == 0
    assert _state('k1') == models.R_RELEASED
    with db_api.writer() as session:
        old = clock.later(clock.now(session), -7200)
        session.execute(sa.update(models.ClaimReceipt).values(updated_at=old))
    assert db_receipts.purge(None, ttl=3600) == 1


def test_a_claim_past_its_deadline_is_spared_for_the_late_window(
        any_database):
    """take_over leaves a ``claiming`` row whose deadline has passed to its
    holder for ``grace`` seconds more: a request of the holder may still
    land on the volume."""
    db_managers.register('h1', None, INCARNATION)
    _add()
    _take(hold=0.0)  # the deadline is the moment of the take
    assert db_holds.take_over(None, 'debian', 'inc-sync', 60, 60,
                              legacy_timeout=120, grace=600) == []
    assert len(db_holds.take_over(None, 'debian', 'inc-sync', 60, 60,
                                  legacy_timeout=120, grace=0)) == 1
