"""Pool demand: per-manager claim figures (target = auto, idle_ttl).

Revision ID: c2a7d3e4f502
Revises: b1f0c0a1e001
Create Date: 2026-11-25
"""

from alembic import op
import sqlalchemy as sa

revision = 'c2a7d3e4f502'
down_revision = 'b1f0c0a1e001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'pool_demand',
        sa.Column('created_at', sa.DateTime(), nullable=True),
        sa.Column('updated_at', sa.DateTime(), nullable=True),
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('cluster', sa.String(255), nullable=False),
        sa.Column('pool', sa.String(64), nullable=False),
        sa.Column('host', sa.String(255), nullable=False),
        sa.Column('score', sa.Float(), nullable=False),
        sa.Column('score_at', sa.DateTime(), nullable=False),
        sa.Column('last_claim_at', sa.DateTime(), nullable=True),
        sa.Column('refill_time', sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('cluster', 'pool', 'host',
                            name='uniq_pool_demand0cluster0pool0host'),
        mysql_engine='InnoDB',
        mysql_charset='utf8mb4',
    )
