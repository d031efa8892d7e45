"""The pool lock of replenish on SQLite, MariaDB and PostgreSQL: two
managers that count a pool at once never both see its shortfall."""

import threading

from oslo_utils import uuidutils
import pytest

from volume_pool.db import api as db_api
from volume_pool.db import models

# The functional layer runs these again on the real services.
pytestmark = pytest.mark.recollect

TARGET = 3


def _rows_to_target(pool, seen, entered=None, proceed=None):
    """rows_for of reserve_creates: as many rows as the pool lacks."""
    def rows_for(counts, usage_of):
        by_status = counts.get(pool, {}).get('snap-1', {})
        have = sum(by_status.get(s, 0)
                   for s in (models.AVAILABLE, models.CREATING))
        seen.append(have)
        if entered is not None:
            entered.set()
            assert proceed.wait(30)
        return [db_api.new_volume_row(
            request_id=uuidutils.generate_uuid(), pool=pool, cluster=None,
            snapshot_id='snap-1', size=1, name='v', host='h')
            for _ in range(TARGET - have)]
    return rows_for


def test_the_second_count_waits_for_the_first_commit(any_database):
    first_in, let_go = threading.Event(), threading.Event()
    seen_first, seen_second = [], []
    first = threading.Thread(target=db_api.reserve_creates, args=(
        None, 'debian', 'h1',
        _rows_to_target('debian', seen_first, first_in, let_go)))
    first.start()
    assert first_in.wait(30)
    second = threading.Thread(target=db_api.reserve_creates, args=(
        None, 'debian', 'h2', _rows_to_target('debian', seen_second)))
    second.start()
    second.join(1.0)
    # Still waiting on the lock the first holds: it has counted nothing.
    assert second.is_alive() and seen_second == []
    let_go.set()
    first.join(30)
    second.join(30)
    assert seen_first[-1] == 0
    assert seen_second[-1] == TARGET  # saw the first one's rows
    assert len(db_api.get_rows(None, pool='debian')) == TARGET


def test_pools_do_not_wait_on_each_other(any_database):
    """Row locks on MariaDB and PostgreSQL; SQLite locks the whole file,
    so there the second pool waits for the first commit."""
    first_in, let_go = threading.Event(), threading.Event()
    rows = []
    first = threading.Thread(target=db_api.reserve_creates, args=(
        None, 'debian', 'h1', _rows_to_target('debian', [], first_in,
                                              let_go)))
    first.start()
    assert first_in.wait(30)
    second = threading.Thread(target=lambda: rows.extend(
        db_api.reserve_creates(None, 'ubuntu', 'h2',
                               _rows_to_target('ubuntu', []))))
    second.start()
    # Well under SQLite's 5 s lock wait, after which the second would fail.
    second.join(1.0)
    row_locks = (db_api.get_engine().dialect.name in
                 db_api.SKIP_LOCKED_DIALECTS)
    assert second.is_alive() is not row_locks
    let_go.set()
    first.join(30)
    second.join(30)
    assert len(rows) == TARGET


def test_a_failed_reserve_writes_nothing(any_database):
    def failing(counts, usage_of):
        raise RuntimeError('boom')
    try:
        db_api.reserve_creates(None, 'debian', 'h1', failing)
    except RuntimeError:
        pass
    assert db_api.get_rows(None, pool='debian') == []


def _turns(pool):
    with db_api.reader() as session:
        return session.query(models.PoolLock.turns).filter_by(
            pool=pool).scalar()


def test_every_take_changes_the_lock_row(any_database):
    """Two takes by one host in the same second still change the row: on
    Galera an update that changes nothing replicates nothing, and a take
    through another node would not conflict with it."""
    for _ in range(3):
        db_api.reserve_creates(None, 'debian', 'h1', lambda counts, gb: [])
    assert _turns('debian') == 3
