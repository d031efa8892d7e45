"""Guards of the receipts' own statements, each pinned on its own: a
release that loses to a claim of its key, a claim stopped as it finishes
or before it holds a row, the hold of a released volume, and the states
and pool the operator's claim list shows."""

from oslo_utils import uuidutils
import pytest

from volume_pool.db import claims as db_claims
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


def test_a_release_of_a_key_a_claim_took_first_records_nothing(
        any_database):
    """record_release loses to a claim's receipt of the same key (one
    unique key): it answers None, the release reads the receipt again,
    and the claim's receipt is left as it was."""
    _add()
    take, _held = _take(key='k1')
    assert db_receipts.record_release(None, 'p1', 'k1') is None
    receipt = db_receipts.get(None, 'p1', 'k1')
    assert (receipt.claim_id, receipt.state) == (take.claim_id,
                                                 models.R_CLAIMING)


def test_stopping_a_claim_that_finished_meanwhile_changes_nothing(
        any_database):
    """stop_claim of a claim that finished before the stop committed:
    None (the release reads the receipt again), and the caller keeps
    its lease."""
    _add()
    take, held = _take(key='k1')
    _finish(held, take.claim_id)
    assert db_receipts.stop_claim(take.claim_id) is None
    assert _state('k1') == models.R_LEASED


def test_a_stopped_miss_that_holds_no_row_ends_only_its_own_receipt(
        any_database):
    """stop_claim of a miss before its create: its receipt is
    ``released`` at once, and no other claim's receipt moves."""
    _add()
    _add()
    leased, held = _take(key='k1')
    _finish(held, leased.claim_id)
    _running, _row = _take(key='k2')
    miss = db_claims.Take(claim_id=uuidutils.generate_uuid(), hold=60.0,
                          claim_key='k3', project_id='p1')
    db_claims.write_receipt('debian', None, 'snap-1', miss)
    assert db_receipts.stop_claim(miss.claim_id).state == models.R_RELEASED
    assert (_state('k1'), _state('k2'), _state('k3')) == (
        models.R_LEASED, models.R_CLAIMING, models.R_RELEASED)


def test_the_hold_of_a_released_volume_keeps_its_request_id(any_database):
    """begin_release holds the volume with a row under the request id it
    was made with: the id of the pool's tags it gets back."""
    made = _add()
    take, held = _take(key='k1')
    _finish(held, take.claim_id)
    receipt, row = db_receipts.begin_release(None, 'p1', 'k1', 'h1',
                                             INCARNATION, 60.0)
    assert receipt.state == models.R_RELEASING
    assert (row.volume_id, row.request_id) == (made.volume_id,
                                               made.request_id)


def test_the_claim_list_shows_only_the_states_and_pool_asked_for(
        any_database):
    """listing (``claim list --state --pool``): the receipts in those
    states, of that pool; without either, every receipt."""
    _add()
    _add()
    _add(pool='windows')
    leased, held = _take(key='k1')
    _finish(held, leased.claim_id)
    _running, _row = _take(key='k2')
    _elsewhere, _row = _take(key='k3', pool='windows')

    def keys(**kwargs):
        return sorted(r.claim_key for r in db_receipts.listing(None,
                                                               **kwargs))

    assert keys(states=[models.R_LEASED]) == ['k1']
    assert keys(pool='debian') == ['k1', 'k2']
    assert keys(pool='windows') == ['k3']
    assert keys() == ['k1', 'k2', 'k3']
