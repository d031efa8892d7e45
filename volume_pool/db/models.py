"""SQLAlchemy models of the pool table.

One row per volume the pool owns, from the moment a create is decided (the
row is written before Cinder is asked, so a crash leaves a row or a tagged
volume, never neither) until the volume is claimed or deleted.
"""

from oslo_db.sqlalchemy import models
import sqlalchemy as sa
from sqlalchemy import orm

# Row states.  Cinder's own status is only mirrored for "creating" and
# "available"; the others are the pool's bookkeeping.
CREATING = 'creating'      # row written; Cinder create asked or about to be
AVAILABLE = 'available'    # ready to be claimed
CLAIMING = 'claiming'      # taken by a claim that has not finished yet
DELETING = 'deleting'      # the pool is deleting it in Cinder (retried)
STATUSES = (CREATING, AVAILABLE, CLAIMING, DELETING)


Base = orm.declarative_base(cls=models.ModelBase)


class PoolVolume(Base, models.TimestampMixin):
    """A volume the pool owns; removed from the table when claimed."""

    __tablename__ = 'pool_volumes'
    __table_args__ = (
        sa.Index('pool_volumes_pool_status_idx',
                 'cluster', 'pool', 'status', 'created_at'),
        sa.UniqueConstraint('volume_id', name='uniq_pool_volumes0volume_id'),
        sa.UniqueConstraint('request_id',
                            name='uniq_pool_volumes0request_id'),
        {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4'},
    )

    id = sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    # Also stored in Cinder metadata, so a volume created just before a
    # crash can be matched to its row even though volume_id was not saved.
    request_id = sa.Column(sa.String(36), nullable=False)
    volume_id = sa.Column(sa.String(36), nullable=True)
    name = sa.Column(sa.String(255), nullable=False)
    pool = sa.Column(sa.String(64), nullable=False)
    # '' in single-cluster mode, so that indexes and equality work alike on
    # every backend (NULL never equals NULL).
    cluster = sa.Column(sa.String(255), nullable=False, default='')
    snapshot_id = sa.Column(sa.String(36), nullable=False)
    size = sa.Column(sa.Integer, nullable=True)
    status = sa.Column(sa.String(16), nullable=False)
    # The manager that created the row; lets sync tell its own unfinished
    # creates from other managers'.
    host = sa.Column(sa.String(255), nullable=False)
    # Claim bookkeeping: which claim holds the row and since when.
    claim_id = sa.Column(sa.String(36), nullable=True)
    claimed_at = sa.Column(sa.DateTime, nullable=True)
    # When Cinder reported the volume available (for refill timing).
    ready_at = sa.Column(sa.DateTime, nullable=True)


class PoolDemand(Base, models.TimestampMixin):
    """One manager's claim figures of one pool (target = auto, idle_ttl).

    Each manager writes only its own rows, from its periodic tasks, so the
    claim path never waits on this table; readers sum the rows of a pool.
    ``created_at`` of a pool's first row is when a manager first served the
    pool: the start of the idle clock of a pool never claimed.
    """

    __tablename__ = 'pool_demand'
    __table_args__ = (
        sa.UniqueConstraint('cluster', 'pool', 'host',
                            name='uniq_pool_demand0cluster0pool0host'),
        {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4'},
    )

    id = sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    cluster = sa.Column(sa.String(255), nullable=False, default='')
    pool = sa.Column(sa.String(64), nullable=False)
    host = sa.Column(sa.String(255), nullable=False)
    # Exponentially decayed claim count, as it stood at score_at.
    score = sa.Column(sa.Float, nullable=False, default=0.0)
    score_at = sa.Column(sa.DateTime, nullable=False)
    last_claim_at = sa.Column(sa.DateTime, nullable=True)
    # Moving average of create-to-available seconds, once measured.
    refill_time = sa.Column(sa.Float, nullable=True)
