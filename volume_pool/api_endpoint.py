"""The RPC endpoint: the API clients may call, and nothing else.

The manager object also carries its periodic tasks and internals
(``sync``, ``replenish``, ``run_periodic_tasks``, ``drain``, ...); the
RPC server is given this object instead, so none of those is reachable
from the bus.  Each method hands the call to the manager unchanged: the
typed errors and the checks of the arguments live there.  It imports no
manager code: the manager module is imported only once the configuration
is parsed.
"""

import oslo_messaging as messaging

# The server side of the API versions of volume_pool.rpcapi.
RPC_API_VERSION = '1.4'


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
