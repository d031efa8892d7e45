"""managers.pools holds a thousand pools on MariaDB.

The column is the JSON {pool: snapshot_id} of a manager's configuration.
TEXT stops at 64 KiB on MariaDB, about 600 pools with long names; it
becomes MEDIUMTEXT there (16 MiB).  PostgreSQL's and SQLite's TEXT have
no such limit: nothing changes on them.

Revision ID: 8c41d2e6f7a3
Revises: 7ae0abb14e04
Create Date: 2026-12-01
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '8c41d2e6f7a3'
down_revision = '7ae0abb14e04'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_context().dialect.name not in ('mysql', 'mariadb'):
        return
    op.alter_column('managers', 'pools', existing_type=sa.Text(),
                    type_=mysql.MEDIUMTEXT(), existing_nullable=True)
