"""Shared pytest fixtures: configuration, databases, a Cinder simulator."""

import volume_pool.cmd  # noqa: F401  (first: no eventlet, threading)

# isort: split

import os
import textwrap

from oslo_config import fixture as config_fixture
from oslo_db.sqlalchemy import enginefacade
import pytest

from volume_pool import config
from volume_pool.db import api as db_api
from volume_pool.db import migration
from volume_pool.tests import services

CONF = config.CONF


@pytest.fixture
def conf():
    """The global CONF, reset after the test."""
    fixture = config_fixture.Config(CONF)
    fixture.setUp()
    yield CONF
    fixture.cleanUp()


@pytest.fixture
def write_config(tmp_path, conf):
    """Write a config file and parse it into CONF; returns its path."""
    def _write(text, argv=()):
        path = tmp_path / 'volume-pool.conf'
        path.write_text('\n'.join(line.strip()
                                  for line in text.splitlines()) + '\n')
        config.parse_args(['--config-file', str(path), *argv])
        return path
    return _write


def use_database(url, monkeypatch):
    """Point the data layer at ``url`` for one test; migrate it."""
    context_manager = enginefacade.transaction_context()
    context_manager.configure(connection=url)
    monkeypatch.setattr(db_api, 'context_manager', context_manager)
    migration.upgrade()
    return context_manager


@pytest.fixture
def database(tmp_path, monkeypatch):
    """A migrated SQLite database, private to the test."""
    with services.provisioned_database('sqlite', tmp_path) as url:
        context_manager = use_database(url, monkeypatch)
        yield url
        context_manager.dispose_pool()


@pytest.fixture(params=services.DB_BACKENDS)
def any_database(request, tmp_path, monkeypatch):
    """The same test on SQLite, MariaDB and PostgreSQL (real servers)."""
    with services.provisioned_database(request.param, tmp_path) as url:
        context_manager = use_database(url, monkeypatch)
        yield request.param
        context_manager.dispose_pool()


@pytest.fixture
def simulator():
    from volume_pool.simulator import cinder_api
    with cinder_api.CinderSimulator() as sim:
        yield sim


def cinder_section(sim):
    return textwrap.dedent("""\
        [cinder]
        auth_type = noauth
        endpoint = %s
        project_id = %s
        user_id = tester
        timeout = 10
        """) % (sim.endpoint, sim.project_id)


def pytest_report_header(config):
    return 'volume-pool tests, CI=%s' % os.environ.get('CI', '')
