"""Graceful stop of a manager: refuse new work, let running claims finish.

A claim cut off half-way is settled by sync only once the manager counts as
gone (service_down_time); letting the running ones finish hands their
volumes out now.
"""

import contextlib
import threading

from oslo_log import log as logging

LOG = logging.getLogger(__name__)


class GracefulStop:
    """Whether the manager is stopping, and how many claims still run."""

    def __init__(self):
        self._stopping = threading.Event()
        self._running = 0
        self._cond = threading.Condition()

    @property
    def stopping(self):
        return self._stopping.is_set()

    def begin(self):
        """Refuse new work from now on."""
        self._stopping.set()

    @contextlib.contextmanager
    def claim_running(self):
        """Count a claim in flight, so that :meth:`wait` waits for it."""
        with self._cond:
            self._running += 1
        try:
            yield
        finally:
            with self._cond:
                self._running -= 1
                self._cond.notify_all()

    def wait(self, timeout):
        """Wait, at most ``timeout`` seconds, for the claims in flight;
        False if some still run."""
        with self._cond:
            done = self._cond.wait_for(lambda: self._running == 0,
                                       timeout=timeout)
            running = self._running
        if not done:
            LOG.warning('%d claims still running after %ss.', running,
                        timeout)
        return done
