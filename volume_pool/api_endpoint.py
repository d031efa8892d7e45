"""The RPC endpoint: the API clients may call, and nothing else.

The manager object also carries its periodic tasks and internals
(``sync``, ``replenish``, ``run_periodic_tasks``, ``drain``, ...); the
RPC server is given this object instead, so none of those is reachable
from the bus.  Each method hands the call to the manager unchanged: the
checks of the arguments live there, and the manager's API methods type
their errors with :func:`api_method`.  It imports no manager code: the
manager module is imported only once the configuration is parsed.
"""

import functools

from oslo_log import log as logging
import oslo_messaging as messaging

from volume_pool import exception
from volume_pool import group_commit
from volume_pool.db import api as db_api

LOG = logging.getLogger(__name__)

# The server side of the API versions of volume_pool.rpcapi.
RPC_API_VERSION = '1.5'


def api_method(func):
    """A manager method of the API: its typed errors reach the caller as
    themselves (oslo.messaging logs no traceback for them), and a database
    error as DatabaseUnavailable."""
    @functools.wraps(func)
    def database_errors_typed(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (*db_api.DATABASE_ERRORS, group_commit.BatchTimeout) as exc:
            LOG.warning('Database error in %s: %s', func.__name__, exc)
            raise exception.DatabaseUnavailable(
                reason=exc.__class__.__name__)
    return messaging.expected_exceptions(exception.VolumePoolException)(
        database_errors_typed)


class PoolAPIEndpoint:
    """``claim``, ``confirm``, ``release``, ``pool_status``, ``refill``
    and ``get_usable_hosts`` of one manager."""

    target = messaging.Target(version=RPC_API_VERSION)

    def __init__(self, manager):
        self._manager = manager

    def claim(self, context, **kwargs):
        return self._manager.claim(context, **kwargs)

    def confirm(self, context, **kwargs):
        return self._manager.confirm(context, **kwargs)

    def release(self, context, **kwargs):
        return self._manager.release(context, **kwargs)

    def pool_status(self, context, **kwargs):
        return self._manager.pool_status(context, **kwargs)

    def refill(self, context, **kwargs):
        return self._manager.refill(context, **kwargs)

    def get_usable_hosts(self, context, **kwargs):
        return self._manager.get_usable_hosts(context, **kwargs)


class HostEndpoint:
    """``ping`` only, on the host topic under the manager's own host name:
    one manager of a cluster can be probed by name."""

    target = messaging.Target(version=RPC_API_VERSION)

    def __init__(self, manager):
        self._manager = manager

    def ping(self, context, **kwargs):
        return self._manager.ping(context, **kwargs)
