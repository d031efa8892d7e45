"""The unit tests of ``test_manage``, re-collected on the real
services: the installed volume-pool-manage script, over RabbitMQ and Redis."""

from volume_pool.tests.unit.test_manage import *  # noqa: F401,F403
