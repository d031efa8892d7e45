"""A transaction that loses a race (a deadlock, or on a Galera cluster a
write set that failed certification at commit) is retried on its own
budget, and a take's lost race never costs the finishes batched with it
their answers."""

from unittest import mock

from oslo_db import exception as db_exc
import pytest

from volume_pool import claims
from volume_pool import group_commit
from volume_pool.db import api as db_api
from volume_pool.db import claims as db_claims
from volume_pool.db import models
from volume_pool.tests.unit.db.test_claims import _add
from volume_pool.tests.unit.db.test_claims import _take
from volume_pool.tests.unit.db.test_claims import INCARNATION


@pytest.fixture
def no_waits():
    """Retries without their waits: the budgets are what is tested."""
    with mock.patch('oslo_db.api.time.sleep'):
        yield


@pytest.fixture
def conflict_retries():
    """Sets the deadlock budget, and puts the configured one back."""
    before = db_api._on_conflict.max_retries

    def set_to(count):
        db_api._on_conflict.max_retries = count
    yield set_to
    db_api._on_conflict.max_retries = before


def _failing(error, times):
    calls = []

    @db_api.retry
    def transaction():
        calls.append(1)
        if len(calls) <= times:
            raise error
        return 'committed'
    return transaction, calls


def test_a_deadlock_is_retried_on_its_own_budget(no_waits, conflict_retries):
    conflict_retries(10)
    transaction, calls = _failing(db_exc.DBDeadlock(), times=10)
    assert transaction() == 'committed'
    assert len(calls) == 11
    conflict_retries(2)
    transaction, calls = _failing(db_exc.DBDeadlock(), times=3)
    with pytest.raises(db_exc.DBDeadlock):
        transaction()
    assert len(calls) == 3


def test_a_dropped_connection_is_retried_three_times(no_waits,
                                                     conflict_retries):
    """However large the conflict budget: a database that is away must
    fail a claim fast."""
    conflict_retries(50)
    transaction, calls = _failing(db_exc.DBConnectionError(), times=10)
    with pytest.raises(db_exc.DBConnectionError):
        transaction()
    assert len(calls) == 4


def test_configure_sets_the_conflict_budget(conflict_retries):
    conf = mock.Mock()
    conf.database.items.return_value = [('connection', 'sqlite://')]
    conf.volume_pool.database_timeout = 30
    conf.volume_pool.database_conflict_retries = 7
    with mock.patch.object(db_api.context_manager, 'configure'):
        db_api.configure(conf)
    assert db_api._on_conflict.max_retries == 7


def _finish_of(row, claim_id):
    return db_claims.Finish(row_id=row.id, claim_id=claim_id,
                            state=models.R_USED,
                            result={'volume_id': row.volume_id})


def _takes_always_lose():
    """Every take of a batch fails at commit as Galera's lost race does."""
    real = db_claims._take

    def take(connection, *args):
        real(connection, *args)
        raise db_exc.DBDeadlock()
    return mock.patch.object(db_claims, '_take', side_effect=take)


def test_a_takes_lost_race_leaves_the_finishes_committed(
        any_database, no_waits, conflict_retries):
    conflict_retries(1)
    _add()
    _add()
    held_by, row = _take()
    waiting = db_claims.Take(claim_id='c-late', hold=60.0)
    with _takes_always_lose():
        with pytest.raises(db_claims.TakesLost) as raised:
            db_claims.commit_steps('debian', None, 'snap-1', INCARNATION,
                                   [waiting], [_finish_of(row,
                                                          held_by.claim_id)])
    assert raised.value.finished[0]['volume_id'] == row.volume_id
    rows = db_api.get_rows(None, pool='debian')
    # The finished row is gone; the other one is still ready, untaken.
    assert [(r.status, r.claim_id) for r in rows] == [
        (models.AVAILABLE, None)]


def test_a_lost_take_fails_its_own_claim_only(any_database, no_waits,
                                              conflict_retries):
    """Through the claim's group commit: the finish's caller gets its
    answer, the take's caller the error."""
    conflict_retries(1)
    _add()
    _add()
    held_by, row = _take()
    steps = claims._PoolSteps(mock.Mock(name='debian', cluster=None,
                                        snapshot_id='snap-1'),
                              INCARNATION, batch_wait=10)
    steps._pool = 'debian'
    with _takes_always_lose():
        results = steps._run([
            (claims._TAKE, db_claims.Take(claim_id='c-late', hold=60.0)),
            (claims._FINISH, _finish_of(row, held_by.claim_id))])
    assert isinstance(results[0], group_commit.Failed)
    assert isinstance(results[0].error, db_claims.TakesLost)
    assert results[1]['volume_id'] == row.volume_id
