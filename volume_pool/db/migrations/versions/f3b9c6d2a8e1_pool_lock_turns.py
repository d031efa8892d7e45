"""pool_locks.turns: every take of a pool lock changes its row.

Replenish takes a pool's lock by updating its row.  On one database node
the update waits for the holder's commit; on a Galera cluster each node
locks only its own copy, and two managers writing through two nodes see
each other only when certification finds their write sets overlap.  An
update that sets the same host in the same second changes nothing, so
nothing is replicated and both managers count the pool at once.  Adding
one to ``turns`` changes the row every time: the second commit fails
certification (a deadlock to the client) and is retried, and then counts
the first one's rows.

Revision ID: f3b9c6d2a8e1
Revises: a9d3f1c8e2b7
Create Date: 2026-12-07
"""

from alembic import op
import sqlalchemy as sa

revision = 'f3b9c6d2a8e1'
down_revision = 'a9d3f1c8e2b7'
branch_labels = None
depends_on = None


def upgrade():
    # An added column with a default: a manager of the previous release
    # keeps working on this schema during a rolling upgrade.
    with op.batch_alter_table('pool_locks') as batch:
        batch.add_column(sa.Column('turns', sa.BigInteger(), nullable=False,
                                   server_default='0'))
