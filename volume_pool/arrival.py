"""When an RPC call reached this manager process.

oslo.messaging's threading executor reads each message in its listener
thread and hands it to a pool of workers; under load the message waits in
the pool's queue before a worker runs it.  The caller's time runs all the
while, so a claim must count that wait against the ``time_left`` it was
sent with, or it could finish after its caller gave up.

:class:`ArrivalStampingServer` (given to ``get_rpc_server`` through its
public ``server_cls`` argument) stamps each message, on the monotonic
clock, in the listener thread as it hands the message to the executor,
and makes the stamp the worker's :func:`queued_seconds` while it runs the
call.  Only this process's clock is read: no clock skew between the
caller and the manager can lengthen a claim.  Should a newer
oslo.messaging no longer pass its messages through the two hooks used
here, a call simply has no stamp and its time is counted from when a
worker picks it up, as before.
"""

import threading
import time

from oslo_messaging.rpc import server as rpc_server

# The clock of the stamps (tests move it).
arrival_clock = time.monotonic

_STAMP = 'volume_pool_arrived_at'
_running = threading.local()


def queued_seconds():
    """Seconds since the call this worker runs reached the process; 0.0
    outside a stamped call."""
    arrived = getattr(_running, 'arrived_at', None)
    if arrived is None:
        return 0.0
    return max(0.0, time.monotonic() - arrived)


class ArrivalStampingServer(rpc_server.RPCServer):
    """An RPC server whose calls know how long they waited for a worker."""

    def _on_incoming(self, incoming):
        # The listener thread: the message has just been read.
        stamp = arrival_clock()
        for message in incoming:
            try:
                setattr(message, _STAMP, stamp)
            except AttributeError:
                pass  # a driver's message without a __dict__: no stamp
        return super()._on_incoming(incoming)

    def _process_incoming(self, incoming):
        # A worker thread: the stamp is the call's for as long as it runs.
        _running.arrived_at = getattr(incoming[0], _STAMP, None)
        try:
            return super()._process_incoming(incoming)
        finally:
            _running.arrived_at = None
