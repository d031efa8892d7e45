"""Managers coordinating through Redis Sentinel and through etcd while
the backend loses a node: a Sentinel failover, the etcd leader killed.
Claims never wait on coordination, the membership recovers, and no pool
goes over its target."""

import threading
import time

import pytest
import sqlalchemy as sa

from volume_pool import context as vp_context
from volume_pool.fixtures import waiting
from volume_pool.tests.functional import clustered
from volume_pool.tests.functional import engines

# One cluster of each engine for the module, on one worker.
pytestmark = [pytest.mark.xdist_group('coordination-clusters'),
              engines.ON_MARIADB, clustered.UNCLOSED_SOCKETS]

CTXT = vp_context.RequestContext()
POOLS = 3
TARGET = 3


class Levels(threading.Thread):
    """Samples, every 0.2 s, each pool's ready and creating rows (what
    replenish counts) and which managers made its rows."""

    def __init__(self, db_url, pools):
        super().__init__(daemon=True)
        self.url, self.pools = db_url, pools
        self.highest = dict.fromkeys(pools, 0)
        self.makers = {pool: set() for pool in pools}
        self.stopping = threading.Event()

    def run(self):
        engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
        try:
            while not self.stopping.wait(0.2):
                with engine.connect() as conn:
                    for pool, host in conn.execute(sa.text(
                            'SELECT pool, host FROM pool_volumes')):
                        if pool in self.pools:
                            self.makers[pool].add(host)
                    for pool, count in conn.execute(sa.text(
                            "SELECT pool, COUNT(*) FROM pool_volumes "
                            "WHERE status IN ('available', 'creating') "
                            "GROUP BY pool")):
                        if pool in self.pools:
                            self.highest[pool] = max(self.highest[pool],
                                                     count)
        finally:
            engine.dispose()

    def stop(self):
        self.stopping.set()
        self.join(10)


def _run_through_a_fault(managers, api, snapshot, pool_name, url, fault):
    """Two managers of one cluster on ``url``; ``fault()`` while callers
    claim from every pool; returns what the sampler saw."""
    pools = ['%s-%d' % (pool_name, n) for n in range(POOLS)]
    hosts = ['east-a', 'east-b']
    for host in hosts:
        managers([(pool, snapshot, TARGET) for pool in pools], host=host,
                 cluster='east', coordination=url)
    for pool in pools:
        waiting.pool_ready(api, pool, TARGET, cluster='east', timeout=120)
    waiting.wait_for(lambda: api.get_usable_hosts(CTXT, 'east') == hosts,
                     timeout=30, what='both managers members')
    levels = Levels(managers.db_url, pools)
    levels.start()
    try:
        claimed = [api.claim(CTXT, pool, cluster='east')['volume_id']
                   for pool in pools]
        began = time.monotonic()
        fault()
        # Claims never wait on coordination.
        claimed += [api.claim(CTXT, pool, cluster='east')['volume_id']
                    for pool in pools]
        waiting.wait_for(
            lambda: api.get_usable_hosts(CTXT, 'east') == hosts,
            timeout=60, what='both managers members again')
        recovered = time.monotonic() - began
        for pool in pools:
            waiting.pool_ready(api, pool, TARGET, cluster='east',
                               timeout=90)
        time.sleep(3)  # more replenish runs: nothing may overshoot
    finally:
        levels.stop()
    assert len(set(claimed)) == len(claimed)
    assert max(levels.highest.values()) <= TARGET, levels.highest
    return recovered, levels


def test_sentinel_failover(managers, api, snapshot, pool_name, sentinel):
    recovered, levels = _run_through_a_fault(
        managers, api, snapshot, pool_name, sentinel.url,
        lambda: sentinel.failover(replicas=False))
    print('Sentinel failover: membership whole %.1fs after it began; '
          'highest pool level %d (target %d); pools made by %s'
          % (recovered, max(levels.highest.values()), TARGET,
             sorted(map(sorted, levels.makers.values()))))


def test_etcd_leader_killed(managers, api, snapshot, pool_name, etcd):
    leader = etcd.wait_leader()
    # etcd3gw talks to one member: the managers' is not the leader.
    endpoint = next(i for i in range(3) if i != leader)

    def kill_the_leader():
        etcd.kill_node(leader)
        etcd.wait_leader(among=[i for i in range(3) if i != leader])

    try:
        recovered, levels = _run_through_a_fault(
            managers, api, snapshot, pool_name, etcd.url(endpoint),
            kill_the_leader)
    finally:
        etcd.start_node(leader)
    print('etcd leader killed: membership whole %.1fs after it began; '
          'highest pool level %d (target %d); pools made by %s'
          % (recovered, max(levels.highest.values()), TARGET,
             sorted(map(sorted, levels.makers.values()))))
