"""Fixtures of the functional suite: one real Cinder per run (started by
the first test that asks for it), a RabbitMQ vhost and a throw-away
MariaDB or PostgreSQL database per test.

The same fixture names as the unit layer's, on the real services:
``db_backend`` (MariaDB, PostgreSQL), ``transport_url`` (RabbitMQ),
``console`` (the installed scripts in processes of their own),
``coordination_url`` (the machine's Redis) and ``private_coordination``
(a redis-server of the test's own).  The modules of ``recollected/``
import unit test modules: those of their tests marked ``recollect`` that
use one of these run here against the real thing.
"""

import datetime
from importlib import metadata
import os
import uuid

from oslo_config import cfg
import pytest

from volume_pool import rpcapi
from volume_pool.fixtures import local_cinder
from volume_pool.fixtures import manager_process
from volume_pool.tests import console as vp_console
from volume_pool.tests import services

# The clustered engines: one cluster per test module that asks for one.
from volume_pool.tests.functional import clustered
from volume_pool.tests.functional.clustered import etcd  # noqa: F401
from volume_pool.tests.functional.clustered import galera  # noqa: F401
from volume_pool.tests.functional.clustered import rabbit_cluster  # noqa
from volume_pool.tests.functional.clustered import sentinel  # noqa: F401

CLAIMER = os.path.join(os.path.dirname(__file__), 'claimer.py')
# For the tests of a burst of claims, about contention and not deadlines:
# twenty misses at once on the test Cinder (one API worker) of a loaded
# 2-core machine can take longer than the suite's 20 s claim_timeout, and
# a rename waiting behind them longer than its 20 s Cinder timeout.
BURST_TIMEOUTS = '[volume_pool]\nclaim_timeout = 90\n[cinder]\ntimeout = 60\n'


@pytest.fixture(scope='session')
def cinder():
    # Opt-in on a developer's machine; in CI they always run, never skip.
    if (os.environ.get('VOLUME_POOL_FUNCTIONAL') != '1'
            and not services.in_ci()):
        pytest.skip('functional tests start a real Cinder: run them with '
                    '"tox -e functional" (VOLUME_POOL_FUNCTIONAL=1)')
    local = local_cinder.LocalCinder()
    try:
        local.start()
    except local_cinder.CinderFailed as exc:
        # Never a skip: the suite asked for a real Cinder and did not get one.
        pytest.fail(str(exc))
    yield local
    local.stop()


@pytest.fixture(scope='session')
def snapshot(cinder):
    return cinder.make_snapshot(size=1)


@pytest.fixture(params=['rabbit'])
def transport_url(request):
    with services.rabbit_vhost() as url:
        yield url


@pytest.fixture(params=['mysql', 'postgresql'])
def db_backend(request):
    return request.param


@pytest.fixture
def console():
    return vp_console.Subprocess()


@pytest.fixture
def coordination_url():
    import redis
    try:
        redis.Redis.from_url(services.REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as exc:
        services.unavailable('Redis', exc)
    return private_namespace(services.REDIS_URL)


def private_namespace(redis_url):
    """The machine's Redis under a key namespace of the test's own: tests
    running at once (pytest-xdist workers) never see each other's
    groups, members or locks."""
    return '%s?namespace=vp-test-%s' % (redis_url, uuid.uuid4().hex[:12])


@pytest.fixture
def private_coordination(tmp_path):
    redis = services.PrivateRedis(tmp_path)
    yield redis
    redis.stop()


# What makes a re-collected unit test worth running here.
REAL_SERVICES = {'db_backend', 'transport_url', 'console',
                 'coordination_url', 'private_coordination'}


@pytest.hookimpl(trylast=True)  # after pytest-xdist names the groups
def pytest_collection_modifyitems(config, items):
    """A unit test imported by a functional module runs here only when it
    is marked ``recollect`` and uses a fixture this layer makes real; the
    others ran in the unit layer already, on the same code.  A marked test
    that uses none would run here for nothing: that is a mistake."""
    kept, dropped, idle = [], [], []
    for item in items:
        function = getattr(item, 'function', None)
        recollected = (function is not None and
                       function.__module__.startswith(
                           'volume_pool.tests.unit.') and
                       not item.module.__name__.startswith(
                           'volume_pool.tests.unit.'))
        if not recollected:
            kept.append(item)
        elif item.get_closest_marker('recollect') is None:
            dropped.append(item)
        elif REAL_SERVICES & set(item.fixturenames):
            kept.append(item)
        elif any(m.name == 'recollect' for m in item.own_markers):
            idle.append(item.nodeid)
        else:  # marked with its module, and this test needs no service
            dropped.append(item)
    if idle:
        raise pytest.UsageError(
            'marked recollect but using no real service (%s): %s'
            % (', '.join(sorted(REAL_SERVICES)), ', '.join(idle)))
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
    # The layer's tests stop, kill and cut the services their clients talk
    # to: a client library's socket to such a service can be left to the
    # garbage collector, whose warning pytest turns into an error of
    # whichever test runs then.  That one warning, a socket's, is ignored
    # here; the unit layer keeps it an error.
    for item in items:
        item.add_marker(clustered.UNCLOSED_SOCKETS)
    _check_groups(config, items)


# Set on a test whose group pytest-xdist lost: the reason it fails.
GROUP_LOST = pytest.StashKey[str]()


def _check_groups(config, items):
    """With ``--dist loadgroup``, pytest-xdist keeps a group's tests on
    one worker by naming each after its group; a pytest it does not know
    may drop the name, and a module's cluster then starts on every
    worker.  Such a test fails, saying why, instead of running slowly."""
    if not getattr(config.option, 'loadgroup', False):
        return
    for item in items:
        if (item.get_closest_marker('xdist_group') is not None
                and '@' not in item.nodeid):
            item.stash[GROUP_LOST] = (
                'pytest %s and pytest-xdist %s do not keep the tests of an '
                'xdist_group on one worker: use the versions of '
                'upper-constraints.txt' % (pytest.__version__,
                                           _xdist_version()))


def pytest_runtest_setup(item):
    lost = item.stash.get(GROUP_LOST, None)
    if lost:
        pytest.fail(lost, pytrace=False)


def _xdist_version():
    return metadata.version('pytest-xdist')


@pytest.fixture(params=['mysql', 'postgresql'])
def db_url(request, server_databases):
    """The worker's database of the engine, migrated once and emptied for
    the test (its managers were killed at the end of the last one)."""
    return server_databases.emptied(request.param)


@pytest.fixture
def pool_name():
    """Pools are named per test: tests share one Cinder project."""
    return 'fn-%s' % uuid.uuid4().hex[:8]


@pytest.fixture
def managers(tmp_path, cinder, transport_url, db_url):
    """Factory of manager processes sharing this test's DB and broker."""
    started = []
    synced = {db_url}  # migrated once for the worker
    shared_redis = private_namespace(services.REDIS_URL)

    def _start(pools, host='mgr-1', coordination=False, sync_interval=3,
               extra='', project_id=None, cluster=None, connection=None,
               broker=None, full_sync_interval=0):
        """``pools``: (name, snapshot_id, target) triples; ``coordination``
        True for the machine's Redis, or a tooz URL; ``connection`` the
        database URL the manager uses, if not the test's own (``db
        sync``-ed by its first manager); ``broker`` its transport URL, if
        not the test's own; ``full_sync_interval`` 0 (every sync lists in
        full) unless a test says otherwise."""
        sections = ''.join(
            '[pool:%s]\nsnapshot_id = %s\ntarget = %d\n' % p for p in pools)
        if coordination is True:
            coordination = shared_redis
        coordination_section = (
            '[coordination]\nbackend_url = %s\nmembership_timeout = 5\n'
            'refresh_interval = 2\n' % coordination if coordination else '')
        text = ('[DEFAULT]\nhost = %s\ntransport_url = %s\n'
                'graceful_shutdown_timeout = 30\n%s'
                '[database]\nconnection = %s\n'
                '[volume_pool]\nenabled_pools = %s\nreplenish_interval = 1\n'
                'sync_interval = %d\nfull_sync_interval = %d\n'
                'create_concurrency = 8\n'
                'create_poll_interval = 0.2\nperiodic_fuzzy_delay = 0\n'
                'claim_timeout = 20\n%s%s%s%s'
                % (host, broker or transport_url,
                   'cluster = %s\n' % cluster if cluster else '',
                   connection or db_url,
                   ','.join(p[0] for p in pools), sync_interval,
                   full_sync_interval,
                   cinder.cinder_section(project_id), sections,
                   coordination_section,
                   extra))
        process = manager_process.ManagerProcess(str(tmp_path), host, text)
        if (connection or db_url) not in synced:
            process.db_sync()
            synced.add(connection or db_url)
        started.append(process.start())
        return process

    _start.db_url = db_url
    _start.transport_url = transport_url
    # Volumes made before (other tests') are not this test's to account.
    _start.started_at = (datetime.datetime.now(datetime.timezone.utc) -
                         datetime.timedelta(seconds=1)).strftime(
        '%Y-%m-%dT%H:%M:%S')
    yield _start
    for process in started:
        process.kill()
    for process in started:
        if 'Traceback' in process.log():
            print('---- %s log ----\n%s' % (process.name,
                                             process.log()[-6000:]))


@pytest.fixture
def api(managers):
    """The controller's client, on this test's broker vhost."""
    cfg.CONF([], project='volume-pool-functional')
    transport = rpcapi.get_transport(cfg.CONF, url=managers.transport_url)
    yield rpcapi.VolumePoolAPI(transport, timeout=60)
    transport.cleanup()
    # Parsed, CONF would refuse the command-line options that the next
    # test's first parse registers (oslo.log's, once per process).
    cfg.CONF.reset()


def pytest_sessionfinish(session, exitstatus):
    """tox runs the suite twice, split by the ``serial`` marker: a run
    asked for one test leaves nothing to the other half, which is not a
    failure."""
    if (exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and
            session.config.getoption('markexpr')):
        session.exitstatus = pytest.ExitCode.OK

