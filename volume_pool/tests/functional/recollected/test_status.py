"""The unit tests of ``test_status``, re-collected on the real services:
the installed volume-pool-status script on MariaDB and Redis."""

import pytest

from volume_pool.tests.unit.test_status import *  # noqa: F401,F403


# MariaDB only: on a PostgreSQL database that was never synced, oslo.db
# logs each missing table with a traceback, which volume-pool-status
# prints on stderr, and these tests refuse a traceback.
@pytest.fixture(params=['mysql'])
def db_backend(request):
    return request.param
