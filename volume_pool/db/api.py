"""Database API of the pool table (oslo.db enginefacade).

The writes of the replenish path and the reads every task shares.  The
claim's transactions are in :mod:`volume_pool.db.claims`, the receipts'
in :mod:`volume_pool.db.receipts`, the managers' incarnations in
:mod:`volume_pool.db.managers`.
"""

import types
import urllib.parse

from oslo_db import api as oslo_db_api
from oslo_db import exception as db_exc
from oslo_db.sqlalchemy import enginefacade
from oslo_utils import timeutils
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import url as sa_url

from volume_pool.db import models

context_manager = enginefacade.transaction_context()

# What a query raises when the database is away, refuses or lacks a
# table: oslo.db wraps most errors, SQLAlchemy raises the others.
DATABASE_ERRORS = (db_exc.DBError, sa_exc.SQLAlchemyError)

# Backends with row locks that skip rows other transactions hold.
SKIP_LOCKED_DIALECTS = ('mysql', 'postgresql')

# A dropped connection is retried a few times, then raised: a claim must
# fail fast while the database is away, not hang.
_on_disconnect = oslo_db_api.wrap_db_retry(
    max_retries=3, retry_interval=0.2, max_retry_interval=1,
    retry_on_disconnect=True)
# A deadlock is a race lost, not an outage: on a Galera cluster every
# conflict between two nodes' writes surfaces so, at commit.  Retried
# sooner and more often (oslo.db draws each wait at random below the
# doubling interval); ``[volume_pool] database_conflict_retries`` sets
# how often.
_on_conflict = oslo_db_api.wrap_db_retry(
    max_retries=20, retry_interval=0.02, max_retry_interval=0.5,
    retry_on_deadlock=True)


def retry(function):
    """Run ``function`` (one whole transaction) again on a deadlock or a
    dropped connection, each with its own budget."""
    return _on_disconnect(_on_conflict(function))


def configure(conf):
    """Point the engine at ``[database]`` (call once, before any query)."""
    options = dict(conf.database.items())
    options['connection_parameters'] = with_timeouts(
        options.get('connection'), options.get('connection_parameters'),
        conf.volume_pool.database_timeout)
    # oslo.db yields with sleep(0) each time a connection goes back to the
    # pool, so that eventlet's green threads get a turn; under native
    # threads it only hands the GIL away twice per claim.
    options['thread_checkin'] = False
    context_manager.configure(**options)
    _on_conflict.max_retries = conf.volume_pool.database_conflict_retries


def with_timeouts(url, parameters, seconds):
    """``[database] connection_parameters`` plus read and statement
    timeouts of ``seconds`` for the URL's driver, unless already set.

    Every wait has a bound: a stalled database fails the claim that waits
    on it instead of holding its thread for ever.
    """
    if not url:
        return parameters
    query = urllib.parse.parse_qs(parameters or '')
    driver = sa_url.make_url(url).get_backend_name()
    if driver == 'mysql':
        for name in ('read_timeout', 'write_timeout', 'connect_timeout'):
            query.setdefault(name, [str(seconds)])
    elif driver == 'postgresql':
        query.setdefault('connect_timeout', [str(seconds)])
        query.setdefault('options', ['-c statement_timeout=%d' %
                                     (seconds * 1000)])
    return urllib.parse.urlencode(query, doseq=True) or None


def ping():
    """One round trip to the database (health checks)."""
    with reader() as session:
        session.execute(sa.text('SELECT 1'))


def get_engine():
    return context_manager.writer.get_engine()


def _ctx():
    # enginefacade wants an object to hang its transaction state on.
    return types.SimpleNamespace()


def writer():
    """A write transaction (a context manager yielding the session)."""
    return context_manager.writer.using(_ctx())


def write_connection():
    """A write transaction on a bare connection (a context manager
    yielding it): no ORM session, for Core statements on a hot path."""
    return context_manager.writer.connection.using(_ctx())


def reader():
    """A read transaction (a context manager yielding the session)."""
    return context_manager.reader.using(_ctx())


def cluster_key(cluster):
    """'' in single-cluster mode (NULL never equals NULL in an index)."""
    return cluster or ''


# ---------------------------------------------------------------------------
# Writes of the replenish path


def new_volume_row(*, request_id, pool, cluster, snapshot_id, size, name,
                   host, status=models.CREATING, volume_id=None,
                   incarnation=None):
    """A row for a volume the pool is about to create (or adopts).

    ``incarnation``: the manager process that creates it; once that
    process is gone, a row its create never bound is settled at once.
    """
    row = models.PoolVolume(
        request_id=request_id, volume_id=volume_id, pool=pool,
        cluster=cluster_key(cluster), snapshot_id=snapshot_id, size=size,
        name=name, host=host, status=status, incarnation=incarnation)
    if status == models.AVAILABLE:
        row.ready_at = timeutils.utcnow()
    return row


@retry
def create_volume_row(**fields):
    """Record one volume (see :func:`new_volume_row` for the fields)."""
    row = new_volume_row(**fields)
    with writer() as session:
        session.add(row)
    return row


def reserve_creates(cluster, pool, host, rows_for):
    """Count a pool and write the rows of its creates in one transaction,
    under the pool's lock row.

    Managers sharing the database then never both see the same shortfall,
    with or without a coordination backend.  ``rows_for(counts, usage)``
    returns the new rows from the counts (as :func:`count_by_pool`) and a
    callable giving :func:`gb_by_pool`; it is called again on a retry.
    """
    try:
        return _reserve_creates(cluster, pool, host, rows_for)
    except _NoPoolLock:
        _add_pool_lock(cluster, pool)
        return _reserve_creates(cluster, pool, host, rows_for)


class _NoPoolLock(Exception):
    """The pool has no lock row yet (its first replenish)."""


@retry
def _reserve_creates(cluster, pool, host, rows_for):
    lock = models.PoolLock
    with writer() as session:
        # The update waits for the lock's holder to commit; only then are
        # the counts read, so they include its rows.  It must stay the
        # first statement: MariaDB's REPEATABLE READ takes its snapshot at
        # the first read, which would otherwise predate that commit.  It
        # always changes the row (``turns``): on Galera, where each node
        # locks only its own copy, two takes through two nodes then
        # conflict at commit, and the loser is retried.
        locked = session.execute(
            sa.update(lock).where(lock.cluster == cluster_key(cluster),
                                  lock.pool == pool)
            .values(host=host, turns=lock.turns + 1)).rowcount
        if not locked:
            raise _NoPoolLock()
        rows = rows_for(_count_by_pool(session, cluster),
                        lambda: _gb_by_pool(session, cluster))
        session.add_all(rows)
    return rows


@retry
def _add_pool_lock(cluster, pool):
    try:
        with writer() as session:
            session.add(models.PoolLock(cluster=cluster_key(cluster),
                                        pool=pool))
    except db_exc.DBDuplicateEntry:
        pass  # another manager added it first


@retry
def set_volume_id(row_id, volume_id):
    """Bind a row to the Cinder volume its create produced."""
    with writer() as session:
        return session.execute(
            sa.update(models.PoolVolume)
            .where(models.PoolVolume.id == row_id)
            .values(volume_id=volume_id,
                    updated_at=timeutils.utcnow())).rowcount == 1


@retry
def mark_available(row_id, size=None):
    """creating -> available; False if the row moved on meanwhile."""
    values = {'status': models.AVAILABLE, 'ready_at': timeutils.utcnow(),
              'updated_at': timeutils.utcnow()}
    if size is not None:
        values['size'] = size
    with writer() as session:
        return session.execute(
            sa.update(models.PoolVolume)
            .where(models.PoolVolume.id == row_id,
                   models.PoolVolume.status == models.CREATING)
            .values(**values)).rowcount == 1


@retry
def mark_deleting(row_id, from_statuses=None):
    """Flag a row whose volume the pool is deleting; the delete is retried
    by sync until Cinder no longer has the volume."""
    query = (sa.update(models.PoolVolume)
             .where(models.PoolVolume.id == row_id))
    if from_statuses:
        query = query.where(models.PoolVolume.status.in_(from_statuses))
    with writer() as session:
        return session.execute(
            query.values(status=models.DELETING,
                         updated_at=timeutils.utcnow())).rowcount == 1


@retry
def delete_row(row_id, status=None):
    """Forget a row; with ``status``, only if it still has that status."""
    query = sa.delete(models.PoolVolume).where(models.PoolVolume.id == row_id)
    if status is not None:
        query = query.where(models.PoolVolume.status == status)
    with writer() as session:
        return session.execute(query).rowcount == 1


# ---------------------------------------------------------------------------
# Reads


class RowRecord(types.SimpleNamespace):
    """A pool_volumes row as read: its columns as plain attributes.

    Not an ORM object: a sync reads every row of a cluster, tens of
    thousands, and the ORM's identity map and instance state cost more
    than the database did.  Writes go through this module by id.
    """


_ROWS_TABLE = models.PoolVolume.__table__


@retry
def get_rows(cluster, pool=None, status=None, pools=None):
    """Rows of a cluster, optionally of one pool, a set of pools, a status
    (:class:`RowRecord` each, oldest first per pool)."""
    row = _ROWS_TABLE.c
    query = sa.select(_ROWS_TABLE).where(row.cluster == cluster_key(cluster))
    if pool is not None:
        query = query.where(row.pool == pool)
    if pools is not None:
        query = query.where(row.pool.in_(list(pools)))
    if status is not None:
        query = query.where(row.status == status)
    query = query.order_by(row.pool, row.created_at, row.id)
    with reader() as session:
        result = session.execute(query)
        columns = list(result.keys())
        return [RowRecord(**dict(zip(columns, found, strict=True)))
                for found in result]


@retry
def count_by_pool(cluster):
    """``{pool: {snapshot_id: {status: count}}}`` in one GROUP BY query."""
    with reader() as session:
        return _count_by_pool(session, cluster)


def _count_by_pool(session, cluster):
    row = models.PoolVolume
    query = (sa.select(row.pool, row.snapshot_id, row.status,
                       sa.func.count())
             .where(row.cluster == cluster_key(cluster))
             .group_by(row.pool, row.snapshot_id, row.status))
    counts = {}
    for pool, snapshot_id, status, count in session.execute(query):
        by_snapshot = counts.setdefault(pool, {})
        by_snapshot.setdefault(snapshot_id, {})[status] = count
    return counts


@retry
def pool_names(cluster):
    """Pools that have rows, configured or not (a removed pool keeps its
    volumes until an operator drains it)."""
    query = (sa.select(models.PoolVolume.pool).distinct()
             .where(models.PoolVolume.cluster == cluster_key(cluster)))
    with reader() as session:
        return set(session.execute(query).scalars())


@retry
def gb_by_pool(cluster):
    """GiB held by each pool's ready and creating rows, in one query.

    ``{pool: (known_gb, rows_without_size, largest_size)}``: a row's size
    is unknown until Cinder reports it, so callers estimate those.
    """
    with reader() as session:
        return _gb_by_pool(session, cluster)


def _gb_by_pool(session, cluster):
    row = models.PoolVolume
    query = (sa.select(row.pool, sa.func.sum(row.size),
                       sa.func.count() - sa.func.count(row.size),
                       sa.func.max(row.size))
             .where(row.cluster == cluster_key(cluster),
                    row.status.in_((models.AVAILABLE, models.CREATING)))
             .group_by(row.pool))
    return {pool: (int(known or 0), int(unknown), largest)
            for pool, known, unknown, largest in session.execute(query)}


# ---------------------------------------------------------------------------
# Demand figures (target = auto, idle_ttl)


@retry
def publish_demand(cluster, pool, host, *, score, score_at,
                   last_claim_at=None, refill_time=None):
    """Write this host's demand row of a pool (update, else insert).

    Only ``host`` writes its rows, so the insert races with nobody.
    """
    table = models.PoolDemand
    values = dict(score=score, score_at=score_at,
                  last_claim_at=last_claim_at, refill_time=refill_time,
                  updated_at=timeutils.utcnow())
    with writer() as session:
        updated = session.execute(
            sa.update(table)
            .where(table.cluster == cluster_key(cluster),
                   table.pool == pool, table.host == host)
            .values(**values)).rowcount
        if not updated:
            del values['updated_at']
            session.add(table(cluster=cluster_key(cluster), pool=pool,
                              host=host, **values))


@retry
def get_demand(cluster):
    """``{pool: [PoolDemand rows of every host]}`` of a cluster."""
    query = (sa.select(models.PoolDemand)
             .where(models.PoolDemand.cluster == cluster_key(cluster))
             .order_by(models.PoolDemand.pool, models.PoolDemand.host))
    demand = {}
    with reader() as session:
        for row in session.execute(query).scalars():
            demand.setdefault(row.pool, []).append(row)
    return demand
