"""A pool's demand across the managers of a cluster.

Each manager's estimator sees only the claims it served.  Every manager
publishes its own figures in the database and reads the others', so the
target of an auto pool, and whether a pool is idle, are the cluster's.
"""

from volume_pool import demand
from volume_pool import sizing
from volume_pool.db import api as db_api


class SharedDemand:
    """This manager's estimator, and the figures the others published."""

    def __init__(self, estimator, cluster, host, conf):
        self.estimator = estimator
        self._cluster = cluster
        self._host = host
        self._conf = conf   # auto_target_refill_time is read on each use
        # {pool: the estimator's state last written}: a state nobody
        # changed since is not written again (readers decay the score from
        # its own time, so a rewrite would say the same).
        self._published = {}

    def publish(self, specs):
        """Write this manager's figures of the pools that use them and
        changed since they were last written (the first time, every one:
        the row also says when this manager first served the pool)."""
        for name, spec in specs.items():
            if not sizing.uses_demand(spec):
                continue
            recorded = self.estimator.recorded(name)
            if self._published.get(name) == recorded:
                continue
            state = self.estimator.state(name)
            db_api.publish_demand(
                self._cluster, name, self._host, score=state.score,
                score_at=demand.utc_datetime(state.at),
                last_claim_at=demand.utc_datetime(state.last_claim_at),
                refill_time=state.refill_time)
            self._published[name] = recorded

    def figures(self):
        """Every manager's published figures of the cluster, in one read:
        what :meth:`of` takes, once per periodic run."""
        return db_api.get_demand(self._cluster)

    def of(self, spec, figures=None):
        """The pool's :class:`~volume_pool.sizing.PoolDemand`: its last
        activity is the latest claim, or when a manager first served it.

        ``figures``: :meth:`figures` of this run (read now without).
        """
        if figures is None:
            figures = self.figures()
        rows = figures.get(spec.name, [])
        others = [demand.State(score=row.score,
                               at=demand.epoch(row.score_at),
                               last_claim_at=demand.epoch(row.last_claim_at),
                               refill_time=row.refill_time)
                  for row in rows if row.host != self._host]
        estimate = self.estimator.estimate(
            spec.name, others, self._conf.volume_pool.auto_target_refill_time)
        now = self.estimator.clock()
        first_served = min((demand.epoch(row.created_at) for row in rows),
                           default=now)
        return sizing.PoolDemand(
            estimate=estimate,
            last_activity=max(first_served, estimate.last_claim_at or 0.0),
            now=now)
