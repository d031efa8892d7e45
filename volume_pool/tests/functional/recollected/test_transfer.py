"""The unit tests of ``test_transfer``, re-collected on the real
services: RPC and events over RabbitMQ."""

from volume_pool.tests.unit.test_transfer import *  # noqa: F401,F403
