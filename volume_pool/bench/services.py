"""The machine's real services and the Cinder handles the benchmark uses.

Each run gets its own RabbitMQ vhost and throw-away MariaDB/PostgreSQL
databases (oslo.db provisioning), so it never shares queues or rows with
tests or other runs.
"""


import sqlalchemy as sa

from volume_pool.db import models
from volume_pool.fixtures import databases
from volume_pool.fixtures import rabbit
from volume_pool.fixtures import services as fixture_services

BACKENDS = ('mysql', 'postgresql', 'sqlite')
# The machine's Redis: the scale part's managers share pools through it.
REDIS_URL = fixture_services.REDIS_URL
# The drivers a backend's URL may name (--driver); the first is the one
# the machine's services are reached with.
DRIVERS = {'mysql': ('pymysql', 'mysqldb'),
           'postgresql': ('psycopg2', 'psycopg')}
BACKEND_LABELS = {'mysql': 'MariaDB', 'postgresql': 'PostgreSQL',
                  'sqlite': 'SQLite'}


def rabbit_vhost():
    """A vhost of our own; yields its transport URL."""
    return rabbit.rabbit_vhost(prefix='volume-pool-bench')


def database(backend, workdir):
    """A throw-away database of ``backend``; yields its URL as text."""
    return databases.provisioned_database(backend, workdir,
                                          prefix='vp_bench')


def with_driver(url, driver):
    """``url`` with its driver replaced by ``driver`` (None: as it is)."""
    if not driver:
        return url
    parsed = sa.engine.make_url(url)
    return parsed.set(drivername='%s+%s' % (parsed.get_backend_name(),
                                            driver)).render_as_string(
        hide_password=False)


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


