"""Group commit: concurrent callers' small writes share one transaction.

Under load, claims arrive together, and each would otherwise run its own
short transaction: a pooled connection checked out and pinged, a round trip
per statement, a commit, a rollback on return.  Here the first caller to
arrive leads: it takes every request waiting (up to ``max_batch``), runs
them as one batch and hands each caller its own result.  Callers that
arrive meanwhile wait and form the next batch, led by the oldest of them.
A caller alone runs a batch of one at once: no timer, no added latency.
Every wait is bounded: a caller still queued after ``wait_timeout`` leaves
the queue with :class:`BatchTimeout`; one whose batch is running waits for
it at most that long again (the batch itself is bounded by the database's
timeouts).
"""

import threading


class BatchTimeout(Exception):
    """The batch did not run in time (the database is stalled)."""


class Failed:
    """A result of ``run_batch`` that is an error for its caller alone:
    the rest of the batch keeps its results."""

    __slots__ = ('error',)

    def __init__(self, error):
        self.error = error


class _Request:
    __slots__ = ('item', 'result', 'error', 'finished', 'leads', 'wake')

    def __init__(self, item):
        self.item = item
        self.result = None
        self.error = None
        self.finished = False
        self.leads = False
        self.wake = threading.Event()


class GroupCommitter:
    """Runs ``run_batch(items) -> results`` (one result per item, in order)
    for the items of concurrent :meth:`submit` calls, one batch at a time.

    If a batch raises, every caller of that batch gets the exception; a
    result that is :class:`Failed` is raised to its own caller only.
    """

    def __init__(self, run_batch, max_batch=32, wait_timeout=None):
        if max_batch < 1:
            raise ValueError('max_batch must be at least 1')
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._wait_timeout = wait_timeout
        self._lock = threading.Lock()
        self._queue = []
        self._busy = False

    def submit(self, item):
        """Run ``item`` in the next batch; returns its result."""
        request = _Request(item)
        with self._lock:
            self._queue.append(request)
            request.leads = not self._busy
            self._busy = True
        if not request.leads:
            self._wait(request)
        if not request.finished:
            # Leading: this request heads the queue, so the batch holds it.
            self._lead()
        if request.error is not None:
            raise request.error
        return request.result

    def _wait(self, request):
        if request.wake.wait(self._wait_timeout):
            return
        with self._lock:
            if request in self._queue and not request.leads:
                self._queue.remove(request)
                raise BatchTimeout('waited %ss for a batch' %
                                   self._wait_timeout)
        # In a running batch, or just chosen to lead: wait once more.
        if not request.wake.wait(self._wait_timeout):
            raise BatchTimeout('batch still running after %ss'
                               % (2 * self._wait_timeout))

    def _lead(self):
        with self._lock:
            batch = self._queue[:self._max_batch]
            del self._queue[:self._max_batch]
        try:
            results = self._run_batch([request.item for request in batch])
            if len(results) != len(batch):
                raise RuntimeError('batch of %d gave %d results'
                                   % (len(batch), len(results)))
            for request, result in zip(batch, results, strict=True):
                if isinstance(result, Failed):
                    request.error = result.error
                else:
                    request.result = result
        except BaseException as exc:
            for request in batch:
                request.error = exc
            if not isinstance(exc, Exception):
                raise
        finally:
            with self._lock:
                successor = self._queue[0] if self._queue else None
                if successor is None:
                    self._busy = False
                else:
                    successor.leads = True
            for request in batch:
                request.finished = True
                request.wake.set()
            if successor is not None:
                successor.wake.set()
