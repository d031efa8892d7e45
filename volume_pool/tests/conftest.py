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
    """The global CONF, reset after the test, and the options of groups
    registered during it dropped (an auth plugin's options, such as the
    required ``[cinder] user_id`` of noauth, would bind the tests after
    it).  ``[DEFAULT]`` keeps its own: oslo.log's reload hook reads them."""
    fixture = config_fixture.Config(CONF)
    fixture.setUp()
    before = _registered(CONF)
    yield CONF
    fixture.cleanUp()
    for group, names in _registered(CONF).items():
        for name in names - before.get(group, set()):
            CONF.unregister_opt(
                CONF._get_opt_info(name, group)['opt'], group=group)


def _registered(conf):
    """``{group: option names}`` but ``[DEFAULT]``; oslo.config has no
    public listing."""
    found = {}
    for name, group in conf._groups.items():
        found[name] = set(group._opts)
    return found


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
