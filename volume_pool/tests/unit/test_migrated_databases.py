"""The test databases migrated once and emptied for each test: the rows
a test wrote are gone for the next, the schema and the deployment
identity stay (on SQLite here; the functional layer uses it on MariaDB
and PostgreSQL)."""

import sqlalchemy as sa

from volume_pool.db import deployment
from volume_pool.db import migration
from volume_pool.fixtures import databases


def _count(url, table):
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(
                sa.text('SELECT COUNT(*) FROM %s' % table)).scalar_one()
    finally:
        engine.dispose()


def test_rows_go_schema_and_identity_stay(tmp_path):
    made = databases.MigratedDatabases(tmp_path)
    try:
        url = made.emptied('sqlite')
        engine = sa.create_engine(url)
        identity = deployment.identity(engine)
        assert migration.version(engine) == migration.head()
        with engine.begin() as connection:
            connection.execute(sa.text(
                "INSERT INTO pool_locks (cluster, pool) VALUES ('', 'p')"))
        engine.dispose()
        assert _count(url, 'pool_locks') == 1

        assert made.emptied('sqlite') == url
        assert _count(url, 'pool_locks') == 0
        engine = sa.create_engine(url)
        assert deployment.identity(engine) == identity
        assert migration.version(engine) == migration.head()
        engine.dispose()
    finally:
        made.close()
