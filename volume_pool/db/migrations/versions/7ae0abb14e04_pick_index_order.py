"""The pick's index in the claim's order, covering the pool counts.

pool_volumes_pool_status_idx becomes (cluster, pool, snapshot_id, status,
created_at, id): the claim's pick (one snapshot's ready rows, oldest
first, ORDER BY created_at, id) reads them in the index's order with no
sort, and count_by_pool (GROUP BY pool, snapshot_id, status of a
cluster) reads the index alone, not the whole table.

Revision ID: 7ae0abb14e04
Revises: e7c2f4a9d1b6
Create Date: 2026-12-01
"""

from alembic import op

revision = '7ae0abb14e04'
down_revision = 'e7c2f4a9d1b6'
branch_labels = None
depends_on = None

_NAME = 'pool_volumes_pool_status_idx'
_COLUMNS = ('cluster', 'pool', 'snapshot_id', 'status', 'created_at', 'id')


def upgrade():
    # The same name, other columns: a manager of the previous release
    # runs the same statements on it during a rolling upgrade.
    if op.get_context().dialect.name in ('mysql', 'mariadb'):
        # One ALTER, so the table is never without the index (MariaDB
        # commits each DDL statement on its own).
        op.execute('ALTER TABLE pool_volumes DROP INDEX %s, ADD INDEX %s '
                   '(%s)' % (_NAME, _NAME, ', '.join(_COLUMNS)))
        return
    # PostgreSQL and SQLite: both in the migration's transaction.
    op.drop_index(_NAME, table_name='pool_volumes')
    op.create_index(_NAME, 'pool_volumes', list(_COLUMNS))
