"""A manager started on a table that lacks the rows of volumes Cinder
holds (a database restored from an older backup), against the real
Cinder: it reconciles the pools with Cinder before it refills any, so it
creates and deletes nothing."""

import sqlalchemy as sa

from volume_pool.fixtures import waiting
from volume_pool.tests.functional import engines
from volume_pool.tests.functional.test_real_peers import table
from volume_pool.tests.functional.test_real_peers import tagged

SYNC_LINE = 'Sync: '


def _forget_rows(db_url, pool):
    """The table as an older backup has it: none of the pool's rows."""
    engine = sa.create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text('DELETE FROM pool_volumes '
                                 'WHERE pool = :pool'), {'pool': pool})
    finally:
        engine.dispose()


def _syncs(process):
    return process.log().count(SYNC_LINE)


@engines.ON_MARIADB
def test_a_start_on_a_table_missing_rows_keeps_the_same_volumes(
        managers, api, cinder, snapshot, pool_name):
    first = managers([(pool_name, snapshot, 4)], host='mgr-1')
    waiting.pool_ready(api, pool_name, 4)
    volumes = {v.id for v in tagged(cinder, pool_name)}
    assert len(volumes) == 4
    assert set(table(managers.db_url, pool_name)) == volumes
    first.kill()
    _forget_rows(managers.db_url, pool_name)
    assert table(managers.db_url, pool_name) == {}

    second = managers([(pool_name, snapshot, 4)], host='mgr-2')
    waiting.pool_ready(api, pool_name, 4)
    # Settled: a few more syncs (every 3 s) and replenish runs (every 1 s),
    # any of which would create, trim or delete.
    waiting.wait_for(lambda: _syncs(second) >= 3, timeout=60,
                     what='three syncs of the new manager')
    assert {v.id for v in tagged(cinder, pool_name)} == volumes
    assert table(managers.db_url, pool_name) == dict.fromkeys(
        volumes, 'available')
    log = second.log()
    assert 'Replenish queued' not in log
    assert 'Traceback' not in log
