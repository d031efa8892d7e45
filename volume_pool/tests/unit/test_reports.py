"""What an operator reads from a running volume-pool-manager: Guru
Meditation Reports (file trigger and SIGUSR2) and request ids in the log.

A real manager process from its console script, on a RabbitMQ vhost of its
own, with the Cinder simulator.
"""

import signal
import subprocess
import types

from oslo_utils import uuidutils

from volume_pool import context as vp_context
from volume_pool import exception
from volume_pool import rpcapi
from volume_pool.cmd import manager as manager_cmd
from volume_pool.tests import helpers
from volume_pool.tests import services
from volume_pool.tests.unit import test_process
from volume_pool.tests.unit.test_process import console_script

REPORT_SECTIONS = ('Threads', 'Configuration', 'Pool State')


def _reports(log_path):
    return log_path.read_text().count('Guru Meditation')


def test_reports_and_request_ids_of_a_running_manager(tmp_path, simulator,
                                                      conf):
    snapshot = simulator.add_snapshot(size=1)
    trigger = tmp_path / 'gmr-trigger'
    trigger.write_text('')
    with services.rabbit_vhost() as transport_url:
        conf_path = tmp_path / 'volume-pool.conf'
        conf_path.write_text(
            test_process._config(tmp_path, simulator, transport_url,
                                 snapshot, target=1) +
            '[oslo_reports]\nfile_event_handler = %s\n'
            'file_event_handler_interval = 1\n' % trigger)
        log_path = tmp_path / 'manager.log'
        with test_process.started_manager(conf_path, log_path) as proc:
            request_id = 'req-' + uuidutils.generate_uuid()
            _claim(conf, conf_path, proc, request_id)

            trigger.touch()  # the file trigger
            helpers.wait_for(lambda: _reports(log_path) >= 1, timeout=20,
                             what='a report after touching the file')
            proc.send_signal(signal.SIGUSR2)  # and the signal
            helpers.wait_for(lambda: _reports(log_path) >= 2, timeout=20,
                             what='a report after SIGUSR2')
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    output = log_path.read_text()
    assert proc.returncode == 0, output[-3000:]
    report = output[output.index('Guru Meditation'):]
    for section in REPORT_SECTIONS:
        assert section in report, section
    # The pool section is the manager's live view of the pool.
    pool_state = report[report.index('Pool State'):]
    assert 'manager pool_status' in pool_state
    assert 'debian' in pool_state and snapshot in pool_state
    # The claim's INFO line carries the controller's request id.
    claim_lines = [line for line in output.splitlines()
                   if 'Claimed volume' in line]
    assert claim_lines, output[-3000:]
    assert request_id in claim_lines[0]
    assert ' INFO ' in claim_lines[0]


def _claim(conf, conf_path, proc, request_id):
    conf(['--config-file', str(conf_path)], project='volume-pool')
    transport = rpcapi.get_transport(conf)
    try:
        api = rpcapi.VolumePoolAPI(transport, timeout=20)
        ctxt = vp_context.RequestContext(request_id=request_id,
                                         overwrite=False)
        test_process._wait_pool(api, ctxt, proc, ready=1)
        assert api.claim(ctxt, 'debian')['source'] == 'pool'
    finally:
        transport.cleanup()


def test_a_missing_report_trigger_file_is_one_clear_line(tmp_path,
                                                        simulator):
    snapshot = simulator.add_snapshot(size=1)
    conf_path = tmp_path / 'volume-pool.conf'
    conf_path.write_text(
        test_process._config(tmp_path, simulator, 'fake:///', snapshot,
                             target=1) +
        '[oslo_reports]\nfile_event_handler = %s\n'
        % (tmp_path / 'no-such-file'))
    result = subprocess.run([console_script('volume-pool-manager'),
                             '--config-file', str(conf_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert '[oslo_reports] file_event_handler' in lines[0]



def _pool_state(error):
    def pool_status(ctxt):
        raise error
    server = types.SimpleNamespace(
        manager=types.SimpleNamespace(pool_status=pool_status))
    return manager_cmd.pool_state_section(server)().data


def test_pool_state_says_why_it_is_unavailable(caplog):
    state = _pool_state(exception.DatabaseUnavailable(reason='gone'))
    assert state == {'source': 'unavailable', 'error':
                     'The volume pool database is unavailable: gone'}
    assert caplog.records == []


def test_a_bug_in_the_pool_state_is_logged_with_its_traceback(caplog):
    assert _pool_state(TypeError('a bug')) == {
        'source': 'unavailable', 'error': 'a bug'}
    [record] = caplog.records
    assert record.exc_info[0] is TypeError
