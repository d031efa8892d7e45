"""The unit tests of ``db.test_claims``, re-collected on the real
services: the database on MariaDB, through PyMySQL and mysqlclient, and
on PostgreSQL."""

import pytest

from volume_pool.tests.functional import engines
from volume_pool.tests.unit.db.test_claims import *  # noqa: F401,F403


@pytest.fixture(params=engines.CLAIM_DRIVERS)
def db_backend(request):
    return request.param
