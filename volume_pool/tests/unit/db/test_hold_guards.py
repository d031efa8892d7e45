"""Guards of a held row's end and of the receipts that follow it, each
pinned on its own: the claim id a statement acts on, the state a receipt
must be in, and which receipt an outcome is written to."""

from volume_pool.db import api as db_api
from volume_pool.db import holds as db_holds
from volume_pool.db import models
from volume_pool.db import receipts as db_receipts
from volume_pool.tests.unit.db.test_claims import _add
from volume_pool.tests.unit.db.test_claims import _finish
from volume_pool.tests.unit.db.test_claims import _take


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
