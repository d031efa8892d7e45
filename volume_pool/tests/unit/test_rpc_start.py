"""The manager's RPC servers start in the background: a start that waits
for the broker holds up nothing, a refused one is made again, and a stop
never waits for a start."""

import threading

from volume_pool import rpc_start


class _Server:
    def __init__(self, gate=None, error=None):
        self.gate, self.error = gate, error
        self.calls = []

    def start(self):
        self.calls.append('start')
        if self.gate is not None:
            self.gate.wait(10)
        if self.error is not None:
            raise self.error

    def stop(self):
        self.calls.append('stop')

    def wait(self):
        self.calls.append('wait')


def test_a_start_waiting_for_the_broker_blocks_nobody_then_serves():
    gate = threading.Event()
    server = _Server(gate)
    serving = threading.Event()
    starter = rpc_start.BackgroundStart([('api', lambda: server)],
                                        on_serving=serving.set)
    starter.start()
    assert not starter.wait(0.1)
    gate.set()
    assert starter.wait(5) and serving.wait(5)
    assert starter.stop() == [server]


def test_a_refused_start_is_tried_again_on_a_new_server():
    servers = [_Server(error=PermissionError('403')), _Server()]
    made = list(servers)
    starter = rpc_start.BackgroundStart(
        [('api', lambda: made.pop(0))], on_serving=lambda: None,
        retry_pause=0.01)
    starter.start()
    assert starter.wait(5)
    assert starter.stop() == [servers[1]]
    assert servers[0].calls == ['start']


def test_a_stop_during_a_start_leaves_it_and_it_stops_itself():
    gate = threading.Event()
    first, second = _Server(gate), _Server()
    makers = [('api', lambda: first), ('host', lambda: second)]
    starter = rpc_start.BackgroundStart(makers, on_serving=lambda: None)
    starter.start()
    assert starter.stop() == []  # nothing started: nothing to wait for
    gate.set()
    for _ in range(100):
        if first.calls[-1:] == ['wait']:
            break
        threading.Event().wait(0.05)
    assert first.calls == ['start', 'stop', 'wait']
    assert second.calls == []
    assert not starter.serving.is_set()
