"""Events go out on a thread of their own, off the work that makes them.

A claim, a replenish or a sync puts its event in a bounded queue and goes
on; one sender thread per process sends them in order.  A send that
fails on its connection reconnects once (to the next host of a
multi-host transport URL: a RabbitMQ cluster that lost a node still
takes the event), then the event is logged and dropped.  A broker that
is away therefore costs the work nothing, and a full queue (the broker
away for long) drops the newest events with a warning, never blocks.
"""

import queue
import threading

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

# Events waiting to be sent, at most; beyond, new ones are dropped.
QUEUE_SIZE = 10000
# One reconnect per send: to the next host of a cluster.
SEND_RETRY = 1


class EventSender:
    """Sends ``send(event_type, payload, publisher_id, context)`` calls of
    ``notifier()`` (None: notifications are off, the event is dropped)
    from a daemon thread, started at the first event."""

    def __init__(self, notifier, size=QUEUE_SIZE):
        self._notifier = notifier
        self._queue = queue.Queue(size)
        self._lock = threading.Lock()
        self._thread = None
        self._dropped = 0

    def send(self, event_type, payload, publisher_id, context):
        self._start()
        try:
            self._queue.put_nowait((event_type, payload, publisher_id,
                                    context))
        except queue.Full:
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 1000 == 0:
                LOG.warning('Dropped notification %(type)s: %(count)d '
                            'events wait to be sent (is the broker '
                            'away?); %(dropped)d dropped so far.',
                            {'type': event_type, 'count': self._queue.qsize(),
                             'dropped': self._dropped})

    def flush(self, timeout):
        """Wait until every queued event was sent (or dropped); False if
        that takes longer than ``timeout`` seconds."""
        done = self._queue.all_tasks_done
        with done:
            return done.wait_for(lambda: not self._queue.unfinished_tasks,
                                 timeout)

    def _start(self):
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name='event-sender', daemon=True)
                self._thread.start()

    def _run(self):
        while True:
            event_type, payload, publisher_id, context = self._queue.get()
            try:
                self._deliver(event_type, payload, publisher_id, context)
            finally:
                self._queue.task_done()

    def _deliver(self, event_type, payload, publisher_id, context):
        notifier = self._notifier()
        if notifier is None:
            return  # notifications turned off meanwhile (the end)
        try:
            notifier.prepare(publisher_id=publisher_id,
                             retry=SEND_RETRY).info(context, event_type,
                                                    payload)
        except Exception:
            # oslo.messaging logs and drops a driver's own failure (a
            # broker away); what gets here is a bug.  Logged with its
            # traceback, and the next event goes on.
            LOG.exception('Could not send notification %s', event_type)
        else:
            LOG.debug('Sent %(type)s: %(payload)s',
                      {'type': event_type, 'payload': payload})
