"""How many creates on a miss of a pool run at once in this process."""

import collections
import threading


class MissCreateSlots:
    """The creates on a miss running in this process, per pool.

    Each pool may run ``max_miss_creates`` at once, so a burst of misses
    cannot use up the Cinder quota.  A count, not a semaphore: a reload
    may change the cap while creates run.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._running = collections.Counter()

    @staticmethod
    def _key(spec):
        return spec.name, spec.cluster

    def take(self, spec):
        """True, and a slot is taken, if the pool is below its cap."""
        key = self._key(spec)
        with self._lock:
            if self._running[key] >= spec.max_miss_creates:
                return False
            self._running[key] += 1
            return True

    def give_back(self, spec):
        """Free the slot :meth:`take` gave."""
        key = self._key(spec)
        with self._lock:
            self._running[key] -= 1
            if self._running[key] <= 0:
                del self._running[key]

    def running(self, spec):
        """Creates on a miss of the pool running now."""
        with self._lock:
            return self._running[self._key(spec)]
