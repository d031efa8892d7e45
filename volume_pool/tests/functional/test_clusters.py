"""Several clusters and several managers: routing, membership, failover.

Real manager processes, a real Cinder, RabbitMQ, MariaDB, and Redis through
tooz: the machine's Redis, or a private redis-server for the outage test.
"""

import json
import os
import subprocess
import sys
import time

import oslo_messaging as messaging
import pytest

from volume_pool import cinder as vp_cinder
from volume_pool import context as vp_context
from volume_pool import exception
from volume_pool.fixtures import manager_process
from volume_pool.fixtures import waiting
from volume_pool.tests import services
from volume_pool.tests.functional import engines
from volume_pool.tests.functional.conftest import BURST_TIMEOUTS
from volume_pool.tests.functional.conftest import CLAIMER

# MariaDB: the claim races of one cluster run on PostgreSQL in
# test_real_peers, and the two-cluster burst below is MariaDB's.
pytestmark = engines.ON_MARIADB

CTXT = vp_context.RequestContext()


def status_of(api, pool, cluster):
    try:
        listing = api.pool_status(CTXT, cluster=cluster, timeout=5)
    except messaging.MessagingTimeout:
        return None
    return {p['name']: p for p in listing}.get(pool)


def tagged(cinder, pool, cluster):
    return cinder.client().volumes.list(search_opts={'metadata': {
        vp_cinder.TAG_POOL: pool, vp_cinder.TAG_CLUSTER: cluster}})


@pytest.mark.serial
def test_two_clusters_two_managers_each(managers, api, cinder, snapshot,
                                        pool_name):
    west_snapshot = cinder.make_snapshot(size=1)
    # Every caller may miss at once: no miss is refused for the cap.
    override = ('[pool:%s@west]\nsnapshot_id = %s\ntarget = 3\n'
                'max_miss_creates = 20\n[pool:%s]\nmax_miss_creates = 20\n'
                % (pool_name, west_snapshot, pool_name)) + BURST_TIMEOUTS
    for cluster in ('east', 'west'):
        for n in (1, 2):
            managers([(pool_name, snapshot, 4)], host='%s-%d' % (cluster, n),
                     cluster=cluster, coordination=True, extra=override)
    waiting.pool_ready(api, pool_name, 4, cluster='east')
    waiting.pool_ready(api, pool_name, 3, cluster='west')
    time.sleep(3)  # more replenish runs of four managers: no overshoot
    assert len(tagged(cinder, pool_name, 'east')) == 4
    assert len(tagged(cinder, pool_name, 'west')) == 3
    assert {v.snapshot_id for v in tagged(cinder, pool_name, 'west')} == {
        west_snapshot}

    assert api.get_usable_hosts(CTXT, 'east') == ['east-1', 'east-2']
    east = api.claim(CTXT, pool_name, cluster='east')
    west = api.claim(CTXT, pool_name, cluster='west')
    assert (east['cluster'], east['snapshot_id']) == ('east', snapshot)
    assert (west['cluster'], west['snapshot_id']) == ('west', west_snapshot)
    started = time.monotonic()
    with pytest.raises(exception.NoLiveManager):
        api.claim(CTXT, pool_name, cluster='north')
    assert time.monotonic() - started < 10

    callers = [subprocess.Popen(
        [sys.executable, CLAIMER, managers.transport_url, pool_name, '50',
         '5', cluster], stdout=subprocess.PIPE, text=True)
        for cluster in ('east', 'west', 'east', 'west')]
    results = []
    for caller in callers:
        out, _ = caller.communicate(timeout=600)
        assert caller.returncode == 0
        results.extend(json.loads(out))
    assert not [r for r in results if 'error' in r]
    ids = [r['volume_id'] for r in results]
    assert len(ids) == 200 and len(set(ids)) == 200
    for result in results:
        expected = snapshot if result['cluster'] == 'east' else west_snapshot
        assert result['snapshot_id'] == expected


def test_a_dead_manager_pools_are_taken_over(managers, api, cinder,
                                             snapshot, pool_name):
    # Eight pools on a ring of two: the dead manager owned some of them
    # (all eight on one member happens once in 128 runs).
    pools = [('%s-%d' % (pool_name, n), snapshot, 1) for n in range(8)]
    first = managers(pools, host='east-a', cluster='east', coordination=True)
    second = managers(pools, host='east-b', cluster='east',
                      coordination=True)
    for name, _, target in pools:
        waiting.pool_ready(api, name, target, cluster='east')
    hosts = api.get_usable_hosts(CTXT, 'east')
    assert hosts == ['east-a', 'east-b']
    second.kill()  # kill -9: no goodbye to the group
    killed_at = time.monotonic()
    for name, _, _ in pools:  # empty every pool
        api.claim(CTXT, name, cluster='east', create_on_miss=False)
    # Bound: membership timeout (5 s) + replenish interval (1 s) + creation.
    for name, _, target in pools:
        waiting.pool_ready(api, name, target, cluster='east', timeout=40)
    took = time.monotonic() - killed_at
    print('pools of the dead manager refilled %.1fs after kill -9' % took)

    def live_hosts():
        listing = subprocess.run(
            [os.path.join(manager_process.BIN, 'volume-pool-manage'),
             '--config-file', first.conf_path, 'cluster', 'list',
             '--cluster', 'east', '--format', 'json'],
            capture_output=True, text=True, timeout=60)
        assert listing.returncode == 0, listing.stderr
        return [m['host'] for m in json.loads(listing.stdout)]

    # The dead manager leaves the list once its heartbeat is older than
    # the membership timeout (5 s): the refill can be quicker than that.
    waiting.wait_for(lambda: live_hosts() == ['east-a'],
                     timeout=5 + 15, what='east-b gone from cluster list')


def test_redis_outage_keeps_claims_and_resumes_replenish(
        managers, api, cinder, snapshot, pool_name, tmp_path):
    redis = services.PrivateRedis(tmp_path)
    redis.start()
    try:
        east = [managers([(pool_name, snapshot, 3)], host=host,
                         cluster='east', coordination=redis.url)
                for host in ('east-a', 'east-b')]
        waiting.pool_ready(api, pool_name, 3, cluster='east')
        redis.stop()
        waiting.wait_for(
            lambda: all('Coordination backend unreachable' in p.log()
                        for p in east),
            timeout=30, what='both managers saw the backend go')
        # Claims never depend on coordination.
        claimed = [api.claim(CTXT, pool_name, cluster='east')['volume_id']
                   for _ in range(3)]
        assert len(set(claimed)) == 3
        # Each manager keeps the pools it owned: the pool refills even now.
        waiting.pool_ready(api, pool_name, 3, cluster='east', timeout=60)
        redis.start()
        waiting.wait_for(
            lambda: all('Coordination backend is back' in p.log()
                        for p in east),
            timeout=30, what='both managers back in the group')
        api.claim(CTXT, pool_name, cluster='east')
        waiting.pool_ready(api, pool_name, 3, cluster='east', timeout=60)
        time.sleep(3)
        # Documented bound: no overshoot while the membership is stable.
        assert len(tagged(cinder, pool_name, 'east')) == 3
        assert api.get_usable_hosts(CTXT, 'east') == ['east-a', 'east-b']
    finally:
        redis.stop()
