"""The unit tests of ``test_rpc``, re-collected on the real
services: RPC and events over RabbitMQ."""

from volume_pool.tests.unit.test_rpc import *  # noqa: F401,F403
