"""The clustered engines of volume_pool.fixtures.clusters are clusters:
Galera behind HAProxy, RabbitMQ with quorum queues, Redis Sentinel and
etcd, each reached the way a deployment reaches it (SQL, oslo.messaging,
tooz), with a node killed and back where that is the point.

One cluster per engine for the module, on free ports in a work dir of
its own, started by the first test that needs it; the module's tests run
on one worker, so each cluster starts once.
"""

import os
import uuid

from oslo_config import cfg
import oslo_messaging as messaging
from oslo_messaging import conffixture
import pytest
from tooz import coordination

from volume_pool.fixtures import clusters
from volume_pool.fixtures import waiting
from volume_pool.tests import services
from volume_pool.tests.functional import clustered

pytestmark = [pytest.mark.xdist_group('cluster-engines'),
              clustered.UNCLOSED_SOCKETS]


# -- Galera ------------------------------------------------------------

def _query(galera, i, sql, *args, sync_wait=False):
    with galera.connect(i) as conn, conn.cursor() as cur:
        if sync_wait:  # reads see every write the cluster committed
            cur.execute('SET SESSION wsrep_sync_wait = 1')
        cur.execute(sql, args)
        return cur.fetchall()


def test_galera_is_a_cluster_of_three_through_each_node_and_haproxy(galera):
    for i in (0, 1, 2, None):
        status = galera.wsrep(i)
        assert status['wsrep_cluster_size'] == '3', i
        assert status['wsrep_local_state_comment'] == 'Synced', i
        assert status['wsrep_ready'] == 'ON', i
    # Single writer: HAProxy sends every connection to node 1.
    assert _query(galera, None, 'SELECT @@port') == ((galera.ports[0],),)


def test_galera_a_write_on_node_1_is_read_on_node_3(galera):
    _query(galera, 0, 'CREATE DATABASE IF NOT EXISTS vp_galera')
    _query(galera, 0, 'CREATE TABLE IF NOT EXISTS vp_galera.t '
           '(id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40))')
    value = uuid.uuid4().hex
    _query(galera, 0, 'INSERT INTO vp_galera.t (v) VALUES (%s)', value)
    assert _query(galera, 2, 'SELECT v FROM vp_galera.t WHERE v = %s',
                  value, sync_wait=True) == ((value,),)


def test_galera_a_killed_node_rejoins_synced_with_what_it_missed(galera):
    _query(galera, None, 'CREATE DATABASE IF NOT EXISTS vp_galera')
    _query(galera, None, 'CREATE TABLE IF NOT EXISTS vp_galera.t '
           '(id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40))')
    galera.kill_node(2)
    missed = uuid.uuid4().hex
    _query(galera, None, 'INSERT INTO vp_galera.t (v) VALUES (%s)', missed)
    rejoined_in = galera.start_node(2)
    assert galera.synced(2)
    assert _query(galera, 2, 'SELECT v FROM vp_galera.t WHERE v = %s',
                  missed, sync_wait=True) == ((missed,),)
    assert rejoined_in < 60


# -- RabbitMQ ----------------------------------------------------------

def test_rabbit_cluster_status_shows_three_running_nodes(rabbit_cluster):
    expected = sorted(rabbit_cluster.nodename(i) for i in range(3))
    for i in range(3):
        assert rabbit_cluster.running_nodes(node=i) == expected


class Echo:
    target = messaging.Target(version='1.0')

    def echo(self, ctxt, value):
        return value


def test_rabbit_rpc_round_trip_on_quorum_queues_over_every_node(
        rabbit_cluster):
    vhost = 'vp-quorum-%s' % uuid.uuid4().hex[:8]
    rabbit_cluster.add_vhost(vhost)
    conf = cfg.ConfigOpts()
    conffixture.ConfFixture(conf)  # registers the drivers' options
    conf([], project='volume-pool-test')
    conf.set_override('rabbit_quorum_queue', True,
                      group='oslo_messaging_rabbit')
    conf.set_override('rabbit_transient_quorum_queue', True,
                      group='oslo_messaging_rabbit')
    transport = messaging.get_rpc_transport(
        conf, url=rabbit_cluster.url(vhost))
    topic = 'vp-echo'
    server = messaging.get_rpc_server(
        transport, messaging.Target(topic=topic, server='s1'), [Echo()])
    server.start()
    try:
        client = messaging.get_rpc_client(
            transport, messaging.Target(topic=topic, version='1.0'),
            timeout=30)
        assert client.call({}, 'echo', value='over three nodes') == (
            'over three nodes')
        queues = dict(line.split('\t') for line in rabbit_cluster.ctl(
            'list_queues', '-p', vhost, '--no-table-headers', 'name',
            'type').splitlines() if '\t' in line)
        assert queues[topic] == 'quorum'
        assert queues['%s.s1' % topic] == 'quorum'
        replies = [n for n in queues if n.startswith('reply_')]
        assert replies and all(queues[n] == 'quorum' for n in replies)
    finally:
        server.stop()
        server.wait()
        transport.cleanup()
        rabbit_cluster.ctl('delete_vhost', vhost)


# -- Redis Sentinel ----------------------------------------------------

def _coordinator(url, member):
    coordinator = coordination.get_coordinator(url, member.encode())
    coordinator.start(start_heart=True)
    return coordinator


def test_sentinel_membership_survives_a_failover(sentinel):
    group = b'vp-sentinel-group'
    first = _coordinator(sentinel.url, 'member-1')
    second = None
    try:
        first.create_group(group).get()
        first.join_group(group).get()
        assert first.get_members(group).get() == {b'member-1'}
        before = sentinel.master_port()
        after = sentinel.failover()
        assert after != before

        def members():
            try:
                return first.get_members(group).get()
            except coordination.ToozError:
                return None  # the old master's connection, once
        assert waiting.wait_for(members, timeout=20, interval=0.2,
                                what='members after the failover') == {
            b'member-1'}
        second = _coordinator(sentinel.url, 'member-2')
        second.join_group(group).get()
        assert first.get_members(group).get() == {b'member-1', b'member-2'}
    finally:
        for coordinator in (first, second):
            if coordinator is not None:
                coordinator.stop()


# -- etcd --------------------------------------------------------------

def test_etcd_a_lock_works_before_and_after_the_leader_is_killed(etcd):
    leader = etcd.wait_leader()
    endpoint = next(i for i in range(3) if i != leader)
    coordinator = _coordinator(etcd.url(endpoint), 'etcd-member')
    try:
        lock = coordinator.get_lock(b'vp-etcd-lock')
        assert lock.acquire(blocking=5)
        assert lock.release()
        etcd.kill_node(leader)
        survivors = [i for i in range(3) if i != leader]
        new_leader = etcd.wait_leader(among=survivors)
        assert new_leader != leader
        other = coordinator.get_lock(b'vp-etcd-lock-2')
        assert other.acquire(blocking=10)
        assert other.release()
        assert lock.acquire(blocking=10)
        assert lock.release()
    finally:
        coordinator.stop()
    assert etcd.start_node(leader) < 60


def test_the_clusters_leave_nothing_running_once_stopped(tmp_path):
    clustered.require_opt_in()
    cluster = clusters.EtcdCluster.on_free_ports(
        tmp_path / 'etcd', missing=services.unavailable)
    cluster.start()
    pids = cluster.pids()
    assert len(pids) == 3
    cluster.stop()
    assert not os.path.exists(cluster.dir)
    for pid in pids.values():
        assert not os.path.exists('/proc/%d' % pid) or open(
            '/proc/%d/stat' % pid).read().rpartition(')')[2].split()[0] == 'Z'

