"""Prometheus metrics of a manager: what it served, and its pools now.

Counters and the claim-latency histogram count what this manager process
did; Prometheus adds the ``instance`` label, so a dashboard sums them over
the managers of a cluster.  The latency histogram is per cluster, not per
pool: a thousand pools must not make a thousand histograms.

The pool gauges are read from the pool table when Prometheus scrapes, and
only for the pools this manager owns (its share of the cluster's pools on
the coordination hash ring, or every pool without a coordination
backend), so that summing them over the managers counts each pool once.
Served only when ``[metrics] port`` is set (see
:mod:`volume_pool.metrics_server`).
"""

import prometheus_client as prom
from prometheus_client import core

from volume_pool import exception
from volume_pool.db import api as db_api

REGISTRY = prom.CollectorRegistry()
prom.ProcessCollector(registry=REGISTRY)
prom.PlatformCollector(registry=REGISTRY)

# Claims take milliseconds from the pool and up to minutes on a miss.
_CLAIM_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                  10.0, 30.0, 60.0, 120.0)

CLAIMS = prom.Counter(
    'volume_pool_claims',
    'Claims answered by this manager, by outcome: pool (a ready volume), '
    'created (made for the caller on a miss), refused (the pool said no '
    'to the caller: unknown pool, empty pool without create_on_miss, a '
    'key conflict, ...) or error (Cinder, the database, a time-out).',
    ['cluster', 'pool', 'outcome'], registry=REGISTRY)
CLAIM_SECONDS = prom.Histogram(
    'volume_pool_claim_duration_seconds',
    'Seconds from a claim reaching this manager to its answer, hits and '
    'misses, per cluster.',
    ['cluster'], buckets=_CLAIM_BUCKETS, registry=REGISTRY)
KEY_REPLAYS = prom.Counter(
    'volume_pool_claim_key_replays',
    'Keyed claims answered again from their receipt: a caller retried.',
    ['cluster', 'pool'], registry=REGISTRY)
RETURNS = prom.Counter(
    'volume_pool_claim_returns',
    'Claimed volumes that went back to their pool, by reason: release (the '
    'caller gave it back) or lease (its lease ran out unconfirmed).',
    ['cluster', 'pool', 'reason'], registry=REGISTRY)
CREATE_FAILURES = prom.Counter(
    'volume_pool_create_failures',
    'Volume creates of this manager that failed (refused, errored or timed '
    'out in Cinder).',
    ['cluster', 'pool'], registry=REGISTRY)
_COUNTS = ('ready', 'creating', 'claiming', 'uncertain', 'deleting')


def _cluster(cluster):
    return cluster or ''


def claim_answered(cluster, pool, outcome, seconds):
    CLAIMS.labels(_cluster(cluster), pool, outcome).inc()
    if outcome not in ('error', 'refused'):
        CLAIM_SECONDS.labels(_cluster(cluster)).observe(seconds)


def claim_replayed(cluster, pool):
    KEY_REPLAYS.labels(_cluster(cluster), pool).inc()


def claim_returned(cluster, pool, reason):
    RETURNS.labels(_cluster(cluster), pool, reason).inc()


def create_failed(cluster, pool):
    CREATE_FAILURES.labels(_cluster(cluster), pool).inc()


class PoolCollector:
    """The gauges of a manager's state, read at scrape time.

    ``status()`` returns the manager's pool records (as ``pool_status``
    answers) or raises when the database cannot be read; ``ownership()``
    returns ``owns(pool)``, whether this manager exports the pool (one
    view of the ring per scrape); ``health()`` returns the
    health record (:mod:`volume_pool.health`).
    """

    def __init__(self, status, ownership, health):
        self._status = status
        self._ownership = ownership
        self._health = health

    def describe(self):
        # Nothing to declare up front: the gauges are read when scraped.
        return []

    def collect(self):
        health = self._health()
        checks = health['checks']
        yield _gauge('volume_pool_up',
                     '1 when the manager is healthy or degraded, 0 when a '
                     'health check fails.', [],
                     [([], 0 if health['status'] == 'failed' else 1)])
        yield _gauge('volume_pool_database_up',
                     '1 when the pool table answered the health check.', [],
                     [([], int(checks['database']['ok']))])
        yield _gauge('volume_pool_coordination_up',
                     '1 when the coordination backend is joined (or none '
                     'is configured).', [],
                     [([], int(checks['coordination']['ok']))])
        yield _gauge('volume_pool_periodic_task_last_run_timestamp_seconds',
                     'When each periodic task last finished (Unix time).',
                     ['task'],
                     [([task], run['last_run_at'] or 0)
                      for task, run in sorted(checks['periodic'].items())])
        if not checks['database']['ok']:
            return
        try:
            owns = self._ownership()
            records = [r for r in self._status() if owns(r['name'])]
        except (exception.VolumePoolException,) + db_api.DATABASE_ERRORS:
            # The database went away since the health check: the scrape
            # still answers, with the health gauges above.
            return
        yield _gauge('volume_pool_volumes',
                     'Volumes in the pool table, by state (pools this '
                     'manager owns).', ['cluster', 'pool', 'state'],
                     [([_cluster(r['cluster']), r['name'], state], r[state])
                      for r in records for state in _COUNTS])
        yield _gauge('volume_pool_target',
                     'The number of ready volumes the pool aims at now.',
                     ['cluster', 'pool'],
                     [([_cluster(r['cluster']), r['name']], r['target'])
                      for r in records])
        yield _gauge('volume_pool_backoff',
                     '1 while the pool\'s creates are paused after '
                     'consecutive failures.', ['cluster', 'pool'],
                     [([_cluster(r['cluster']), r['name']],
                       int(bool(r['backoff']))) for r in records])
        yield _gauge('volume_pool_awaiting_sync',
                     '1 while the pool is not refilled because no sync of '
                     'this manager has reconciled it with Cinder yet.',
                     ['cluster', 'pool'],
                     [([_cluster(r['cluster']), r['name']],
                       int(not r.get('reconciled', True)))
                      for r in records])


def _gauge(name, documentation, labels, samples):
    family = core.GaugeMetricFamily(name, documentation, labels=labels)
    for values, value in samples:
        family.add_metric(values, value)
    return family
