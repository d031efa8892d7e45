"""The unit tests of ``test_cluster_rename``, re-collected on the real
services: the cluster queries on MariaDB and PostgreSQL."""

from volume_pool.tests.unit.test_cluster_rename import *  # noqa: F401,F403
