"""The unit tests that pin the guards of the hold and claim steps and of
the receipts, found by mutation testing, re-collected on the real
services: the database on MariaDB, through PyMySQL and mysqlclient, and
on PostgreSQL."""

import pytest

from volume_pool.tests.functional import engines
from volume_pool.tests.unit.db.test_claim_step_guards import *  # noqa: F401,F403
from volume_pool.tests.unit.db.test_hold_guards import *  # noqa: F401,F403
from volume_pool.tests.unit.db.test_receipt_guards import *  # noqa: F401,F403


@pytest.fixture(params=engines.CLAIM_DRIVERS)
def db_backend(request):
    return request.param
