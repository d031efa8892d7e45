"""volume-pool-status upgrade check, run as the operator runs it: its
console script's ``main(argv)`` on SQLite and a Redis in this process
here; the installed script on MariaDB, PostgreSQL and Redis when the
functional layer re-collects these tests.  The Cinder is the simulator."""

import json

import pytest
import tooz

from volume_pool.cmd import status as status_cmd
from volume_pool.db import api as db_api
from volume_pool.db import managers as db_managers
from volume_pool.db import migration
from volume_pool.fixtures import waiting
from volume_pool.tests import conftest
from volume_pool.tests import services
from volume_pool.tests.conftest import cinder_section

# The functional layer runs these again on the real services.
pytestmark = pytest.mark.recollect

SUCCESS, WARNING, FAILURE = 0, 1, 2


@pytest.fixture
def db_url(db_backend, tmp_path):
    """A throw-away database, never synced."""
    with services.provisioned_database(db_backend, tmp_path) as url:
        yield url


@pytest.fixture
def status(tmp_path, simulator, db_url, console, coordination_url):
    snapshot = simulator.add_snapshot(size=1)
    conf_path = tmp_path / 'volume-pool.conf'

    def _write(snapshot_id=snapshot, backend_url=coordination_url,
               cinder=None):
        conf_path.write_text(
            '[database]\nconnection = %s\n'
            '[volume_pool]\nenabled_pools = debian\n%s'
            '[pool:debian]\nsnapshot_id = %s\ntarget = 2\n'
            '[coordination]\nbackend_url = %s\n'
            % (db_url, cinder or cinder_section(simulator), snapshot_id,
               backend_url))

    def _run(*extra):
        result = console('volume-pool-status', '--config-file',
                         str(conf_path), 'upgrade', 'check', '--json',
                         *extra)
        assert 'Traceback' not in result.stdout + result.stderr, result
        report = json.loads(result.stdout)
        return result.returncode, {c['check']: c for c in report['checks']}

    def _sync(revision='head'):
        result = console('volume-pool-manage', '--config-file',
                         str(conf_path), 'db', 'sync', '--revision',
                         revision)
        assert result.returncode == 0, result.stderr

    _write()
    _run.write, _run.sync, _run.conf_path = _write, _sync, conf_path
    return _run


def test_a_good_setup_passes(status):
    status.sync()
    code, checks = status()
    assert code == SUCCESS, checks
    assert {c['result'] for c in checks.values()} == {SUCCESS}
    assert set(checks) == {'Database schema', 'Cinder credentials',
                           'Pool snapshots', 'Coordination backend',
                           'Removed pools', 'Stranded clusters',
                           'Managers sharing a cluster'}


def test_table_output_names_every_check(status, console):
    status.sync()
    result = console('volume-pool-status', '--config-file',
                     str(status.conf_path), 'upgrade', 'check')
    assert result.returncode == SUCCESS, result.stdout
    for name in ('Database schema', 'Pool snapshots', 'Result: Success'):
        assert name in result.stdout


def test_a_database_never_synced_fails(status):
    code, checks = status()
    assert code == FAILURE
    check = checks['Database schema']
    assert check['result'] == FAILURE
    assert 'no schema' in check['details']
    assert checks['Pool snapshots']['result'] == SUCCESS


def test_an_old_database_fails(status):
    revisions = _revisions()
    if len(revisions) < 2:
        # One revision only: "older" is the empty schema alembic starts
        # from, which the never-synced test covers; check the message
        # names the head so an operator knows the target.
        code, checks = status()
        assert code == FAILURE
        assert migration.head() in checks['Database schema']['details']
        return
    status.sync(revisions[-2])
    code, checks = status()
    assert code == FAILURE
    details = checks['Database schema']['details']
    assert revisions[-2] in details and migration.head() in details


def _revisions():
    from alembic import config as alembic_config
    from alembic import script as alembic_script
    cfg = alembic_config.Config()
    cfg.set_main_option('script_location', migration._MIGRATIONS_DIR)
    scripts = alembic_script.ScriptDirectory.from_config(cfg)
    return [s.revision for s in reversed(list(scripts.walk_revisions()))]


def test_a_missing_snapshot_fails(status, simulator):
    status.sync()
    snapshot = simulator.add_snapshot(size=1)
    status.write(snapshot_id=snapshot)
    assert status()[0] == SUCCESS
    simulator.delete_snapshot(snapshot)
    code, checks = status()
    assert code == FAILURE
    check = checks['Pool snapshots']
    assert check['result'] == FAILURE
    assert 'does not exist' in check['details']
    assert checks['Database schema']['result'] == SUCCESS


def test_a_snapshot_not_available_fails(status, simulator):
    status.sync()
    snapshot = simulator.add_snapshot(size=1, status='error')
    status.write(snapshot_id=snapshot)
    code, checks = status()
    assert code == FAILURE
    assert 'is error, not available' in checks['Pool snapshots']['details']


def test_unreachable_cinder_fails(status):
    status.sync()
    status.write(cinder='[cinder]\nauth_type = noauth\n'
                        'endpoint = http://127.0.0.1:%d/v3\n'
                        'project_id = p\nuser_id = u\ntimeout = 5\n'
                 % waiting.free_port())
    code, checks = status()
    assert code == FAILURE
    assert checks['Cinder credentials']['result'] == FAILURE
    assert 'do not work' in checks['Cinder credentials']['details']


def test_unreachable_coordination_fails(status):
    status.sync()
    status.write(backend_url='redis://127.0.0.1:%d' % waiting.free_port())
    code, checks = status()
    assert code == FAILURE
    check = checks['Coordination backend']
    assert check['result'] == FAILURE
    assert 'unreachable' in check['details'] or 'answer' in check['details']
    assert checks['Pool snapshots']['result'] == SUCCESS


def test_a_cluster_nobody_serves_warns(status, db_url, monkeypatch):
    status.sync()
    conftest.use_database(db_url, monkeypatch)
    for request_id, cluster in (('r1', 'old'), ('r2', 'old'),
                                ('r3', 'served'), ('r4', None)):
        db_api.create_volume_row(
            request_id=request_id, pool='debian', cluster=cluster,
            snapshot_id='s', size=1, name=request_id, host='h',
            status='available')
    db_managers.register('h1', 'served', 'inc-1')
    code, checks = status()
    assert code == WARNING, checks
    check = checks['Stranded clusters']
    assert check['result'] == WARNING
    assert check['details'] == (
        'Cluster "old" has 2 volumes in the table (2 available) and no live '
        'manager: "volume-pool-manage cluster adopt old" or "cluster drain '
        'old".')
    assert checks['Managers sharing a cluster']['result'] == SUCCESS


def test_a_removed_pool_with_volumes_warns(status, db_url, monkeypatch):
    status.sync()
    conftest.use_database(db_url, monkeypatch)
    for request_id, pool in (('r1', 'debian'), ('r2', 'windows'),
                             ('r3', 'windows')):
        db_api.create_volume_row(
            request_id=request_id, pool=pool, cluster=None,
            snapshot_id='s', size=1, name=request_id, host='h',
            status='available')
    code, checks = status()
    assert code == WARNING, checks
    assert checks['Removed pools'] == {
        'check': 'Removed pools', 'result': WARNING,
        'details': 'Pool windows is not in [volume_pool] enabled_pools and '
                   'still holds 2 volumes: they are kept until '
                   '"volume-pool-manage pool drain windows" (or put it '
                   'back).'}


def test_managers_sharing_a_cluster_without_coordination_warn(
        status, db_url, monkeypatch):
    status.sync()
    status.write(backend_url='')
    conftest.use_database(db_url, monkeypatch)
    db_managers.register('h1', None, 'inc-1')
    assert status()[0] == SUCCESS
    db_managers.register('h2', None, 'inc-2')
    code, checks = status()
    assert code == WARNING, checks
    check = checks['Managers sharing a cluster']
    assert check['result'] == WARNING
    assert check['details'].startswith(
        '2 managers share cluster default without [coordination] '
        'backend_url')
    assert checks['Stranded clusters']['result'] == SUCCESS


def test_help_explains_the_command(console):
    result = console('volume-pool-status', '--help')
    assert result.returncode == 0
    assert 'upgrade' in result.stdout


def test_a_newer_database_warns_and_the_manager_runs_on_it(
        status, db_url, monkeypatch):
    """A rolling upgrade: a newer release ran db sync; this code's checks
    warn, and its manager's start-up check lets it run on that schema;
    an older schema is still refused."""
    from oslo_db.sqlalchemy import enginefacade
    import sqlalchemy as sa

    from volume_pool import exception
    from volume_pool import service
    from volume_pool.db import api as db_api

    def set_revision(revision):
        engine = sa.create_engine(db_url)
        try:
            with engine.begin() as conn:
                conn.execute(sa.text('UPDATE alembic_version SET '
                                     'version_num = :rev'), {'rev': revision})
        finally:
            engine.dispose()

    status.sync()
    set_revision('f0f0f0f0f0f0')
    code, checks = status()
    assert code == WARNING
    details = checks['Database schema']['details']
    assert 'f0f0f0f0f0f0' in details and 'newer' in details
    context_manager = enginefacade.transaction_context()
    context_manager.configure(connection=db_url)
    monkeypatch.setattr(db_api, 'context_manager', context_manager)
    try:
        service.check_schema()  # runs on the newer schema
        set_revision(_revisions()[0])
        with pytest.raises(exception.ConfigError, match='db sync'):
            service.check_schema()
    finally:
        context_manager.dispose_pool()


class _Coordinator:
    def __init__(self, error):
        self._error = error
        self.stopped = False

    def start(self):
        raise self._error

    def stop(self):
        self.stopped = True


@pytest.mark.parametrize('error, logged', [
    (tooz.ToozError('refused'), False),
    (TypeError('a bug'), True),
])
def test_the_coordination_probe_fails_in_one_line_and_logs_a_bug(
        monkeypatch, caplog, error, logged):
    monkeypatch.setattr(status_cmd.tooz_coordination, 'get_coordinator',
                        lambda url, member: _Coordinator(error))
    outcome = {}
    status_cmd._probe_coordination('redis://nowhere', 'h1', outcome)
    assert outcome == {'error': '%s: %s' % (error.__class__.__name__,
                                            error)}
    tracebacks = [r.exc_info[0] for r in caplog.records if r.exc_info]
    assert tracebacks == ([TypeError] if logged else [])
