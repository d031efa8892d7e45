"""Guards of a claim's own statements, each pinned on its own: the new
row of a miss, the volume bound to it, the accepted transfer, a take whose
commit was retried, the takes of one batch, the hold a claim used up
queueing, and the answer a claim reads back when the reply of its commit
was lost."""

import time

from oslo_utils import uuidutils
import pytest

from volume_pool import project_claims
from volume_pool.db import api as db_api
from volume_pool.db import claims as db_claims
from volume_pool.db import models
from volume_pool.db import receipts as db_receipts
from volume_pool.tests.unit.db.test_claims import _add
from volume_pool.tests.unit.db.test_claims import _finish
from volume_pool.tests.unit.db.test_claims import _take
from volume_pool.tests.unit.db.test_claims import INCARNATION

# The functional layer runs these again on the real services.
pytestmark = pytest.mark.recollect


def _miss(hold=60.0, key=None):
    """A miss's receipt, then its new row (None if refused)."""
    take = db_claims.Take(claim_id=uuidutils.generate_uuid(), hold=hold,
                          claim_key=key, project_id='p1')
    db_claims.write_receipt('debian', None, 'snap-1', take)
    return take


def _hold_new(take):
    return db_claims.hold_new_volume(
        take.claim_id, request_id=uuidutils.generate_uuid(), pool='debian',
        cluster=None, snapshot_id='snap-1', size=1, name='vol', host='h1',
        incarnation=INCARNATION)


def _rows():
    return {r.id: r for r in db_api.get_rows(None, pool='debian')}


def test_a_miss_holds_a_new_row_only_while_claiming_and_in_time(
        any_database):
    """hold_new_volume: a row for a claim still ``claiming`` before its
    deadline; none for a stopped claim or one past its deadline."""
    take = _miss()
    row = _hold_new(take)
    assert (row.status, row.claim_id) == (models.CLAIMING, take.claim_id)
    stopped = _miss()
    db_receipts.stop_claim(stopped.claim_id)
    assert _hold_new(stopped) is None
    assert _hold_new(_miss(hold=0.0)) is None
    assert list(_rows()) == [row.id]


def test_the_created_volume_is_bound_to_the_claims_own_row_and_receipt(
        any_database):
    """bind_volume writes the volume id only to the row the claim holds,
    and then to its receipt."""
    mine, other = _miss(key='k1'), _miss(key='k2')
    row, other_row = _hold_new(mine), _hold_new(other)
    assert not db_claims.bind_volume(row.id, other.claim_id, 'vol-x')
    assert db_claims.bind_volume(row.id, mine.claim_id, 'vol-a')
    rows = _rows()
    assert (rows[row.id].volume_id, rows[other_row.id].volume_id) == (
        'vol-a', None)
    assert db_receipts.get(None, 'p1', 'k1').volume_id == 'vol-a'
    assert db_receipts.get(None, 'p1', 'k2').volume_id is None


def test_an_accepted_transfer_is_recorded_only_for_a_claiming_receipt(
        any_database):
    """record_handed_over: the claim's receipt ends ``used`` and its row,
    only its row, goes; a stopped claim's receipt is left to sync."""
    _add()
    _add()
    _add()
    take, held = _take(key='k1')
    stopped, stopped_row = _take(key='k2')
    _other, other_row = _take(key='k3')
    answer = db_claims.record_handed_over(held.id, take.claim_id,
                                          {'volume_id': held.volume_id})
    assert answer == {'volume_id': held.volume_id, 'lease_expires_at': None}
    assert db_receipts.get(None, 'p1', 'k1').state == models.R_USED
    db_receipts.stop_claim(stopped.claim_id)
    assert db_claims.record_handed_over(
        stopped_row.id, stopped.claim_id,
        {'volume_id': stopped_row.volume_id}) is None
    assert db_receipts.get(None, 'p1', 'k2').state == models.R_RELEASING
    assert sorted(_rows()) == sorted([stopped_row.id, other_row.id])


def test_a_take_whose_commit_was_retried_gets_its_own_row(any_database):
    """commit_steps after a commit whose answer was lost (the same take
    again): the take gets the row it holds, not a replay of its key."""
    _add()
    _add()
    take = db_claims.Take(claim_id=uuidutils.generate_uuid(), hold=60.0,
                          claim_key='k1', project_id='p1')
    [row], _done = db_claims.commit_steps('debian', None, 'snap-1',
                                          INCARNATION, [take])
    [again], _done = db_claims.commit_steps('debian', None, 'snap-1',
                                            INCARNATION, [take])
    assert not isinstance(again, db_claims.Existing)
    assert again.id == row.id


def test_unkeyed_takes_of_one_batch_get_a_row_each(any_database):
    """Only takes that share a claim key are answered from one receipt."""
    _add()
    _add()
    takes = [db_claims.Take(claim_id=uuidutils.generate_uuid(), hold=60.0,
                            project_id='p1') for _ in range(2)]
    rows, _done = db_claims.commit_steps('debian', None, 'snap-1',
                                         INCARNATION, takes)
    assert len({row.id for row in rows}) == 2


def test_a_key_repeated_in_one_batch_is_answered_from_its_projects_receipt(
        any_database):
    """Two takes of one project with the same claim key in one batch: the
    second is answered from the receipt of the first, found by that
    project and key."""
    _add()
    _add()
    first, again = [db_claims.Take(claim_id=uuidutils.generate_uuid(),
                                   hold=60.0, claim_key='k1',
                                   project_id='p1') for _ in range(2)]
    [row, existing], _done = db_claims.commit_steps(
        'debian', None, 'snap-1', INCARNATION, [first, again])
    assert not isinstance(row, db_claims.Existing)
    assert isinstance(existing, db_claims.Existing)
    assert existing.receipt.claim_id == first.claim_id
    assert sum(r.status == models.CLAIMING for r in _rows().values()) == 1


def test_a_claim_that_used_up_its_hold_queueing_cannot_finish(any_database):
    """The time a claim waited for its batch counts against its hold: one
    that arrived longer ago than its hold is past its deadline as soon as
    it holds its row, and its finish is refused."""
    _add()
    take = db_claims.Take(claim_id=uuidutils.generate_uuid(), hold=60.0,
                          claim_key='k1', project_id='p1',
                          since=time.monotonic() - 61.0)
    [row], _done = db_claims.commit_steps('debian', None, 'snap-1',
                                          INCARNATION, [take])
    assert _finish(row, take.claim_id) is None
    assert _rows()[row.id].status == models.CLAIMING


def test_a_used_answer_has_no_lease(any_database):
    """A finish recorded ``used`` gets no ``lease_expires_at``, whatever
    lease it carries."""
    _add()
    take, held = _take(key='k1')
    _taken, [answer] = db_claims.commit_steps(
        'debian', None, 'snap-1', INCARNATION, [], [db_claims.Finish(
            row_id=held.id, claim_id=take.claim_id, state=models.R_USED,
            result={'volume_id': held.volume_id}, lease=60.0)])
    assert answer['lease_expires_at'] is None
    assert db_receipts.get(None, 'p1', 'k1').lease_expires_at is None


def test_only_a_receipt_that_holds_its_volume_gives_a_committed_answer(
        any_database):
    """committed_answer (a finish or a hand-over whose reply was lost):
    the answer of a receipt ``leased`` or ``used``; none for a claim that
    left no receipt, one still running, or one whose caller released the
    volume since -- its answer is still written, but no longer true."""
    _add()
    _add()
    assert project_claims.committed_answer('no-such-claim') is None
    running, _row = _take(key='k1')
    assert project_claims.committed_answer(running.claim_id) is None
    take, held = _take(key='k2')
    _finish(held, take.claim_id)
    assert project_claims.committed_answer(take.claim_id)['volume_id'] == (
        held.volume_id)
    receipt, _hold = db_receipts.begin_release(None, 'p1', 'k2', 'h1',
                                               INCARNATION, 60.0)
    assert receipt.state == models.R_RELEASING
    assert db_receipts.answer(receipt) is not None
    assert project_claims.committed_answer(take.claim_id) is None
