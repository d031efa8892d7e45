"""Claim receipts, manager incarnations and fenced claims.

Revision ID: d4e8a1b7c903
Revises: c2a7d3e4f502
Create Date: 2026-11-30
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = 'd4e8a1b7c903'
down_revision = 'c2a7d3e4f502'
branch_labels = None
depends_on = None


def _precise():
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql')


def upgrade():
    # Added columns and tables only: a manager of the previous release
    # keeps working on this schema during a rolling upgrade.
    with op.batch_alter_table('pool_volumes') as batch:
        batch.add_column(sa.Column('incarnation', sa.String(36),
                                   nullable=True))
        batch.add_column(sa.Column('claim_deadline', _precise(),
                                   nullable=True))
    op.create_table(
        'managers',
        sa.Column('created_at', sa.DateTime(), nullable=True),
        sa.Column('updated_at', sa.DateTime(), nullable=True),
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('host', sa.String(255), nullable=False),
        sa.Column('cluster', sa.String(255), nullable=False),
        sa.Column('incarnation', sa.String(36), nullable=False),
        sa.Column('heartbeat_at', _precise(), nullable=False),
        sa.Column('stopped_at', _precise(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('incarnation', name='uniq_managers0incarnation'),
        mysql_engine='InnoDB',
        mysql_charset='utf8mb4',
    )
    op.create_index('managers_cluster_idx', 'managers',
                    ['cluster', 'heartbeat_at'])
    op.create_table(
        'claim_receipts',
        sa.Column('created_at', sa.DateTime(), nullable=True),
        sa.Column('updated_at', sa.DateTime(), nullable=True),
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('claim_id', sa.String(36), nullable=False),
        sa.Column('cluster', sa.String(255), nullable=False),
        sa.Column('project_id', sa.String(64), nullable=False),
        sa.Column('claim_key', sa.String(255), nullable=True),
        sa.Column('fingerprint', sa.String(64), nullable=False),
        sa.Column('state', sa.String(16), nullable=False),
        sa.Column('pool', sa.String(64), nullable=False),
        sa.Column('snapshot_id', sa.String(36), nullable=False),
        sa.Column('volume_id', sa.String(36), nullable=True),
        sa.Column('volume_name', sa.String(255), nullable=True),
        sa.Column('request_id', sa.String(36), nullable=True),
        sa.Column('size', sa.Integer(), nullable=True),
        sa.Column('source', sa.String(16), nullable=False),
        sa.Column('target_project', sa.String(64), nullable=True),
        sa.Column('result', sa.Text(), nullable=True),
        sa.Column('lease_expires_at', _precise(), nullable=True),
        sa.Column('deadline', _precise(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('cluster', 'project_id', 'claim_key',
                            name='uniq_claim_receipts0cluster0project0key'),
        sa.UniqueConstraint('claim_id', name='uniq_claim_receipts0claim_id'),
        mysql_engine='InnoDB',
        mysql_charset='utf8mb4',
    )
    op.create_index('claim_receipts_state_idx', 'claim_receipts',
                    ['cluster', 'state', 'lease_expires_at'])
    op.create_index('claim_receipts_volume_idx', 'claim_receipts',
                    ['volume_id'])
