"""The pools this manager has reconciled with Cinder since it started.

Replenish creates nothing for a pool until a sync of this process has
listed the pool's volumes in Cinder and settled them, adopting the tagged
volumes that have no row.  A table that lacks rows (a database restored
from an older backup) shows the pools emptier than Cinder holds them: a
refill before that sync would create a pool's worth of volumes, and the
sync would then adopt the volumes without a row, find the pool above its
target and delete the surplus.  A sync skipped because Cinder failed, or
that failed for the pool, does not count.

A pool is reconciled once per process.  With coordination a sync settles
only the pools this manager owns on the ring: a pool taken over from a
manager that died waits for this manager's next sync of it.  Creates on
a claim's miss are not held: a caller never waits for a sync.  In memory
only: a restart reconciles again.
"""

import threading

from oslo_log import log as logging

LOG = logging.getLogger(__name__)


class ReconciledPools:
    """``(cluster, pool)`` keys a sync of this process has reconciled."""

    def __init__(self):
        self._lock = threading.Lock()
        self._done = set()
        self._held = set()  # refills held, and said so in the log

    def mark(self, cluster, pools):
        """A sync listed these pools of ``cluster`` and settled them."""
        keys = {(cluster, pool) for pool in pools}
        with self._lock:
            self._done |= keys
            released = sorted(pool for _cluster, pool in self._held & keys)
            self._held -= keys
        for pool in released:
            LOG.info('Pool %s is reconciled with Cinder: replenish '
                     'refills it.', pool)

    def done(self, cluster, pool):
        """True once a sync of this process has reconciled the pool."""
        with self._lock:
            return (cluster, pool) in self._done

    def hold(self, cluster, pool):
        """True, and the refill is held, while the pool is not reconciled;
        the first hold of a pool is logged."""
        key = (cluster, pool)
        with self._lock:
            if key in self._done:
                return False
            first = key not in self._held
            self._held.add(key)
        if first:
            LOG.info('Pool %s is not refilled until a sync has reconciled '
                     'it with Cinder (its volumes listed, those without a '
                     'row adopted).', pool)
        return True
