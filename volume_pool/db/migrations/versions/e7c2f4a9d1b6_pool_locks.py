"""Pool locks and each manager's view of its pools.

Revision ID: e7c2f4a9d1b6
Revises: d4e8a1b7c903
Create Date: 2026-11-30
"""

from alembic import op
import sqlalchemy as sa

revision = 'e7c2f4a9d1b6'
down_revision = 'd4e8a1b7c903'
branch_labels = None
depends_on = None


def upgrade():
    # Added columns and tables only: a manager of the previous release
    # keeps working on this schema during a rolling upgrade.
    op.create_table(
        'pool_locks',
        sa.Column('created_at', sa.DateTime(), nullable=True),
        sa.Column('updated_at', sa.DateTime(), nullable=True),
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('cluster', sa.String(255), nullable=False),
        sa.Column('pool', sa.String(64), nullable=False),
        sa.Column('host', sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('cluster', 'pool',
                            name='uniq_pool_locks0cluster0pool'),
        mysql_engine='InnoDB',
        mysql_charset='utf8mb4',
    )
    with op.batch_alter_table('managers') as batch:
        batch.add_column(sa.Column('pools', sa.Text(), nullable=True))
