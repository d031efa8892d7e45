"""Database API of the pool table (oslo.db enginefacade).

The claim is the one place where managers race: :func:`claim_available`
takes a ready row in a single transaction with ``SELECT ... FOR UPDATE SKIP
LOCKED`` where the backend has it (MariaDB, PostgreSQL) and a conditional
``UPDATE ... WHERE status = 'available'`` everywhere, so no row is handed
out twice, whatever the number of managers and callers.
"""

import types

from oslo_db import api as oslo_db_api
from oslo_db.sqlalchemy import enginefacade
from oslo_utils import timeutils
import sqlalchemy as sa

from volume_pool.db import models

context_manager = enginefacade.transaction_context()

# Deadlocks and dropped connections are retried a few times, then raised:
# a claim must fail fast while the database is away, not hang.
_retry = oslo_db_api.wrap_db_retry(max_retries=3, retry_interval=0.2,
                                   max_retry_interval=1,
                                   retry_on_deadlock=True,
                                   retry_on_disconnect=True)

_SKIP_LOCKED_DIALECTS = ('mysql', 'postgresql')


def configure(conf):
    """Point the engine at ``[database]`` (call once, before any query)."""
    context_manager.configure(**dict(conf.database.items()))


def get_engine():
    return context_manager.writer.get_engine()


def dispose_engine():
    """Close pooled connections (tests, and after a fork)."""
    context_manager.dispose_pool()


def _ctx():
    # enginefacade wants an object to hang its transaction state on.
    return types.SimpleNamespace()


def _cluster_key(cluster):
    return cluster or ''


# ---------------------------------------------------------------------------
# Writes of the replenish path


@_retry
def create_volume_row(*, request_id, pool, cluster, snapshot_id, size, name,
                      host, status=models.CREATING, volume_id=None):
    """Record a volume the pool is about to create (or adopts)."""
    row = models.PoolVolume(
        request_id=request_id, volume_id=volume_id, pool=pool,
        cluster=_cluster_key(cluster), snapshot_id=snapshot_id, size=size,
        name=name, host=host, status=status)
    if status == models.AVAILABLE:
        row.ready_at = timeutils.utcnow()
    with context_manager.writer.using(_ctx()) as session:
        session.add(row)
    return row


@_retry
def set_volume_id(row_id, volume_id):
    """Bind a row to the Cinder volume its create produced."""
    with context_manager.writer.using(_ctx()) as session:
        return session.execute(
            sa.update(models.PoolVolume)
            .where(models.PoolVolume.id == row_id)
            .values(volume_id=volume_id,
                    updated_at=timeutils.utcnow())).rowcount == 1


@_retry
def mark_available(row_id, size=None):
    """creating -> available; False if the row moved on meanwhile."""
    values = {'status': models.AVAILABLE, 'ready_at': timeutils.utcnow(),
              'updated_at': timeutils.utcnow()}
    if size is not None:
        values['size'] = size
    with context_manager.writer.using(_ctx()) as session:
        return session.execute(
            sa.update(models.PoolVolume)
            .where(models.PoolVolume.id == row_id,
                   models.PoolVolume.status == models.CREATING)
            .values(**values)).rowcount == 1


@_retry
def mark_deleting(row_id, from_statuses=None):
    """Flag a row whose volume the pool is deleting; the delete is retried
    by sync until Cinder no longer has the volume."""
    query = (sa.update(models.PoolVolume)
             .where(models.PoolVolume.id == row_id))
    if from_statuses:
        query = query.where(models.PoolVolume.status.in_(from_statuses))
    with context_manager.writer.using(_ctx()) as session:
        return session.execute(
            query.values(status=models.DELETING,
                         updated_at=timeutils.utcnow())).rowcount == 1


@_retry
def delete_row(row_id, status=None):
    """Forget a row; with ``status``, only if it still has that status."""
    query = sa.delete(models.PoolVolume).where(models.PoolVolume.id == row_id)
    if status is not None:
        query = query.where(models.PoolVolume.status == status)
    with context_manager.writer.using(_ctx()) as session:
        return session.execute(query).rowcount == 1


# ---------------------------------------------------------------------------
# The claim


@_retry
def claim_available(pool, cluster, claim_id, snapshot_id=None):
    """Atomically take the oldest ready volume of a pool, or return None.

    With ``snapshot_id``, only volumes of that snapshot qualify: after a
    rotation, volumes of the old snapshot are drained, never handed out.
    The row moves to ``claiming`` with ``claim_id``; the caller then either
    :func:`finish_claim` (row removed) or :func:`release_claim` (row back to
    ``available``) once Cinder has answered.
    """
    row = models.PoolVolume
    pick = (sa.select(row.id)
            .where(row.cluster == _cluster_key(cluster), row.pool == pool,
                   row.status == models.AVAILABLE)
            .order_by(row.created_at, row.id)
            .limit(1))
    if snapshot_id is not None:
        pick = pick.where(row.snapshot_id == snapshot_id)
    now = timeutils.utcnow()
    take = dict(status=models.CLAIMING, claim_id=claim_id, claimed_at=now,
                updated_at=now)
    with context_manager.writer.using(_ctx()) as session:
        if session.bind.dialect.name in _SKIP_LOCKED_DIALECTS:
            # Concurrent claims skip each other's locked rows instead of
            # queueing behind them.
            row_id = session.execute(
                pick.with_for_update(skip_locked=True)).scalar()
            if row_id is None:
                return None
            session.execute(
                sa.update(row).where(row.id == row_id).values(**take)
                .execution_options(synchronize_session=False))
        else:
            # SQLite: one UPDATE with the pick as a subquery takes the write
            # lock at once, so two claims cannot both read, then deadlock
            # upgrading their locks.
            row_id = session.execute(
                sa.update(row)
                .where(row.id == pick.scalar_subquery(),
                       row.status == models.AVAILABLE)
                .values(**take)
                .returning(row.id)
                .execution_options(synchronize_session=False)).scalar()
            if row_id is None:
                return None
        return session.get(row, row_id)


@_retry
def finish_claim(row_id, claim_id):
    """The claim is done in Cinder: the volume leaves the pool for good."""
    with context_manager.writer.using(_ctx()) as session:
        return session.execute(
            sa.delete(models.PoolVolume)
            .where(models.PoolVolume.id == row_id,
                   models.PoolVolume.claim_id == claim_id)).rowcount == 1


@_retry
def release_claim(row_id, claim_id):
    """Undo a claim whose Cinder step failed: the volume is ready again."""
    with context_manager.writer.using(_ctx()) as session:
        return session.execute(
            sa.update(models.PoolVolume)
            .where(models.PoolVolume.id == row_id,
                   models.PoolVolume.claim_id == claim_id,
                   models.PoolVolume.status == models.CLAIMING)
            .values(status=models.AVAILABLE, claim_id=None, claimed_at=None,
                    updated_at=timeutils.utcnow())).rowcount == 1


# ---------------------------------------------------------------------------
# Reads


@_retry
def get_rows(cluster, pool=None, status=None, pools=None):
    """Rows of a cluster, optionally of one pool, a set of pools, a status."""
    query = sa.select(models.PoolVolume).where(
        models.PoolVolume.cluster == _cluster_key(cluster))
    if pool is not None:
        query = query.where(models.PoolVolume.pool == pool)
    if pools is not None:
        query = query.where(models.PoolVolume.pool.in_(list(pools)))
    if status is not None:
        query = query.where(models.PoolVolume.status == status)
    query = query.order_by(models.PoolVolume.pool,
                           models.PoolVolume.created_at,
                           models.PoolVolume.id)
    with context_manager.reader.using(_ctx()) as session:
        return list(session.execute(query).scalars())


@_retry
def count_by_pool(cluster):
    """``{pool: {snapshot_id: {status: count}}}`` in one GROUP BY query."""
    row = models.PoolVolume
    query = (sa.select(row.pool, row.snapshot_id, row.status,
                       sa.func.count())
             .where(row.cluster == _cluster_key(cluster))
             .group_by(row.pool, row.snapshot_id, row.status))
    counts = {}
    with context_manager.reader.using(_ctx()) as session:
        for pool, snapshot_id, status, count in session.execute(query):
            by_snapshot = counts.setdefault(pool, {})
            by_snapshot.setdefault(snapshot_id, {})[status] = count
    return counts


@_retry
def pool_names(cluster):
    """Pools that have rows, configured or not (a removed pool drains)."""
    query = (sa.select(models.PoolVolume.pool).distinct()
             .where(models.PoolVolume.cluster == _cluster_key(cluster)))
    with context_manager.reader.using(_ctx()) as session:
        return set(session.execute(query).scalars())


@_retry
def gb_by_pool(cluster):
    """GiB held by each pool's ready and creating rows, in one query.

    ``{pool: (known_gb, rows_without_size, largest_size)}``: a row's size
    is unknown until Cinder reports it, so callers estimate those.
    """
    row = models.PoolVolume
    query = (sa.select(row.pool, sa.func.sum(row.size),
                       sa.func.count() - sa.func.count(row.size),
                       sa.func.max(row.size))
             .where(row.cluster == _cluster_key(cluster),
                    row.status.in_((models.AVAILABLE, models.CREATING)))
             .group_by(row.pool))
    with context_manager.reader.using(_ctx()) as session:
        return {pool: (int(known or 0), int(unknown), largest)
                for pool, known, unknown, largest in session.execute(query)}


# ---------------------------------------------------------------------------
# Demand figures (target = auto, idle_ttl)


@_retry
def publish_demand(cluster, pool, host, *, score, score_at,
                   last_claim_at=None, refill_time=None):
    """Write this host's demand row of a pool (update, else insert).

    Only ``host`` writes its rows, so the insert races with nobody.
    """
    table = models.PoolDemand
    values = dict(score=score, score_at=score_at,
                  last_claim_at=last_claim_at, refill_time=refill_time,
                  updated_at=timeutils.utcnow())
    with context_manager.writer.using(_ctx()) as session:
        updated = session.execute(
            sa.update(table)
            .where(table.cluster == _cluster_key(cluster),
                   table.pool == pool, table.host == host)
            .values(**values)).rowcount
        if not updated:
            del values['updated_at']
            session.add(table(cluster=_cluster_key(cluster), pool=pool,
                              host=host, **values))


@_retry
def get_demand(cluster):
    """``{pool: [PoolDemand rows of every host]}`` of a cluster."""
    query = (sa.select(models.PoolDemand)
             .where(models.PoolDemand.cluster == _cluster_key(cluster))
             .order_by(models.PoolDemand.pool, models.PoolDemand.host))
    demand = {}
    with context_manager.reader.using(_ctx()) as session:
        for row in session.execute(query).scalars():
            demand.setdefault(row.pool, []).append(row)
    return demand
