"""The deployment's identity, made once here and kept.

Every pool volume carries it in Cinder, so two deployments that share a
Cinder project never adopt, trim or delete each other's volumes.  The
identity is written by the migration itself: ``volume-pool-manage db
sync`` makes it once, and every later sync keeps it.

Revision ID: a9d3f1c8e2b7
Revises: 8c41d2e6f7a3
Create Date: 2026-12-07
"""

from alembic import op
from oslo_utils import uuidutils
import sqlalchemy as sa

revision = 'a9d3f1c8e2b7'
down_revision = '8c41d2e6f7a3'
branch_labels = None
depends_on = None


def upgrade():
    # A new table only: the previous release's managers keep working on
    # this schema during a rolling upgrade (and tag no identity).
    table = op.create_table(
        'deployment',
        sa.Column('created_at', sa.DateTime(), nullable=True),
        sa.Column('updated_at', sa.DateTime(), nullable=True),
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('identity', sa.String(36), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        mysql_engine='InnoDB',
        mysql_charset='utf8mb4',
    )
    op.bulk_insert(table, [{'id': 1,
                            'identity': uuidutils.generate_uuid()}])
