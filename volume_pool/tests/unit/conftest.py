"""Fixtures of the unit layer: nothing but Python.

The fake:// transport, SQLite, the Cinder simulator, the console scripts'
``main(argv)`` called in this process and an in-process Redis for tooz.
The functional layer's conftest gives the same fixture names the real
services, and re-collects the tests that use them.
"""

import pytest

from volume_pool.tests import console as vp_console
from volume_pool.tests import fake_redis


@pytest.fixture(params=['fake'])
def transport_url(request):
    return 'fake:///'


@pytest.fixture
def console(conf, capsys):
    """Run a console script (its entry point's ``main(argv)``) in this
    process; answers as ``subprocess.run`` does: returncode, stdout,
    stderr."""
    return vp_console.InProcess(conf, capsys)


@pytest.fixture
def fake_redis_servers(monkeypatch):
    return fake_redis.install(monkeypatch)


@pytest.fixture
def coordination_url(fake_redis_servers):
    """A tooz URL of a Redis served in this process (tooz's own Redis
    driver runs against it)."""
    return fake_redis_servers[fake_redis.LIVE_HOST].url


@pytest.fixture
def private_coordination(fake_redis_servers):
    """A coordination backend of the test's own, down until started."""
    return fake_redis_servers[fake_redis.OUTAGE_HOST]
