"""The machine's real services and the Cinder handles the benchmark uses.

Each run gets its own RabbitMQ vhost and throw-away MariaDB/PostgreSQL
databases (oslo.db provisioning), so it never shares queues or rows with
tests or other runs.
"""

import uuid

from oslo_utils import timeutils
import sqlalchemy as sa

from volume_pool import cinder as vp_cinder
from volume_pool.db import models
from volume_pool.fixtures import databases
from volume_pool.fixtures import rabbit
from volume_pool.fixtures import services as fixture_services

BACKENDS = ('mysql', 'postgresql', 'sqlite')
# The machine's Redis: the scale part's managers share pools through it.
REDIS_URL = fixture_services.REDIS_URL
BACKEND_LABELS = {'mysql': 'MariaDB', 'postgresql': 'PostgreSQL',
                  'sqlite': 'SQLite'}


def rabbit_vhost():
    """A vhost of our own; yields its transport URL."""
    return rabbit.rabbit_vhost(prefix='volume-pool-bench')


def database(backend, workdir):
    """A throw-away database of ``backend``; yields its URL as text."""
    return databases.provisioned_database(backend, workdir,
                                          prefix='vp_bench')


def count_rows(url, status=None):
    """Rows in the pool table at ``url`` (of ``status``, if given)."""
    query = sa.select(sa.func.count()).select_from(models.PoolVolume.__table__)
    if status is not None:
        query = query.where(models.PoolVolume.status == status)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(query).scalar()
    finally:
        engine.dispose()


def server_version(url):
    """The database server's version string, for the docs page."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            if engine.dialect.name == 'sqlite':
                return 'SQLite %s' % connection.exec_driver_sql(
                    'select sqlite_version()').scalar()
            return connection.exec_driver_sql('select version()').scalar()
    finally:
        engine.dispose()


def row_values(pool, volume_id, snapshot_id, size=1, cluster=None,
               host='bench', status=models.AVAILABLE):
    """One pool_volumes row, as replenish would have left it."""
    now = timeutils.utcnow()
    request_id = str(uuid.uuid4())
    return {'request_id': request_id, 'volume_id': volume_id,
            'name': 'volume-pool-%s-%s' % (pool, request_id[:8]),
            'pool': pool, 'cluster': cluster or '',
            'snapshot_id': snapshot_id, 'size': size, 'status': status,
            'host': host, 'created_at': now, 'updated_at': now,
            'ready_at': now if status == models.AVAILABLE else None}


def insert_rows(connectable, rows, chunk=1000):
    """Bulk insert (an engine or a session): seeding 10,000 rows one
    transaction each would time the seeding, not the pool."""
    table = models.PoolVolume.__table__
    for start in range(0, len(rows), chunk):
        part = rows[start:start + chunk]
        if isinstance(connectable, sa.engine.Engine):
            with connectable.begin() as connection:
                connection.execute(table.insert(), part)
        else:
            connectable.execute(table.insert(), part)


def seed_simulated_pool(sim, engine_or_session, pool, snapshot_id, count):
    """``count`` tagged, available simulator volumes, each with its row."""
    rows = []
    for _ in range(count):
        row = row_values(pool, None, snapshot_id)
        row['volume_id'] = sim.add_volume(
            size=1, name=row['name'], snapshot_id=snapshot_id,
            metadata=vp_cinder.pool_tags(pool, None, row['request_id']))
        rows.append(row)
    insert_rows(engine_or_session, rows)
    return [r['volume_id'] for r in rows]
