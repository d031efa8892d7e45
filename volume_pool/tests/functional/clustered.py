"""A clustered engine of :mod:`volume_pool.fixtures.clusters` for a test
module: on free ports, in a work dir of its own (on tmpfs where there is
one), stopped and removed afterwards."""

import os
import shutil
import tempfile

import pytest

from volume_pool.tests import services


def running(make):
    """Yield the cluster ``make(workdir, missing=...)`` gives, started."""
    if (os.environ.get('VOLUME_POOL_FUNCTIONAL') != '1'
            and not services.in_ci()):
        pytest.skip('clustered engines: run with VOLUME_POOL_FUNCTIONAL=1')
    shm = '/dev/shm'  # noqa: S108
    workdir = tempfile.mkdtemp(prefix='vp-cluster-',
                               dir=shm if os.path.isdir(shm) else None)
    # The nodes run as mysql or rabbitmq: they must reach their dirs.
    os.chmod(workdir, 0o755)  # noqa: S103
    cluster = make(os.path.join(workdir, 'c'), missing=services.unavailable)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
