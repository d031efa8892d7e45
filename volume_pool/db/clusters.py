"""Clusters as the tables see them, for an operator who renamed one.

A manager syncs only the rows of its own ``[DEFAULT] cluster``: once the
name changes, the rows of the old name are synced by nobody until an
operator adopts or drains them (:mod:`volume_pool.clusters`).  Liveness is
read with the database's clock, as :mod:`volume_pool.db.managers` does.
"""

import sqlalchemy as sa
from sqlalchemy import orm

from volume_pool.db import api as db_api
from volume_pool.db import clock
from volume_pool.db import managers
from volume_pool.db import models


def _served(now, down_time):
    """SQL: the clusters that have a live manager."""
    return sa.select(models.Manager.cluster).where(
        managers.is_alive(now, down_time))


@db_api.retry
def stranded(current, down_time):
    """``{cluster key: {status: count}}`` of the clusters other than
    ``current`` that have rows and no live manager, in one query."""
    row = models.PoolVolume
    found = {}
    with db_api.reader() as session:
        now = clock.now(session)
        query = (sa.select(row.cluster, row.status, sa.func.count())
                 .where(row.cluster != db_api.cluster_key(current),
                        row.cluster.not_in(_served(now, down_time)))
                 .group_by(row.cluster, row.status))
        for cluster, status, count in session.execute(query):
            found.setdefault(cluster, {})[status] = count
    return found


@db_api.retry
def move(old, new):
    """Move every row of cluster ``old`` into ``new``, and its claim
    receipts whose key is free there, in one transaction.

    Returns ``(rows moved, receipts moved, receipts kept)``: a receipt
    whose ``(project, key)`` the new cluster already uses stays behind.
    """
    row, receipt = models.PoolVolume, models.ClaimReceipt
    old, new = db_api.cluster_key(old), db_api.cluster_key(new)
    taken = orm.aliased(receipt)
    with db_api.writer() as session:
        rows = session.execute(
            sa.update(row).where(row.cluster == old)
            .values(cluster=new)).rowcount
        # Selected first: MySQL cannot read the table an UPDATE writes.
        kept = list(session.execute(
            sa.select(receipt.id).join(
                taken, sa.and_(taken.cluster == new,
                               taken.project_id == receipt.project_id,
                               taken.claim_key == receipt.claim_key))
            .where(receipt.cluster == old)).scalars())
        receipts = session.execute(
            sa.update(receipt)
            .where(receipt.cluster == old, receipt.id.not_in(kept))
            .values(cluster=new)
            .execution_options(synchronize_session=False)).rowcount
    return rows, receipts, len(kept)


# Ids per IN list: SQLite caps the bound parameters of a statement.
_CHUNK = 500


@db_api.retry
def recorded(volume_ids, request_ids):
    """``(volume ids, request ids)`` of those given that a row of any
    cluster records: a half-done adopt leaves rows under the new name
    whose volumes still carry the old one."""
    row = models.PoolVolume
    volumes, requests = set(), set()
    with db_api.reader() as session:
        for column, ids, found in ((row.volume_id, list(volume_ids), volumes),
                                   (row.request_id, list(request_ids),
                                    requests)):
            for start in range(0, len(ids), _CHUNK):
                found.update(session.execute(
                    sa.select(column).where(
                        column.in_(ids[start:start + _CHUNK]))).scalars())
    return volumes, requests
