"""Manager incarnations: who is alive, by the database's clock.

Every manager process registers a new incarnation at start and renews its
heartbeat from a timer of its own.  Sync settles a claim only when the
incarnation that runs it is gone (stopped, or silent for longer than
``service_down_time``) or its deadline has passed: the facts are durable and
read with one clock, so two managers never both believe they own a claim.
"""

import json

from oslo_db import exception as db_exc
import sqlalchemy as sa

from volume_pool.db import api as db_api
from volume_pool.db import clock
from volume_pool.db import models


@db_api.retry
def register(host, cluster, incarnation, pools=None):
    """Record a starting manager process and its ``{pool: snapshot_id}``."""
    try:
        with db_api.writer() as session:
            now = clock.now(session)
            session.add(models.Manager(
                host=host, cluster=db_api.cluster_key(cluster),
                incarnation=incarnation, heartbeat_at=now,
                pools=_dump(pools)))
    except db_exc.DBDuplicateEntry:
        pass  # a retry of a commit whose answer was lost: registered


def _dump(pools):
    return None if pools is None else json.dumps(pools, sort_keys=True)


def _load(text):
    try:
        pools = json.loads(text) if text else None
    except ValueError:
        return None  # written by a newer release in another form
    return pools if isinstance(pools, dict) else None


@db_api.retry
def heartbeat(incarnation, pools=None):
    """Renew the heartbeat, and the ``{pool: snapshot_id}`` if given;
    False if the row is gone or stopped."""
    table = models.Manager
    values = {'heartbeat_at': clock.utcnow()}
    if pools is not None:
        values['pools'] = _dump(pools)
    with db_api.writer() as session:
        return session.execute(
            sa.update(table)
            .where(table.incarnation == incarnation,
                   table.stopped_at.is_(None))
            .values(**values)).rowcount == 1


@db_api.retry
def stopped(incarnation):
    """A graceful stop: its unfinished claims may be settled at once."""
    table = models.Manager
    with db_api.writer() as session:
        session.execute(sa.update(table)
                        .where(table.incarnation == incarnation)
                        .values(stopped_at=clock.utcnow()))


def is_alive(now, down_time):
    """SQL: the row of ``managers`` names a live process (not stopped,
    a heartbeat within ``down_time`` of the database's ``now``)."""
    table = models.Manager
    return sa.and_(table.stopped_at.is_(None),
                   table.heartbeat_at > clock.later(now, -down_time))


def alive_condition(session, now, down_time):
    """SQL: the incarnation column of a row names a live manager."""
    return sa.select(models.Manager.incarnation).where(
        is_alive(now, down_time))


@db_api.retry
def live(cluster, down_time):
    """``[(host, incarnation, heartbeat_at)]`` of the live managers."""
    table = models.Manager
    with db_api.reader() as session:
        now = clock.now(session)
        return [tuple(row) for row in session.execute(
            sa.select(table.host, table.incarnation, table.heartbeat_at)
            .where(table.cluster == db_api.cluster_key(cluster),
                   is_alive(now, down_time))
            .order_by(table.host))]


@db_api.retry
def pool_views(cluster, down_time):
    """``[(host, incarnation, {pool: snapshot_id} or None)]`` of the live
    managers; None for a manager that does not say (older code)."""
    table = models.Manager
    with db_api.reader() as session:
        now = clock.now(session)
        query = (sa.select(table.host, table.incarnation, table.pools)
                 .where(table.cluster == db_api.cluster_key(cluster),
                        is_alive(now, down_time))
                 .order_by(table.host))
        return [(host, incarnation, _load(pools))
                for host, incarnation, pools in session.execute(query)]


@db_api.retry
def purge(down_time, keep_seconds):
    """Forget incarnations gone for ``keep_seconds``; returns how many."""
    table = models.Manager
    with db_api.writer() as session:
        now = clock.now(session)
        return session.execute(
            sa.delete(table).where(
                table.heartbeat_at < clock.later(
                    now, -(down_time + keep_seconds)))).rowcount
