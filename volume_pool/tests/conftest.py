"""Fixtures of both test layers: configuration, databases, the Cinder
simulator, managers and the service in the test's process.

``db_backend`` and ``transport_url`` (asked for by ``any_database`` and
``running_service``) are the unit layer's in-process ones; the functional
layer's conftest overrides them with the real services.
"""

import volume_pool.cmd  # noqa: F401  (first: no eventlet, threading)

# isort: split

import contextlib
import datetime
import os
import textwrap

from futurist import _thread as futurist_thread
from oslo_config import fixture as config_fixture
from oslo_db.sqlalchemy import enginefacade
from oslo_utils import timeutils
import pytest

from volume_pool import cinder as vp_cinder
from volume_pool import config
from volume_pool import manager as vp_manager
from volume_pool import rpc
from volume_pool import service
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


own_conf = config.own_conf


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


@pytest.fixture(params=['sqlite'])
def db_backend(request):
    """The database of the tests that run on every backend: SQLite in
    the unit layer; the functional layer's conftest gives MariaDB and
    PostgreSQL (real servers) to the same tests."""
    return request.param


@pytest.fixture(scope='session')
def server_databases(tmp_path_factory):
    """The test process's MariaDB and PostgreSQL databases, migrated once
    and emptied for each test that asks (made on first use)."""
    made = services.MigratedDatabases(tmp_path_factory.mktemp('databases'))
    yield made
    made.close()


@pytest.fixture
def any_database(db_backend, tmp_path, monkeypatch, server_databases):
    """A migrated database of ``db_backend`` with no rows but the
    deployment identity: a SQLite file of the test's own, or the test
    process's MariaDB or PostgreSQL database, emptied for the test."""
    with contextlib.ExitStack() as stack:
        if db_backend == 'sqlite':
            url = stack.enter_context(
                services.provisioned_database(db_backend, tmp_path))
        else:
            url = server_databases.emptied(db_backend)
        context_manager = use_database(url, monkeypatch)
        yield db_backend
        context_manager.dispose_pool()


@pytest.fixture
def own_database(db_backend, tmp_path, monkeypatch):
    """A migrated database of ``db_backend`` made for the test alone and
    dropped after it: for a test that changes the schema or fills tables
    beyond what deleting rows between tests should cost."""
    with services.provisioned_database(db_backend, tmp_path) as url:
        context_manager = use_database(url, monkeypatch)
        yield db_backend
        context_manager.dispose_pool()


@pytest.fixture
def simulator():
    from volume_pool.fixtures.simulator import cinder_api
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


@pytest.fixture
def make_manager(write_config, database, simulator, conf):
    """Build Managers on the simulator, stopped at the end of the test.

    ``pools`` maps a name to its target, or to its ``[pool:NAME]`` options
    (the key ``snapshot_size`` sizes the pool's snapshot instead);
    ``options`` go to ``[volume_pool]``.  The pools' snapshot ids are in
    ``mgr.snapshots``.
    """
    managers = []

    def _make(pools=None, **options):
        pools = pools or {'debian': 3}
        # Every sync lists in full unless a test says otherwise: most
        # tests change Cinder behind the pool's back and sync once.
        options.setdefault('full_sync_interval', 0)
        snapshots, sections = {}, ''
        for name, pool in pools.items():
            pool = dict(pool) if isinstance(pool, dict) else {'target': pool}
            snapshots[name] = simulator.add_snapshot(
                size=pool.pop('snapshot_size', 1))
            sections += '[pool:%s]\nsnapshot_id = %s\n%s' % (
                name, snapshots[name],
                ''.join('%s = %s\n' % item for item in pool.items()))
        write_config('[DEFAULT]\nhost = test-host\n'
                     '[volume_pool]\nenabled_pools = %s\n'
                     'create_poll_interval = 0.05\n%s\n%s%s'
                     % (','.join(pools),
                        ''.join('%s = %s\n' % item
                                for item in options.items()),
                        cinder_section(simulator), sections))
        mgr = vp_manager.Manager(vp_cinder.Cinder(conf), conf=conf)
        mgr.init_host()
        mgr.snapshots = snapshots
        managers.append(mgr)
        return mgr

    yield _make
    for mgr in managers:
        mgr.prepare_for_shutdown()
        mgr.cleanup_host()


def service_config(simulator, transport_url, host='rpc-test', cluster=None,
                   target=2, database=None):
    """The config of a service with one pool, ``debian``, on a new
    snapshot of the simulator; ``database``: a ``[database] connection``
    (for a service on a config of its own, see :func:`own_conf`)."""
    snapshot = simulator.add_snapshot(size=1)
    return ('[DEFAULT]\nhost = %s\n%stransport_url = %s\n%s'
            '[volume_pool]\nenabled_pools = debian\n'
            'create_poll_interval = 0.05\nperiodic_fuzzy_delay = 0\n'
            '%s[pool:debian]\nsnapshot_id = %s\ntarget = %d\n'
            % (host, 'cluster = %s\n' % cluster if cluster else '',
               transport_url,
               '[database]\nconnection = %s\n' % database if database
               else '', cinder_section(simulator), snapshot, target))


@contextlib.contextmanager
def serving(conf):
    """The whole service (RPC server, periodic tasks) on ``conf`` in this
    process, stopped afterwards."""
    rpc.init(conf)
    server = service.Service(conf)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        rpc.cleanup()


@pytest.fixture
def running_service(write_config, database, simulator, conf, transport_url):
    """The whole service on the test's CONF."""
    write_config(service_config(simulator, transport_url))
    with serving(conf) as server:
        yield server


@pytest.fixture
def frozen_time(monkeypatch):
    """oslo.utils' clock (timeutils.utcnow and what reads it: row times,
    the backoff, the demand estimate, the stuck-create reaper), stopped
    now; call the fixture's value with seconds to move it on.

    oslo.utils' own override is deprecated in favour of patching
    ``utcnow``; ``utcnow_ts`` is patched too, as it reads the time
    without ``utcnow``.
    """
    now = [timeutils.utcnow()]

    def utcnow(with_timezone=False):
        if with_timezone:
            return now[0].replace(tzinfo=datetime.timezone.utc)
        return now[0]

    def utcnow_ts(microsecond=False):
        stamp = now[0].replace(tzinfo=datetime.timezone.utc).timestamp()
        return stamp if microsecond else int(stamp)

    def advance(seconds):
        now[0] += datetime.timedelta(seconds=seconds)

    monkeypatch.setattr(timeutils, 'utcnow', utcnow)
    monkeypatch.setattr(timeutils, 'utcnow_ts', utcnow_ts)
    return advance


@pytest.fixture(autouse=True)
def quick_idle_workers(monkeypatch):
    """futurist's idle workers look for the executor's shutdown once a
    second, so every stop of a manager's create executor or of an RPC
    server's executor waited up to a second.  A shorter look changes
    nothing else: a worker with work never waits."""
    monkeypatch.setattr(futurist_thread.ThreadWorker, 'MAX_IDLE_FOR', 0.01)


def pytest_report_header(config):
    return 'volume-pool tests, CI=%s' % os.environ.get('CI', '')


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: two workers per core.  Both layers' tests wait (on
    timers, sockets, the real services, other processes) about as long
    as they compute, so one worker per core leaves the cores half idle."""
    return 2 * (os.cpu_count() or 1)
