"""What a periodic run costs, counted rather than timed: a replenish run
that finds every pool full reads the pool table once and asks Cinder
nothing, whatever the number of pools."""

import contextlib

import pytest
import sqlalchemy as sa

from volume_pool import context as vp_context
from volume_pool.db import api as db_api
from volume_pool.tests.unit.manager_steps import fill

# At most this many statements, whatever the pool count.
REPLENISH_MAX_QUERIES = 3


@contextlib.contextmanager
def counted_statements():
    """The SQL statements run meanwhile (transaction control aside)."""
    seen = []

    def record(conn, cursor, statement, *args):
        if statement.split(None, 1)[0].upper() not in ('BEGIN', 'COMMIT',
                                                       'ROLLBACK'):
            seen.append(statement)
    engine = db_api.get_engine()
    sa.event.listen(engine, 'before_cursor_execute', record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, 'before_cursor_execute', record)


@pytest.mark.parametrize('pools', [1, 40])
def test_a_replenish_run_with_nothing_short_reads_once(make_manager,
                                                       simulator, pools):
    mgr = make_manager({'p%d' % i: 1 for i in range(pools)})
    for i in range(pools):
        fill(mgr, 'p%d' % i)
    simulator.reset_counts()
    with counted_statements() as statements:
        mgr.replenish(vp_context.get_admin_context())
    assert len(statements) <= REPLENISH_MAX_QUERIES, statements
    assert sum(simulator.request_counts.values()) == 0
