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


def claim_available(pool, cluster, claim_id, snapshot_id=None):
    """Atomically take the oldest ready volume of a pool, or return None.

    With ``snapshot_id``, only volumes of that snapshot qualify: after a
    rotation, volumes of the old snapshot are drained, never handed out.
    The row moves to ``claiming`` with ``claim_id``; the caller then either
    :func:`finish_claim` (row removed) or :func:`release_claim` (row back to
    ``available``) once Cinder has answered.
    """
    rows, _done = settle_claims(pool, cluster, [claim_id], [],
                                snapshot_id=snapshot_id)
    return rows[0]


def finish_claim(row_id, claim_id):
    """The claim is done in Cinder: the volume leaves the pool for good."""
    return finish_claims([(row_id, claim_id)])[0]


@_retry
def finish_claims(claims):
    """:func:`finish_claim` for several (row id, claim id) pairs in one
    transaction; returns, per pair, whether its row was still the claim's.
    """
    with context_manager.writer.using(_ctx()) as session:
        return _finish(session, claims)


@_retry
def settle_claims(pool, cluster, claim_ids, finished, snapshot_id=None):
    """The database steps of several claims of one pool, in one transaction.

    Takes a ready row for each of ``claim_ids`` (as :func:`claim_available`)
    and deletes the row of each finished (row id, claim id) pair (as
    :func:`finish_claim`).  Returns (rows, done): one row or None per claim
    id, in order, the oldest ready rows first; one bool per finished pair.
    """
    row = models.PoolVolume
    conditions = [row.cluster == _cluster_key(cluster), row.pool == pool,
                  row.status == models.AVAILABLE]
    if snapshot_id is not None:
        conditions.append(row.snapshot_id == snapshot_id)
    now = timeutils.utcnow()
    take = dict(status=models.CLAIMING, claimed_at=now, updated_at=now)
    taken = []
    with context_manager.writer.using(_ctx()) as session:
        done = _finish(session, finished)
        if claim_ids:
            take_rows = (_take_skip_locked
                         if session.bind.dialect.name in _SKIP_LOCKED_DIALECTS
                         else _take_one_by_one)
            taken = take_rows(session, conditions, claim_ids, take)
    return taken + [None] * (len(claim_ids) - len(taken)), done


def _take_skip_locked(session, conditions, claim_ids, take):
    """MariaDB, PostgreSQL: lock the oldest ready rows, skipping rows that
    concurrent claims (of any manager) hold, and mark them in one UPDATE."""
    row = models.PoolVolume
    rows = session.execute(
        sa.select(row).where(*conditions)
        .order_by(row.created_at, row.id).limit(len(claim_ids))
        .with_for_update(skip_locked=True)).scalars().all()
    if not rows:
        return []
    # Fewer rows than claims when the pool runs dry: the rest get none.
    claim_of = {r.id: claim_id
                for r, claim_id in zip(rows, claim_ids, strict=False)}
    session.execute(
        sa.update(row).where(row.id.in_(claim_of))
        .values(claim_id=sa.case(claim_of, value=row.id), **take)
        .execution_options(synchronize_session=False))
    # The rows leave the session as they now are in the table.
    session.expunge_all()
    for taken in rows:
        taken.claim_id = claim_of[taken.id]
        for key, value in take.items():
            setattr(taken, key, value)
    return rows


def _take_one_by_one(session, conditions, claim_ids, take):
    """SQLite: one UPDATE per claim with the pick as a subquery; the first
    takes the write lock at once, so two claims cannot both read, then
    deadlock upgrading their locks."""
    row = models.PoolVolume
    pick = (sa.select(row.id).where(*conditions)
            .order_by(row.created_at, row.id).limit(1).scalar_subquery())
    ids = []
    for claim_id in claim_ids:
        row_id = session.execute(
            sa.update(row)
            .where(row.id == pick, row.status == models.AVAILABLE)
            .values(claim_id=claim_id, **take)
            .returning(row.id)
            .execution_options(synchronize_session=False)).scalar()
        if row_id is None:
            break
        ids.append(row_id)
    if not ids:
        return []
    found = {r.id: r for r in session.execute(
        sa.select(row).where(row.id.in_(ids))).scalars()}
    return [found[row_id] for row_id in ids]


def _finish(session, claims):
    """Delete the rows of (row id, claim id) pairs still so claimed."""
    if not claims:
        return []
    row = models.PoolVolume
    claim_of = dict(claims)
    if session.bind.dialect.delete_returning:
        # By primary key, so that only these rows are locked: a row-value
        # IN makes MariaDB scan and lock the whole table, and concurrent
        # claims, which skip locked rows, would find the pool empty.
        gone = set(session.execute(
            sa.delete(row)
            .where(row.id.in_(claim_of),
                   row.claim_id == sa.case(claim_of, value=row.id))
            .returning(row.id)
            .execution_options(synchronize_session=False)).scalars())
    else:
        gone = {row_id for row_id, claim_id in claims
                if session.execute(
                    sa.delete(row).where(row.id == row_id,
                                         row.claim_id == claim_id)
                ).rowcount == 1}
    return [row_id in gone for row_id, _claim_id in claims]


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
