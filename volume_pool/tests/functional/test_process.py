"""volume-pool-manager as a real process: console script, config file,
RabbitMQ, SIGHUP and SIGTERM.  The Cinder is the simulator."""

import contextlib
import signal
import subprocess
import sys

from volume_pool import context as vp_context
from volume_pool import rpcapi
from volume_pool.fixtures import waiting
from volume_pool.tests import services
from volume_pool.tests.conftest import cinder_section
from volume_pool.tests.console import console_script


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
        waiting.pool_ready(api, 'debian', 2, ctxt=ctxt, timeout=30,
                           alive=lambda: proc.poll() is None)
        claimed = api.claim(ctxt, 'debian', name='vnf-proc')
        assert claimed['source'] == 'pool'
        assert simulator.get_volume(claimed['volume_id'])['name'] == \
            'vnf-proc'
        # SIGHUP: a new target is picked up without a restart.
        conf_path.write_text(conf_path.read_text().replace(
            'target = 2', 'target = 4'))
        proc.send_signal(signal.SIGHUP)
        status = waiting.pool_ready(api, 'debian', 4, ctxt=ctxt, timeout=30,
                                    alive=lambda: proc.poll() is None)
        assert status['target'] == 4
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        transport.cleanup()
