"""Which database engine an end-to-end test runs on.

The data layer's behaviour on each engine is proven by the database tests
re-collected on both.  An end-to-end test runs on both engines (the
``db_url`` fixture's default) where the engine is part of what it proves:
claims racing, exactly once at the edges, connections cut.  The others
run on one, chosen here, and spread over the two so that each engine
still carries managers through every kind of test.
"""

import pytest

ON_MARIADB = pytest.mark.parametrize('db_url', ['mysql'], indirect=True)
ON_POSTGRESQL = pytest.mark.parametrize('db_url', ['postgresql'],
                                        indirect=True)

# The claim's path on every driver the install guide offers for it:
# MariaDB through PyMySQL and through mysqlclient (``mysqldb``), and
# PostgreSQL.
CLAIM_DRIVERS = ['mysql', 'mysqldb', 'postgresql']
ON_EVERY_CLAIM_DRIVER = pytest.mark.parametrize('db_url', CLAIM_DRIVERS,
                                                indirect=True)
