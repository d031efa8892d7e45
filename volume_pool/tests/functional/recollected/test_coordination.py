"""The unit tests of ``test_coordination``, re-collected on the real
services: tooz on the machine's Redis and a redis-server of the test's own."""

from volume_pool.tests.unit.test_coordination import *  # noqa: F401,F403
