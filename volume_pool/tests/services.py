"""The machine's real services, as the tests reach them.

Tests run against real MariaDB, PostgreSQL, RabbitMQ and Redis.  A service
that is not there fails the test when ``CI=true`` and skips it, saying
what is missing, on a developer's machine.  The benchmark uses the same
throw-away databases and vhosts, and raises instead.
"""

import contextlib
import os
import shutil
import socket
import subprocess
import uuid

from volume_pool.tests import helpers

MYSQL_ADMIN_URL = os.environ.get('VOLUME_POOL_TEST_MYSQL_URL',
                                 'mysql+pymysql://root@127.0.0.1/')
POSTGRESQL_ADMIN_URL = os.environ.get(
    'VOLUME_POOL_TEST_POSTGRESQL_URL',
    'postgresql+psycopg2://postgres@127.0.0.1/postgres')
RABBIT_URL = os.environ.get('VOLUME_POOL_TEST_RABBIT',
                            'rabbit://guest:guest@127.0.0.1:5672')
REDIS_URL = os.environ.get('VOLUME_POOL_TEST_REDIS',
                           'redis://127.0.0.1:6379')

# oslo.db's provisioning reads its admin URLs from here.
os.environ.setdefault('OS_TEST_DBAPI_ADMIN_CONNECTION',
                      ';'.join((MYSQL_ADMIN_URL, POSTGRESQL_ADMIN_URL)))

DB_BACKENDS = ('sqlite', 'mysql', 'postgresql')


def in_ci():
    return os.environ.get('CI') == 'true'


def unavailable(what, why):
    """Fail in CI, skip elsewhere, always saying what is missing."""
    import pytest  # here: the benchmark imports this module, not pytest

    message = '%s is not available: %s' % (what, why)
    if in_ci():
        pytest.fail(message + ' (CI=true: a missing service is a failure)')
    pytest.skip(message)


@contextlib.contextmanager
def provisioned_database(backend, tmp_path, missing=unavailable,
                         prefix='vp_test'):
    """A throw-away database of ``backend``; yields its URL.

    ``missing(what, why)`` is called when the backend is not there.
    """
    if backend == 'sqlite':
        yield 'sqlite:///%s' % (tmp_path / 'volume_pool.sqlite')
        return
    from oslo_db import exception as db_exc
    from oslo_db.sqlalchemy import provision
    try:
        provider = provision.Backend.backend_for_database_type(backend)
    except db_exc.BackendNotAvailable as exc:
        missing(backend, exc)
    name = '%s_%s' % (prefix, uuid.uuid4().hex[:12])
    provider.create_named_database(name)
    try:
        yield provider.provisioned_database_url(name)
    finally:
        provider.drop_named_database(name, conditional=True)


@contextlib.contextmanager
def rabbit_vhost(missing=unavailable, prefix='volume-pool-test'):
    """A RabbitMQ vhost of our own: queue names ignore the exchange, so
    runs sharing the broker would otherwise share queues."""
    vhost = '%s-%s' % (prefix, uuid.uuid4().hex[:10])
    try:
        subprocess.run(['rabbitmqctl', '-q', 'add_vhost', vhost],
                       check=True, capture_output=True, timeout=60)
        subprocess.run(['rabbitmqctl', '-q', 'set_permissions', '-p', vhost,
                        'guest', '.*', '.*', '.*'],
                       check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        missing('RabbitMQ (rabbitmqctl)', exc)
    try:
        yield '%s/%s' % (RABBIT_URL, vhost)
    finally:
        subprocess.run(['rabbitmqctl', '-q', 'delete_vhost', vhost],
                       capture_output=True, timeout=60)


class PrivateRedis:
    """A redis-server of a test's own on a free port, to stop and start at
    will: faults never touch the machine's shared Redis."""

    def __init__(self, workdir, missing=unavailable):
        self.port = helpers.free_port()
        self.dir = str(workdir)
        self.proc = None
        self._missing = missing

    @property
    def url(self):
        return 'redis://127.0.0.1:%d' % self.port

    def start(self):
        binary = shutil.which('redis-server')
        if binary is None:
            self._missing('redis-server', 'not installed')
        self.proc = subprocess.Popen(
            [binary, '--port', str(self.port), '--bind', '127.0.0.1',
             '--save', '', '--appendonly', 'no', '--dir', self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        helpers.wait_for(self._up, timeout=20, interval=0.1,
                         what='private redis-server on %d' % self.port)
        return self

    def _up(self):
        try:
            with socket.create_connection(('127.0.0.1', self.port), 0.5):
                return True
        except OSError:
            return False

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
            self.proc = None
