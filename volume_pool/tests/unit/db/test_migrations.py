"""Walk every alembic revision and check models and migrations agree,
on SQLite, MariaDB and PostgreSQL (the placement way)."""

from alembic import script as alembic_script
from oslo_db.sqlalchemy import provision
from oslo_db.sqlalchemy import test_migrations
import pytest
import sqlalchemy as sa

from volume_pool.db import api as db_api
from volume_pool.db import migration
from volume_pool.db import models

# The functional layer runs these again on the real services.
pytestmark = pytest.mark.recollect


class _ModelsMigrationsSync(test_migrations.ModelsMigrationsSync):
    """oslo.db's comparison, driven by pytest instead of testtools."""

    def __init__(self, engine):
        self._engine = engine

    def get_engine(self):
        return self._engine

    def get_metadata(self):
        return models.Base.metadata

    def db_sync(self, engine):
        pass  # the fixture already walked the revisions

    def include_object(self, object_, name, type_, reflected, compare_to):
        return not (type_ == 'table' and name == 'alembic_version')

    def addCleanup(self, func, *args, **kwargs):
        pass  # the fixture drops the whole database afterwards

    def assertFalse(self, value, msg=None):
        assert not value, msg

    def fail(self, msg):
        raise AssertionError(msg)


def _revisions():
    config = migration._alembic_config(None)
    scripts = alembic_script.ScriptDirectory.from_config(config)
    return [r.revision for r in reversed(list(scripts.walk_revisions()))]


def test_walk_every_revision_then_models_match(own_database):
    engine = db_api.get_engine()
    # The fixture upgraded to head; start again from nothing, step by step.
    provision.Backend(engine.name, engine.url).drop_all_objects(engine)
    assert sa.inspect(engine).get_table_names() == []
    assert migration.version() is None
    for revision in _revisions():
        migration.upgrade(revision)
        assert migration.version() == revision
    assert migration.version() == migration.head()
    _ModelsMigrationsSync(engine).test_models_sync()


def test_upgrade_is_idempotent(database):
    migration.upgrade()
    migration.upgrade()
    assert migration.version() == migration.head()
