"""The unit tests of ``test_health``, re-collected on the real services:
the health ping to a named manager (also on its own host when it is
clustered) and the probe command, over RabbitMQ."""

from volume_pool.tests.unit.test_health import *  # noqa: F401,F403
