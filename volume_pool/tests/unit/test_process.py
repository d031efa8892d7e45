"""volume-pool-manager as a real process: console script, config file,
RabbitMQ, SIGHUP and SIGTERM.  The Cinder is the simulator."""

import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest

from volume_pool import context as vp_context
from volume_pool import rpcapi
from volume_pool.tests import services
from volume_pool.tests.conftest import cinder_section

BIN = os.path.dirname(sys.executable)


def console_script(name):
    path = os.path.join(BIN, name)
    assert os.path.exists(path), '%s is not installed next to %s' % (
        name, sys.executable)
    return path


@contextlib.contextmanager
def started_manager(conf_path, log_path):
    """``db sync``, then a volume-pool-manager process logging to
    ``log_path``; killed on the way out if it is still running."""
    subprocess.run([console_script('volume-pool-manage'),
                    '--config-file', str(conf_path), 'db', 'sync'],
                   check=True, capture_output=True, timeout=60)
    with open(log_path, 'w') as log:
        proc = subprocess.Popen(
            [console_script('volume-pool-manager'),
             '--config-file', str(conf_path)],
            stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _config(tmp_path, simulator, transport_url, snapshot, target,
            **volume_pool_opts):
    options = {'enabled_pools': 'debian', 'replenish_interval': 1,
               'sync_interval': 600, 'create_poll_interval': 0.05,
               'periodic_fuzzy_delay': 0}
    options.update(volume_pool_opts)
    return ('[DEFAULT]\nhost = proc-test\ntransport_url = %s\n'
            'debug = true\ngraceful_shutdown_timeout = 20\n'
            'default_log_levels = oslo_service.periodic_task=DEBUG,'
            'amqp=WARN,oslo.messaging=INFO,keystoneauth=WARN\n'
            '[database]\nconnection = sqlite:///%s/pool.sqlite\n'
            '[volume_pool]\n%s\n%s'
            '[pool:debian]\nsnapshot_id = %s\ntarget = %d\n'
            % (transport_url, tmp_path,
               '\n'.join('%s = %s' % kv for kv in options.items()),
               cinder_section(simulator), snapshot, target))


def test_spacing_comes_from_the_config_file(tmp_path):
    """nova reads spacing=CONF.x at import: the file's value must win."""
    path = tmp_path / 'spacing.conf'
    path.write_text('[volume_pool]\nreplenish_interval = 7\n'
                    'sync_interval = 13\n'
                    '[coordination]\nrefresh_interval = 17\n')
    code = ('import volume_pool.cmd, sys\n'
            'from volume_pool import config\n'
            'config.parse_args(["--config-file", sys.argv[1]])\n'
            'from volume_pool import manager\n'
            'print(sorted(manager.Manager._periodic_spacing.items()))\n')
    out = subprocess.run([sys.executable, '-c', code, str(path)],
                         capture_output=True, text=True, timeout=60,
                         check=True).stdout
    assert out.strip() == ("[('refresh_membership', 17), ('replenish', 7), "
                           "('sync', 13)]")


def test_manager_process_serves_reloads_and_stops_on_sigterm(
        tmp_path, simulator, conf):
    snapshot = simulator.add_snapshot(size=1)
    with services.rabbit_vhost() as transport_url:
        conf_path = tmp_path / 'volume-pool.conf'
        conf_path.write_text(_config(tmp_path, simulator, transport_url,
                                     snapshot, target=2))
        log_path = tmp_path / 'manager.log'
        with started_manager(conf_path, log_path) as proc:
            _exercise(proc, conf, conf_path, simulator)
        output = log_path.read_text()
    assert proc.returncode == 0, output[-3000:]
    assert 'Traceback' not in output, output[-3000:]
    assert 'volume-pool-manager stopped' in output
    # Spacing from the file: replenish every second, sync only once.
    assert output.count('Running periodic task Manager.replenish') >= 3
    assert output.count('Running periodic task Manager.sync') == 1


def _exercise(proc, conf, conf_path, simulator):
    conf(['--config-file', str(conf_path)], project='volume-pool')
    transport = rpcapi.get_transport(conf)
    try:
        api = rpcapi.VolumePoolAPI(transport, timeout=20)
        ctxt = vp_context.RequestContext()
        _wait_pool(api, ctxt, proc, ready=2)
        claimed = api.claim(ctxt, 'debian', name='vnf-proc')
        assert claimed['source'] == 'pool'
        assert simulator.get_volume(claimed['volume_id'])['name'] == \
            'vnf-proc'
        # SIGHUP: a new target is picked up without a restart.
        conf_path.write_text(conf_path.read_text().replace(
            'target = 2', 'target = 4'))
        proc.send_signal(signal.SIGHUP)
        status = _wait_pool(api, ctxt, proc, ready=4)
        assert status['target'] == 4
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        transport.cleanup()


def _wait_pool(api, ctxt, proc, ready, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail('volume-pool-manager exited with %s'
                        % proc.returncode)
        try:
            status = api.pool_status(ctxt, timeout=5)[0]
        except Exception:  # not listening yet
            time.sleep(0.2)
            continue
        if status['ready'] >= ready:
            return status
        time.sleep(0.2)
    raise AssertionError('pool did not reach %d ready volumes' % ready)


@pytest.mark.parametrize('body, needle', [
    ('[volume_pool]\nenabled_pools = debian\n[pool:debian]\ntarget = 1\n'
     '[cinder]\nauth_type = noauth\n',
     '[pool:debian] snapshot_id is required'),
    ('[volume_pool]\nenabled_pools = debian\n[pool:debian]\n'
     'snapshot_id = 6f1c1a3e-0d8e-4c54-9a43-8f0a3a2f7e11\n',
     '[cinder] auth_type is required'),
    ('[volume_pool]\nenabled_pools = debian\n[pool:debian]\n'
     'snapshot_id = 6f1c1a3e-0d8e-4c54-9a43-8f0a3a2f7e11\n'
     '[cinder]\nauth_type = noauth\n',
     '[cinder] Auth plugin requires parameters which were not given'),
    ('[volume_pool]\nenabled_pools = debian\n[pool:debian]\n'
     'snapshot_id = 6f1c1a3e-0d8e-4c54-9a43-8f0a3a2f7e11\n'
     '[cinder]\nauth_type = noauth\nendpoint = http://127.0.0.1:9/v3\n'
     'project_id = p\nuser_id = u\nconnection_pool_size = 0\n',
     'connection_pool_size'),
])
def test_bad_config_stops_start_up_with_one_line(tmp_path, body, needle):
    path = tmp_path / 'bad.conf'
    path.write_text('[database]\nconnection = sqlite:///%s/x.sqlite\n%s'
                    % (tmp_path, body))
    result = subprocess.run([console_script('volume-pool-manager'),
                             '--config-file', str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert needle in lines[0]


def test_missing_config_file_is_one_line(tmp_path):
    missing = str(tmp_path / 'nowhere.conf')
    result = subprocess.run([console_script('volume-pool-manager'),
                             '--config-file', missing],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        'volume-pool-manager: Configuration error: Failed to find some '
        'config files: %s' % missing]


GOOD_START = ('[volume_pool]\nenabled_pools = debian\n[pool:debian]\n'
              'snapshot_id = 6f1c1a3e-0d8e-4c54-9a43-8f0a3a2f7e11\n'
              '[cinder]\nauth_type = noauth\n'
              'endpoint = http://127.0.0.1:9/v3\nproject_id = p\n'
              'user_id = u\n')


def _run_with(tmp_path, messaging_conf, *command):
    """Run ``command`` on a config that is good but for ``messaging_conf``
    (the database is never synced: the URL must fail first)."""
    path = tmp_path / 'bad-url.conf'
    path.write_text('%s\n[database]\nconnection = sqlite:///%s/x.sqlite\n%s'
                    % (messaging_conf, tmp_path, GOOD_START))
    return subprocess.run([console_script(command[0]), '--config-file',
                           str(path), *command[1:]],
                          capture_output=True, text=True, timeout=60)


def _one_line(result, needle):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert needle in lines[0]
    return lines[0]


@pytest.mark.parametrize('url, reason', [
    ('foo://x', 'no oslo.messaging driver for "foo://"'),
    ('rabbit://h:notaport/', "'notaport'"),
    ('garbage', 'No scheme specified'),
    ('rabbit://[::1/', 'Invalid IPv6 URL'),
    ('rabbit://h/?no_such_option=1', 'no_such_option'),
])
def test_bad_transport_url_stops_start_up_with_one_line(tmp_path, url,
                                                        reason):
    result = _run_with(tmp_path, '[DEFAULT]\ntransport_url = %s' % url,
                       'volume-pool-manager')
    line = _one_line(result, 'volume-pool-manager: Configuration error: '
                             '[DEFAULT] transport_url: ')
    assert reason in line


def test_bad_notification_url_names_its_own_option(tmp_path):
    result = _run_with(tmp_path, '[DEFAULT]\ntransport_url = fake://\n'
                       '[oslo_messaging_notifications]\n'
                       'transport_url = garbage', 'volume-pool-manager')
    _one_line(result, '[oslo_messaging_notifications] transport_url: ')


def test_bad_transport_url_never_shows_the_password(tmp_path):
    result = _run_with(tmp_path, '[DEFAULT]\ntransport_url = '
                       'rabbit://guest:s3cret@h:notaport/',
                       'volume-pool-manager')
    line = _one_line(result, '[DEFAULT] transport_url')
    assert 's3cret' not in line


@pytest.mark.parametrize('command', [
    ('claim', 'take', 'debian'),
    ('pool', 'refill', 'debian'),
    ('pool', 'list'),
])
@pytest.mark.parametrize('url', ['foo://x', 'rabbit://h:notaport/'])
def test_manage_bad_transport_url_is_one_line(tmp_path, command, url):
    result = _run_with(tmp_path, '[DEFAULT]\ntransport_url = %s' % url,
                       'volume-pool-manage', *command)
    _one_line(result, 'volume-pool-manage: Configuration error: '
                      '[DEFAULT] transport_url: ')
