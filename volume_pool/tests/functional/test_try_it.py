"""What the rpcapi page tells a controller's author to run, as written:
``volume-pool-demo --serve`` in one process, the page's controller
example (doc/source/examples/controller.py) in another, over RabbitMQ."""

import os
import signal
import subprocess
import sys
import time

from volume_pool.tests import console as vp_console

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..',
                                   '..'))
EXAMPLE = os.path.join(TOP, 'doc', 'source', 'examples', 'controller.py')
READY = 'Stop with Ctrl-C.'


def _wait_for(path, text, proc, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path) as out:
            if text in out.read():
                return
        assert proc.poll() is None, 'the demo exited early'
        time.sleep(0.2)
    raise AssertionError('%r not printed within %ss' % (text, timeout))


def test_the_controller_example_runs_against_the_served_demo(
        tmp_path, transport_url):
    out_path = tmp_path / 'serve.out'
    with open(out_path, 'w') as out:
        demo = subprocess.Popen(
            [vp_console.console_script('volume-pool-demo'), '--serve',
             '--transport-url', transport_url, '--creation-delay', '0.2',
             '--state-dir', str(tmp_path / 'state')],
            stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_for(out_path, READY, demo)
        example = subprocess.run(
            [sys.executable, EXAMPLE, '--transport-url', transport_url],
            capture_output=True, text=True, timeout=180)
    finally:
        demo.send_signal(signal.SIGTERM)
        code = demo.wait(timeout=60)
    served = out_path.read_text()
    assert example.returncode == 0, example.stdout + example.stderr
    assert example.stderr == ''
    for line in ('same volume: True', 'released: state released',
                 "PoolNotFound: Unknown pool 'no-such-pool'",
                 'ClaimKeyConflict: ', 'ClaimReleased: '):
        assert line in example.stdout, example.stdout
    assert 'transport_url = %s' % transport_url in served
    assert code == 0, served
    assert 'WARNING' not in served and 'Traceback' not in served, served
