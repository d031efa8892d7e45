"""One pool run in this process from the manager's own parts: the
Replenisher (create workers), the Claimer and a replenish loop standing in
for the periodic task.  Refill and hit-rate benchmarks use it."""

import threading

from volume_pool import backoff
from volume_pool import claim_request
from volume_pool import claims
from volume_pool import pool_spec
from volume_pool import replenish
from volume_pool import sizing
from volume_pool import stats
from volume_pool.db import api as db_api

# Seconds a claim may hold its row: [volume_pool] claim_timeout's default.
CLAIM_HOLD = 120.0


class InProcessPool:
    """A pool with its own workers, replenished every ``interval`` s."""

    def __init__(self, cinder, name, snapshot_id, target, concurrency,
                 poll_interval, interval, max_creating=10):
        self.spec = pool_spec.PoolSpec(name=name, cluster=None,
                                   snapshot_id=snapshot_id, target=target,
                                   max_creating=max_creating)
        self.interval = interval
        self.replenisher = replenish.Replenisher(
            cinder, 'bench', concurrency=concurrency,
            poll_interval=poll_interval, creating_timeout=3600,
            backoff=backoff.Backoff(2.0, 60.0, 0))
        self.claimer = claims.Claimer(cinder, stats.ClaimStats(),
                                      host='bench')
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name='replenish-%s' % self.spec.name)
        self._thread.start()
        return self

    def _loop(self):
        while not self._stop.is_set():
            self.replenisher.replenish_pool(self.spec, self.spec.target)
            self._stop.wait(self.interval)

    def ready(self):
        return sizing.pool_counts(db_api.count_by_pool(None),
                                  self.spec)[0]

    def claim(self, name=None):
        return self.claimer.claim(claim_request.ClaimRequest(
            self.spec, name=name, hold=CLAIM_HOLD))

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.replenisher.stop(wait=True)
