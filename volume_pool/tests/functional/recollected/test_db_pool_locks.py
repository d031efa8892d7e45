"""The unit tests of ``db.test_pool_locks``, re-collected on the real
services: the database on MariaDB and PostgreSQL."""

from volume_pool.tests.unit.db.test_pool_locks import *  # noqa: F401,F403
