"""The unit tests of ``test_rpcapi_retry``, re-collected on the real
services: RPC and events over RabbitMQ."""

from volume_pool.tests.unit.test_rpcapi_retry import *  # noqa: F401,F403
