"""SQLAlchemy models of the pool table.

One row per volume the pool owns, from the moment a create is decided (the
row is written before Cinder is asked, so a crash leaves a row or a tagged
volume, never neither) until the volume is claimed or deleted.
"""

from oslo_db.sqlalchemy import models
import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.dialects import mysql

# Row states.  Cinder's own status is only mirrored for "creating" and
# "available"; the others are the pool's bookkeeping.
CREATING = 'creating'      # row written; Cinder create asked or about to be
AVAILABLE = 'available'    # ready to be claimed
CLAIMING = 'claiming'      # held by a claim, a release or sync, fenced
UNCERTAIN = 'uncertain'    # a failed claim whose undo failed: sync decides
DELETING = 'deleting'      # the pool is deleting it in Cinder (retried)
STATUSES = (CREATING, AVAILABLE, CLAIMING, UNCERTAIN, DELETING)

# Receipt states (ClaimReceipt.state).
R_CLAIMING = 'claiming'    # the claim runs; its row is ``claiming``
R_LEASED = 'leased'        # handed out; back to the pool when the lease ends
R_USED = 'used'            # the caller's for good
R_RELEASING = 'releasing'  # the caller's release runs; a row holds the volume
R_RELEASED = 'released'    # back in the pool by the caller's release
R_RETURNING = 'returning'  # its lease ran out; sync is returning it
R_RETURNED = 'returned'    # back in the pool because the lease ran out
RECEIPT_STATES = (R_CLAIMING, R_LEASED, R_USED, R_RELEASING, R_RELEASED,
                  R_RETURNING, R_RETURNED)
# A volume whose receipt is in one of these belongs to a caller.
HELD = (R_LEASED, R_USED)
# Their volume is back in the pool: the receipt holds nothing.
GIVEN_BACK = (R_RELEASED, R_RETURNED)
# Receipts in these states are kept claim_receipt_ttl, then purged.
SETTLED = (R_USED, R_RELEASED, R_RETURNED)

# Microseconds on MariaDB too: deadlines and heartbeats are compared.
PreciseDateTime = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql')


Base = orm.declarative_base(cls=models.ModelBase)


class PoolVolume(Base, models.TimestampMixin):
    """A volume the pool owns; removed from the table when claimed."""

    __tablename__ = 'pool_volumes'
    __table_args__ = (
        # The claim's pick: the oldest ready rows of a pool's snapshot,
        # in the index's order (id last: ORDER BY created_at, id needs no
        # sort); and replenish's count of a cluster's rows per pool,
        # snapshot and status, from the index alone.
        sa.Index('pool_volumes_pool_status_idx',
                 'cluster', 'pool', 'snapshot_id', 'status', 'created_at',
                 'id'),
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
    # Claim bookkeeping: which claim holds the row and since when; the
    # manager process (incarnation) that runs it and the database time
    # after which it may no longer finish.  Sync settles the row only once
    # that incarnation is gone or the deadline has passed.
    claim_id = sa.Column(sa.String(36), nullable=True)
    claimed_at = sa.Column(sa.DateTime, nullable=True)
    incarnation = sa.Column(sa.String(36), nullable=True)
    claim_deadline = sa.Column(PreciseDateTime, nullable=True)
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


class Manager(Base, models.TimestampMixin):
    """One manager process: its incarnation and heartbeat.

    A restart under the same host name is a new incarnation, so the claims
    the old process left behind are known to be abandoned at once.  Times
    are the database server's, never a manager's.
    """

    __tablename__ = 'managers'
    __table_args__ = (
        sa.UniqueConstraint('incarnation',
                            name='uniq_managers0incarnation'),
        sa.Index('managers_cluster_idx', 'cluster', 'heartbeat_at'),
        {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4'},
    )

    id = sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    host = sa.Column(sa.String(255), nullable=False)
    cluster = sa.Column(sa.String(255), nullable=False, default='')
    incarnation = sa.Column(sa.String(36), nullable=False)
    heartbeat_at = sa.Column(PreciseDateTime, nullable=False)
    stopped_at = sa.Column(PreciseDateTime, nullable=True)
    # JSON {pool: snapshot_id} of the process's configuration: a snapshot
    # rotation deletes old volumes only once every live manager has the
    # new snapshot.  NULL for a manager that does not say (older code).
    # MEDIUMTEXT on MariaDB: a thousand pools overflow TEXT's 64 KiB.
    pools = sa.Column(sa.Text().with_variant(mysql.MEDIUMTEXT(), 'mysql',
                                             'mariadb'),
                      nullable=True)


class Deployment(Base, models.TimestampMixin):
    """This deployment's identity: one row, written by ``db sync``.

    Every pool volume carries it in Cinder; a sync adopts, trims and
    deletes only volumes that carry it, so two deployments sharing a
    Cinder project never touch each other's volumes.
    """

    __tablename__ = 'deployment'
    __table_args__ = ({'mysql_engine': 'InnoDB',
                       'mysql_charset': 'utf8mb4'},)

    # Always 1: a deployment has one identity.
    id = sa.Column(sa.Integer, primary_key=True, autoincrement=False)
    identity = sa.Column(sa.String(36), nullable=False)


class PoolLock(Base, models.TimestampMixin):
    """One row per pool whose update is the database's lock on the pool.

    Replenish takes it in the transaction that counts the pool and writes
    the rows of its creates, so managers sharing a database never
    overfill a pool, with or without a coordination backend.
    """

    __tablename__ = 'pool_locks'
    __table_args__ = (
        sa.UniqueConstraint('cluster', 'pool',
                            name='uniq_pool_locks0cluster0pool'),
        {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4'},
    )

    id = sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    cluster = sa.Column(sa.String(255), nullable=False, default='')
    pool = sa.Column(sa.String(64), nullable=False)
    # The manager that last held it (for an operator who wonders).
    host = sa.Column(sa.String(255), nullable=True)
    # How many times it was taken: each take changes the row, which a
    # Galera cluster needs to see two nodes' takes conflict.
    turns = sa.Column(sa.BigInteger, nullable=False, default=0,
                      server_default='0')


class ClaimReceipt(Base, models.TimestampMixin):
    """What one claim did, written with the take of its row.

    A keyed claim's retry finds it here, on any manager, and gets the same
    answer; the lease, confirm and release of a claim act on it.  A claim
    that fails leaves no receipt, so its key may be used again.
    """

    __tablename__ = 'claim_receipts'
    __table_args__ = (
        sa.UniqueConstraint('cluster', 'project_id', 'claim_key',
                            name='uniq_claim_receipts0cluster0project0key'),
        sa.UniqueConstraint('claim_id', name='uniq_claim_receipts0claim_id'),
        sa.Index('claim_receipts_state_idx', 'cluster', 'state',
                 'lease_expires_at'),
        sa.Index('claim_receipts_volume_idx', 'volume_id'),
        {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4'},
    )

    id = sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    claim_id = sa.Column(sa.String(36), nullable=False)
    cluster = sa.Column(sa.String(255), nullable=False, default='')
    # The caller's project: keys are unique per cluster and project.
    project_id = sa.Column(sa.String(64), nullable=False, default='')
    claim_key = sa.Column(sa.String(255), nullable=True)
    # A hash of the claim's arguments: the same key with others conflicts.
    fingerprint = sa.Column(sa.String(64), nullable=False)
    state = sa.Column(sa.String(16), nullable=False)
    pool = sa.Column(sa.String(64), nullable=False)
    snapshot_id = sa.Column(sa.String(36), nullable=False)
    volume_id = sa.Column(sa.String(36), nullable=True)
    # How the volume looked in the pool, to put it back as it was.
    volume_name = sa.Column(sa.String(255), nullable=True)
    request_id = sa.Column(sa.String(36), nullable=True)
    size = sa.Column(sa.Integer, nullable=True)
    source = sa.Column(sa.String(16), nullable=False)
    target_project = sa.Column(sa.String(64), nullable=True)
    # The answer as sent, so a retry gets the same one.
    result = sa.Column(sa.Text, nullable=True)
    lease_expires_at = sa.Column(PreciseDateTime, nullable=True)
    # While ``claiming``: after this the claim can no longer finish, and a
    # receipt left without a row (its manager died) is dropped by sync.
    deadline = sa.Column(PreciseDateTime, nullable=True)
