"""The unit tests of ``test_status``, re-collected on the real services:
the installed volume-pool-status script on MariaDB, PostgreSQL and
Redis."""

from volume_pool.tests.unit.test_status import *  # noqa: F401,F403
