"""What an operator reads from a running volume-pool-manager: Guru
Meditation Reports (file trigger and SIGUSR2) and request ids in the log.

A real manager process from its console script, on a RabbitMQ vhost of its
own, with the Cinder simulator.
"""

import signal

from oslo_utils import uuidutils

from volume_pool import context as vp_context
from volume_pool import rpcapi
from volume_pool.fixtures import waiting
from volume_pool.tests import services
from volume_pool.tests.functional import test_process

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
            waiting.wait_for(lambda: _reports(log_path) >= 1, timeout=20,
                             what='a report after touching the file')
            proc.send_signal(signal.SIGUSR2)  # and the signal
            waiting.wait_for(lambda: _reports(log_path) >= 2, timeout=20,
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
        waiting.pool_ready(api, 'debian', 1, ctxt=ctxt, timeout=30,
                           alive=lambda: proc.poll() is None)
        assert api.claim(ctxt, 'debian')['source'] == 'pool'
    finally:
        transport.cleanup()
