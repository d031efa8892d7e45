"""Managers that share one database and one cluster without a
coordination backend, on a real Cinder, RabbitMQ and MariaDB."""

import concurrent.futures
import threading

from volume_pool import exception
from volume_pool.fixtures import waiting
from volume_pool.tests.functional import engines
from volume_pool.tests.functional.test_real_peers import CTXT
from volume_pool.tests.functional.test_real_peers import table
from volume_pool.tests.functional.test_real_peers import tagged

# The lock of a pool is a row lock on MariaDB and PostgreSQL alike: the
# tests below run on one.
# Sync (which trims a surplus) runs rarely, so an overshoot stays visible.
NO_TRIM = 900


def _live(cinder, pool):
    return [v for v in tagged(cinder, pool) if v.status != 'deleting']


def _empty(api, pool):
    """Claim every ready volume; returns their ids."""
    claimed = []
    while True:
        try:
            claimed.append(api.claim(CTXT, pool, create_on_miss=False,
                                     timeout=30)['volume_id'])
        except exception.PoolEmpty:
            return claimed


def _refill_at_once(api, hosts, pool):
    """The operator's refill sent to every manager at the same moment:
    without the database's lock they all count the same shortfall."""
    barrier = threading.Barrier(len(hosts))

    def refill(host):
        barrier.wait()
        return api.client.prepare(version='1.2', server=host,
                                  timeout=30).call(CTXT, 'refill',
                                                   pool=pool, cluster=None)
    with concurrent.futures.ThreadPoolExecutor(len(hosts)) as executor:
        return sum(executor.map(refill, hosts))


@engines.ON_MARIADB
def test_three_managers_without_coordination_never_overfill(
        managers, api, cinder, snapshot, pool_name):
    pools = [(pool_name, snapshot, 6), (pool_name + '-b', snapshot, 3)]
    hosts = ('mgr-1', 'mgr-2', 'mgr-3')
    for host in hosts:
        managers(pools, host=host, sync_interval=NO_TRIM)
    claimed = []
    for _round in range(4):
        for name, _snapshot, target in pools:
            def full_and_never_above(name=name, target=target):
                rows = table(managers.db_url, name)
                assert len(rows) <= target, rows
                return (len(rows) == target and
                        set(rows.values()) == {'available'})
            waiting.wait_for(full_and_never_above, timeout=120,
                             what='%s full at %d' % (name, target))
            assert len(_live(cinder, name)) == target
        for name, _snapshot, target in pools:
            claimed += _empty(api, name)
            assert _refill_at_once(api, hosts, name) <= target
    for name, _snapshot, target in pools:
        waiting.pool_ready(api, name, target)
    assert len(claimed) == len(set(claimed)) >= 4 * (6 + 3)
    # Every volume Cinder made for the pools is a ready one or one handed
    # out, and not one more.
    made = [v for v in cinder.client().volumes.list()
            if (v.name or '').startswith('volume-pool-' + pool_name)]
    assert len(made) == len(claimed) + 6 + 3
    for name, _snapshot, target in pools:
        assert len(_live(cinder, name)) == target
    for volume_id in claimed:
        cinder.client().volumes.delete(volume_id)


@engines.ON_MARIADB
def test_a_rotation_waits_for_every_manager(managers, api, cinder, snapshot,
                                            pool_name):
    first = managers([(pool_name, snapshot, 2)], host='mgr-1',
                     sync_interval=2)
    second = managers([(pool_name, snapshot, 2)], host='mgr-2',
                      sync_interval=2)
    waiting.pool_ready(api, pool_name, 2)
    new = cinder.make_snapshot(size=1)

    def snapshots():
        return sorted(v.snapshot_id for v in _live(cinder, pool_name))

    # mgr-2 moves to the new snapshot while mgr-1 keeps the old one.
    second.terminate()
    before = len(second.log())
    second = managers([(pool_name, new, 2)], host='mgr-2', sync_interval=2)
    waiting.wait_for(lambda: snapshots().count(new) == 2, timeout=120,
                     what='volumes of the new snapshot')
    # Several syncs of both: neither deletes the other's volumes.
    mark = len(first.log())
    waiting.wait_for(lambda: first.log()[mark:].count('Sync:') >= 3 and
                     second.log()[before:].count('Sync:') >= 3,
                     timeout=60, what='syncs of both managers')
    assert snapshots() == sorted([snapshot, snapshot, new, new])
    assert ('do not agree on the snapshot of pool %s' % pool_name in
            second.log()[before:])
    # mgr-1 takes the new config too: the old volumes go.
    first.terminate()
    managers([(pool_name, new, 2)], host='mgr-1', sync_interval=2)
    waiting.wait_for(lambda: snapshots() == [new, new], timeout=120,
                     what='old-snapshot volumes drained')
    waiting.wait_for(lambda: set(table(managers.db_url, pool_name)) == {
        v.id for v in _live(cinder, pool_name)}, timeout=60,
        what='rows of the drained volumes dropped')
