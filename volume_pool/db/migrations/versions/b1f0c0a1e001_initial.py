"""Initial schema: the pool table.

Revision ID: b1f0c0a1e001
Revises:
Create Date: 2026-11-24
"""

from alembic import op
import sqlalchemy as sa

revision = 'b1f0c0a1e001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'pool_volumes',
        sa.Column('created_at', sa.DateTime(), nullable=True),
        sa.Column('updated_at', sa.DateTime(), nullable=True),
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('request_id', sa.String(36), nullable=False),
        sa.Column('volume_id', sa.String(36), nullable=True),
        sa.Column('name', sa.String(255), nullable=False),
        sa.Column('pool', sa.String(64), nullable=False),
        sa.Column('cluster', sa.String(255), nullable=False),
        sa.Column('snapshot_id', sa.String(36), nullable=False),
        sa.Column('size', sa.Integer(), nullable=True),
        sa.Column('status', sa.String(16), nullable=False),
        sa.Column('host', sa.String(255), nullable=False),
        sa.Column('claim_id', sa.String(36), nullable=True),
        sa.Column('claimed_at', sa.DateTime(), nullable=True),
        sa.Column('ready_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('volume_id', name='uniq_pool_volumes0volume_id'),
        sa.UniqueConstraint('request_id',
                            name='uniq_pool_volumes0request_id'),
        mysql_engine='InnoDB',
        mysql_charset='utf8mb4',
    )
    op.create_index('pool_volumes_pool_status_idx', 'pool_volumes',
                    ['cluster', 'pool', 'status', 'created_at'])
