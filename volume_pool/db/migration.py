"""Schema migrations with alembic, run by ``volume-pool-manage db sync``.

alembic is imported by the functions that use it, not with this module:
it is a third of a command's start-up, and most commands never need it.
"""

import os

from volume_pool.db import api as db_api

_MIGRATIONS_DIR = os.path.join(os.path.dirname(__file__), 'migrations')


def _scripts():
    from alembic import config as alembic_config
    from alembic import script as alembic_script
    config = alembic_config.Config()
    config.set_main_option('script_location', _MIGRATIONS_DIR)
    return alembic_script.ScriptDirectory.from_config(config)


def _alembic_config(connection):
    from alembic import config as alembic_config
    config = alembic_config.Config()
    config.set_main_option('script_location', _MIGRATIONS_DIR)
    # env.py uses this open connection instead of building an engine.
    config.attributes['connection'] = connection
    return config


def upgrade(revision='head', engine=None):
    """Bring the schema to ``revision`` (default: the newest)."""
    engine = engine or db_api.get_engine()
    with engine.begin() as connection:
        from alembic import command as alembic_command
        alembic_command.upgrade(_alembic_config(connection), revision)


def version(engine=None):
    """The current revision of the database, or None if never synced."""
    engine = engine or db_api.get_engine()
    with engine.connect() as connection:
        from alembic import migration as alembic_migration
        context = alembic_migration.MigrationContext.configure(connection)
        return context.get_current_revision()


def head():
    """The newest revision the code knows."""
    scripts = _scripts()
    return scripts.get_current_head()


# How the database's schema stands against the code's (see state()).
CURRENT, OLDER, NEWER, EMPTY = 'current', 'older', 'newer', 'empty'


def known_revisions():
    scripts = _scripts()
    return {script.revision for script in scripts.walk_revisions()}


def state(current):
    """Where revision ``current`` stands for this code.

    Migrations only add within a release series, so code runs on a schema
    a newer release brought up (a rolling upgrade: ``db sync`` first, then
    the managers one by one); it cannot run on an older one.
    """
    if current is None:
        return EMPTY
    if current == head():
        return CURRENT
    if current in known_revisions():
        return OLDER
    return NEWER
