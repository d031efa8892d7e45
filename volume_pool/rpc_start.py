"""Start the manager's RPC servers without holding up the rest.

oslo.messaging's ``RPCServer.start()`` opens its broker connection and,
with the broker away, tries again forever (at growing intervals, up to
``[oslo_messaging_rabbit] rabbit_interval_max``).  The service starts its
servers on a thread of their own, so that replenish, sync, the heartbeat
and ``/healthcheck`` run meanwhile; the health record says ``rpc`` failed
until they all serve.  A server the broker refused (a login it does not
accept) is made again and started after a pause, so that fixing the
broker's users is enough.  A stop that comes first leaves a server still
starting alone: oslo.messaging's ``stop()`` would wait for its start.
"""

import threading

from oslo_log import log as logging

from volume_pool import exception

LOG = logging.getLogger(__name__)

# Seconds before a server whose start failed is made and started again.
RETRY_PAUSE = 10.0


class BackgroundStart:
    """Make and start servers, in order, on one daemon thread.

    ``makers``: (name, callable that returns a new server) pairs;
    ``on_serving``: called once every server has started.
    """

    def __init__(self, makers, on_serving, retry_pause=RETRY_PAUSE):
        self._makers = list(makers)
        self._on_serving = on_serving
        self._retry_pause = retry_pause
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._started = []
        self.serving = threading.Event()

    def start(self):
        threading.Thread(target=self._run, name='rpc-start',
                         daemon=True).start()

    def wait(self, timeout):
        """True once every server serves; False after ``timeout`` s."""
        return self.serving.wait(timeout)

    def _run(self):
        for name, make in self._makers:
            server = self._start_one(name, make)
            if server is None:
                return
            with self._lock:
                late = self._stopping.is_set()
                if not late:
                    self._started.append(server)
            if late:
                # The service stopped while this one started: nobody
                # else knows it exists.
                _stop_and_wait(name, server)
                return
        LOG.info('RPC servers started: %s',
                 ', '.join(name for name, _make in self._makers))
        self.serving.set()
        self._on_serving()

    def _start_one(self, name, make):
        """A started server, or None if the service stops first."""
        while not self._stopping.is_set():
            server = make()
            try:
                server.start()
            except Exception as exc:
                LOG.error('RPC server %(name)s could not start, trying '
                          'again in %(pause)s s: %(error)s',
                          {'name': name, 'pause': self._retry_pause,
                           'error': '%s: %s' % (exc.__class__.__name__,
                                                exception.first_line(exc))})
                self._stopping.wait(self._retry_pause)
                continue
            return server
        return None

    def stop(self):
        """No more starts; returns the servers that did start, for the
        caller to stop and wait for."""
        with self._lock:
            self._stopping.set()
            return list(self._started)


def _stop_and_wait(name, server):
    try:
        server.stop()
        server.wait()
    except Exception:
        LOG.exception('Stopping RPC server %s failed', name)
