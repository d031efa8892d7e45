"""The unit tests of ``test_quiet_start_stop``, re-collected on the real
services: a manager's start and stop on RabbitMQ log no WARNING."""

from volume_pool.tests.unit.test_quiet_start_stop import *  # noqa: F401,F403
