"""The claim's and replenish's transactions on a three-node MariaDB
Galera cluster: each node locks only its own copy of a row, and two
nodes' conflicting writes meet only at commit, where the loser gets a
deadlock.  The pool lock must hold across nodes all the same."""

import concurrent.futures
import threading
import types

from oslo_db.sqlalchemy import enginefacade
from oslo_utils import uuidutils
import pytest
import sqlalchemy as sa

from volume_pool.db import api as db_api
from volume_pool.db import migration
from volume_pool.db import models
from volume_pool.fixtures import clusters
from volume_pool.tests.functional import clustered

pytestmark = pytest.mark.serial

DATABASE = 'volume_pool'
TARGET = 5
ROUNDS = 200


@pytest.fixture(scope='module')
def galera():
    yield from clustered.running(clusters.GaleraCluster.on_free_ports)


@pytest.fixture(scope='module')
def node_urls(galera):
    """The project's database on the cluster, migrated; its URL through
    each node."""
    with galera.connect(0) as conn, conn.cursor() as cur:
        cur.execute('CREATE DATABASE %s' % DATABASE)
    urls = [url + DATABASE for url in galera.urls['nodes']]
    engine = sa.create_engine(urls[0], poolclass=sa.pool.NullPool)
    try:
        migration.upgrade(engine=engine)
    finally:
        engine.dispose()
    return urls


@pytest.fixture
def through_nodes(node_urls, monkeypatch):
    """``db_api``'s write transactions, each thread through the node its
    ``use(i)`` names: two managers writing through two nodes, in one
    process."""
    facades = []
    for url in node_urls:
        facade = enginefacade.transaction_context()
        facade.configure(connection=url, max_pool_size=4)
        facades.append(facade)
    local = threading.local()
    monkeypatch.setattr(db_api, 'writer', lambda: facades[
        local.node].writer.using(types.SimpleNamespace()))
    monkeypatch.setattr(db_api, 'reader', lambda: facades[
        local.node].reader.using(types.SimpleNamespace()))

    def use(i):
        local.node = i
    yield use
    for facade in facades:
        facade.writer.get_engine().dispose()


def _rows_to_target(pool):
    def rows_for(counts, usage_of):
        by_status = counts.get(pool, {}).get('snap-1', {})
        have = sum(by_status.get(s, 0)
                   for s in (models.AVAILABLE, models.CREATING))
        return [db_api.new_volume_row(
            request_id=uuidutils.generate_uuid(), pool=pool, cluster=None,
            snapshot_id='snap-1', size=1, name='v', host='h')
            for _ in range(TARGET - have)]
    return rows_for


def _count(url, pool):
    """The pool's rows, read through that node once it applied every
    write the cluster committed before the read."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text('SET SESSION wsrep_sync_wait = 1'))
            return conn.execute(sa.text(
                'SELECT COUNT(*) FROM pool_volumes WHERE pool = :p'),
                {'p': pool}).scalar()
    finally:
        engine.dispose()


def _empty(url, pool):
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text('DELETE FROM pool_volumes WHERE pool = :p'),
                         {'p': pool})
    finally:
        engine.dispose()


def test_the_pool_lock_holds_across_nodes(galera, node_urls, through_nodes):
    """Two managers replenish one pool at once through two nodes, round
    after round, the pool emptied between rounds: never more than its
    target.  The manager that took the lock last would, without a change
    to the lock row, update nothing: Galera then replicates no write of
    that row, sees no conflict, and both count the pool short."""
    overfilled = []
    start = threading.Barrier(2)
    pool = 'p-%s' % uuidutils.generate_uuid()[:8]

    def replenish(node):
        through_nodes(node)
        start.wait(30)
        return len(db_api.reserve_creates(None, pool, 'mgr-%d' % node,
                                          _rows_to_target(pool)))

    with concurrent.futures.ThreadPoolExecutor(2) as executor:
        for _round in range(ROUNDS):
            _empty(node_urls[0], pool)
            # Both nodes have applied the delete before the round starts.
            assert _count(node_urls[1], pool) == 0
            made = [f.result(60) for f in [
                executor.submit(replenish, node) for node in (0, 1)]]
            have = _count(node_urls[2], pool)
            if have > TARGET:
                overfilled.append((have, made))
    print('%d rounds, %d overfilled: %s' % (ROUNDS, len(overfilled),
                                            overfilled[:5]))
    assert overfilled == []
