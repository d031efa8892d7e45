"""The machine's real services and the Cinder handles the benchmark uses.

Each run gets its own RabbitMQ vhost and throw-away MariaDB/PostgreSQL
databases (oslo.db provisioning), so it never shares queues or rows with
tests or other runs.
"""

import contextlib
import pathlib
import uuid

from keystoneauth1 import loading as ks_loading
from oslo_config import cfg
from oslo_utils import timeutils
import sqlalchemy as sa

from volume_pool import cinder as vp_cinder
from volume_pool.conf import cinder as cinder_conf
from volume_pool.db import models
from volume_pool.tests import services as test_services

BACKENDS = ('mysql', 'postgresql', 'sqlite')
BACKEND_LABELS = {'mysql': 'MariaDB', 'postgresql': 'PostgreSQL',
                  'sqlite': 'SQLite'}


class ServiceUnavailable(Exception):
    """A service the benchmark needs is not there (which, and why)."""


def _missing(what, why):
    raise ServiceUnavailable('%s: %s' % (what, why))


def rabbit_vhost():
    """A vhost of our own; yields its transport URL."""
    return test_services.rabbit_vhost(missing=_missing,
                                      prefix='volume-pool-bench')


@contextlib.contextmanager
def database(backend, workdir):
    """A throw-away database of ``backend``; yields its URL as text."""
    with test_services.provisioned_database(
            backend, pathlib.Path(workdir), missing=_missing,
            prefix='vp_bench') as url:
        yield (url if isinstance(url, str)
               else url.render_as_string(hide_password=False))


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


def make_cinder(endpoint, project_id, timeout=30, page_size=None,
                **options):
    """The project's Cinder wrapper on a private ConfigOpts (noauth);
    ``options`` are more ``[cinder]`` options."""
    conf = cfg.ConfigOpts()
    cinder_conf.register_opts(conf)
    conf([], project='volume-pool-bench', default_config_files=[])
    group = cinder_conf.GROUP
    conf.set_override('auth_type', 'noauth', group=group)
    conf.register_opts(
        ks_loading.get_auth_plugin_conf_options('noauth'), group=group)
    conf.set_override('endpoint', endpoint, group=group)
    conf.set_override('project_id', project_id, group=group)
    conf.set_override('user_id', 'bench', group=group)
    conf.set_override('timeout', timeout, group=group)
    if page_size:
        options['list_page_size'] = page_size
    for name, value in options.items():
        conf.set_override(name, value, group=group)
    return vp_cinder.Cinder(conf)


def cinder_section(endpoint, project_id, timeout=30):
    return ('[cinder]\nauth_type = noauth\nendpoint = %s\nproject_id = %s\n'
            'user_id = volume-pool\ntimeout = %d\n'
            % (endpoint, project_id, timeout))


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
