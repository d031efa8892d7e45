"""What an RPC call costs the server while its method waits.

An RPC server whose one method sleeps for a given time and does nothing
else runs in a process of its own (the manager's RPC stack: oslo.messaging
over RabbitMQ, the threading executor); its CPU per call is read for
several waits.  The empty call is the claim's floor in the benchmark, but
a claim is not instant: oslo.messaging's listener wakes up after 1, 2,
4, ... ms to run pending acknowledgements, so the server's CPU per call
grows with how long a call runs, before the method does any work.
"""

import volume_pool.cmd  # noqa: F401  (first: no eventlet, threading)

# isort: split

import subprocess
import sys
import time

import oslo_messaging as messaging
import psutil

from volume_pool import conf as vp_conf
from volume_pool import context as vp_context
from volume_pool import rpcapi

TOPIC = 'volume-pool-bench-wait'


class _Waiter:
    target = messaging.Target(version='1.0')

    def wait(self, context, seconds):
        time.sleep(seconds)


def _serve(transport_url):
    """The server process: serve ``wait`` until terminated."""
    conf = vp_conf.CONF
    conf([], project='volume-pool', default_config_files=[])
    transport = rpcapi.get_transport(conf, url=transport_url)
    server = messaging.get_rpc_server(
        transport, messaging.Target(topic=TOPIC, server='bench'),
        [_Waiter()])
    server.start()
    sys.stdout.write('serving\n')
    sys.stdout.flush()
    while True:
        time.sleep(3600)


def run(transport, transport_url, waits_ms=(0, 5, 10, 20), calls=200):
    """Server CPU (ms) per call for each wait, one caller at a time."""
    with subprocess.Popen(
            [sys.executable, '-m', 'volume_pool.bench.rpc_wait',
             transport_url], stdout=subprocess.PIPE, text=True) as server:
        try:
            if server.stdout.readline().strip() != 'serving':
                raise RuntimeError('the RPC wait server did not start')
            return [_measure(transport, psutil.Process(server.pid), wait_ms,
                             calls) for wait_ms in waits_ms]
        finally:
            server.terminate()


def _measure(transport, server, wait_ms, calls):
    client = messaging.get_rpc_client(
        transport, messaging.Target(topic=TOPIC, version='1.0'), timeout=30)
    ctxt = vp_context.RequestContext()
    for _ in range(20):  # warm the connections of both sides
        client.call(ctxt, 'wait', seconds=wait_ms / 1000.0)
    before = server.cpu_times()
    started = time.perf_counter()
    for _ in range(calls):
        client.call(ctxt, 'wait', seconds=wait_ms / 1000.0)
    wall = time.perf_counter() - started
    after = server.cpu_times()
    used = (after.user + after.system) - (before.user + before.system)
    return {'wait_ms': wait_ms, 'calls': calls,
            'call_ms': round(wall * 1000.0 / calls, 3),
            'server_cpu_ms': round(used * 1000.0 / calls, 3)}


if __name__ == '__main__':
    _serve(sys.argv[1])
