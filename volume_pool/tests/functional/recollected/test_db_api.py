"""The unit tests of ``db.test_api``, re-collected on the real
services: the database on MariaDB and PostgreSQL."""

from volume_pool.tests.unit.db.test_api import *  # noqa: F401,F403
