"""The clustered engines of :mod:`volume_pool.fixtures.clusters` as
fixtures, one cluster per test module: on free ports, in a work dir of its
own (on tmpfs where there is one), stopped and removed afterwards.  The
functional conftest makes them available to every test module."""

import functools
import os
import shutil
import tempfile
import uuid

import pytest

from volume_pool.fixtures import clusters
from volume_pool.tests import services

# A test client's socket to a service killed, stopped or starting
# mid-handshake can be left to the garbage collector (PyMySQL, requests,
# kombu): the fault's doing, not the code under test's.  The functional
# conftest puts this on every test of the layer.
UNCLOSED_SOCKETS = pytest.mark.filterwarnings(
    'ignore:Exception ignored in. <socket.socket'
    ':pytest.PytestUnraisableExceptionWarning')


def require_opt_in():
    """Clustered engines start on a developer's machine only when asked
    (VOLUME_POOL_FUNCTIONAL=1); in CI they always start, never skip."""
    if (os.environ.get('VOLUME_POOL_FUNCTIONAL') != '1'
            and not services.in_ci()):
        pytest.skip('clustered engines: run with VOLUME_POOL_FUNCTIONAL=1')


def running(make):
    """Yield the cluster ``make(workdir, missing=...)`` gives, started."""
    require_opt_in()
    shm = '/dev/shm'  # noqa: S108
    workdir = tempfile.mkdtemp(prefix='vp-cluster-',
                               dir=shm if os.path.isdir(shm) else None)
    # The nodes run as mysql or rabbitmq: they must reach their dirs.
    os.chmod(workdir, 0o755)  # noqa: S103
    cluster = make(os.path.join(workdir, 'c'), missing=services.unavailable)
    try:
        cluster.start()
        # Shown with --durations: the fixture's setup is the start-up.
        yield cluster
    finally:
        cluster.stop(fast=True)  # its data is thrown away
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope='module')
def galera():
    yield from running(clusters.GaleraCluster.on_free_ports)


@pytest.fixture(scope='module')
def rabbit_cluster():
    prefix = 'vpt%s-' % uuid.uuid4().hex[:6]
    yield from running(functools.partial(
        clusters.RabbitCluster.on_free_ports, prefix=prefix))


@pytest.fixture(scope='module')
def sentinel():
    yield from running(clusters.SentinelCluster.on_free_ports)


@pytest.fixture(scope='module')
def etcd():
    yield from running(clusters.EtcdCluster.on_free_ports)
