"""The unit tests of ``test_notifications``, re-collected on the real
services: RPC and events over RabbitMQ."""

from volume_pool.tests.unit.test_notifications import *  # noqa: F401,F403
