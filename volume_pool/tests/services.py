"""The tests' answer to a missing real service: fail under CI, skip on a
developer's machine, always saying which service and why.

The fixtures themselves (throw-away databases, RabbitMQ vhosts, a
private Redis) are :mod:`volume_pool.fixtures`; this binds them to that
answer.
"""

import functools
import os

import pytest

from volume_pool.fixtures import databases
from volume_pool.fixtures import rabbit
from volume_pool.fixtures import redis
from volume_pool.fixtures.services import REDIS_URL  # noqa: F401


def in_ci():
    return os.environ.get('CI') == 'true'


def unavailable(what, why):
    """Fail in CI, skip elsewhere, always saying what is missing."""
    message = '%s is not available: %s' % (what, why)
    if in_ci():
        pytest.fail(message + ' (CI=true: a missing service is a failure)')
    pytest.skip(message)


provisioned_database = functools.partial(databases.provisioned_database,
                                         missing=unavailable)
MigratedDatabases = functools.partial(databases.MigratedDatabases,
                                      missing=unavailable)
rabbit_vhost = functools.partial(rabbit.rabbit_vhost, missing=unavailable)
PrivateRedis = functools.partial(redis.PrivateRedis, missing=unavailable)
