"""Managers and callers on a three-node RabbitMQ cluster with quorum
queues, reached through a multi-host transport URL: a node stopped
mid-run costs keyed claims no answer and the pool's events none of its
notifications."""

import threading
import time
import uuid

from oslo_config import cfg
import oslo_messaging as messaging
from oslo_messaging import opts as messaging_opts
import pytest

from volume_pool import context as vp_context
from volume_pool import notifications
from volume_pool import rpcapi
from volume_pool.fixtures import waiting
from volume_pool.tests import accounting
from volume_pool.tests.functional import clustered
from volume_pool.tests.functional import engines
from volume_pool.tests.functional import keyed_callers

# One cluster for the module, on one worker.
pytestmark = [pytest.mark.xdist_group('rabbit-cluster'), engines.ON_MARIADB,
              clustered.UNCLOSED_SOCKETS]

CTXT = vp_context.RequestContext(project_id='controller')
QUORUM = ('[oslo_messaging_rabbit]\nrabbit_quorum_queue = true\n'
          'rabbit_transient_quorum_queue = true\n')
EVENTS = ('[oslo_messaging_notifications]\ndriver = messagingv2\n')
CLAIMED = (notifications.CLAIM_HIT, notifications.CLAIM_MISS)


@pytest.fixture
def cluster_url(rabbit_cluster):
    """A fresh vhost on the cluster (a classic queue cannot be declared
    again as a quorum one); its multi-host URL."""
    vhost = 'vp-%s' % uuid.uuid4().hex[:8]
    rabbit_cluster.add_vhost(vhost)
    yield rabbit_cluster.url(vhost)
    rabbit_cluster.ctl('delete_vhost', vhost)


@pytest.fixture
def quorum_conf():
    """The controller's side: quorum queues on, as the managers have."""
    cfg.CONF([], project='volume-pool-functional')
    # The drivers' options, registered before a transport is built.
    for group, opts in messaging_opts.list_opts():
        cfg.CONF.register_opts(opts, group=group)
    for option in ('rabbit_quorum_queue', 'rabbit_transient_quorum_queue'):
        cfg.CONF.set_override(option, True, group='oslo_messaging_rabbit')
    yield cfg.CONF
    cfg.CONF.reset()
    cfg.CONF.clear_override('rabbit_quorum_queue',
                            group='oslo_messaging_rabbit')
    cfg.CONF.clear_override('rabbit_transient_quorum_queue',
                            group='oslo_messaging_rabbit')


class _Events:
    """Receives the pool's notifications: event type -> payloads."""

    def __init__(self):
        self.seen = []
        self.lock = threading.Lock()

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        with self.lock:
            self.seen.append((event_type, payload))
        return messaging.NotificationResult.HANDLED

    def claimed(self):
        with self.lock:
            return {p['volume_id'] for t, p in self.seen if t in CLAIMED}


def test_a_node_stopped_mid_run(rabbit_cluster, cluster_url, quorum_conf,
                                managers, cinder, snapshot, pool_name):
    transport = rpcapi.get_transport(quorum_conf, url=cluster_url)
    events = _Events()
    listener = messaging.get_notification_listener(
        messaging.get_notification_transport(quorum_conf, url=cluster_url),
        [messaging.Target(topic='notifications')], [events],
        executor='threading')
    listener.start()
    try:
        api = rpcapi.VolumePoolAPI(transport, timeout=60)
        for host in ('mgr-1', 'mgr-2'):
            managers([(pool_name, snapshot, 6)], host=host,
                     coordination=True, broker=cluster_url,
                     extra=QUORUM + EVENTS +
                     '[volume_pool]\nclaim_lease = 0\n')
        waiting.pool_ready(api, pool_name, 6, timeout=120)
        callers = keyed_callers.KeyedCallers(api, CTXT, pool_name,
                                             seconds=20, count=4)
        time.sleep(4)
        on_first = _connections(rabbit_cluster, cluster_url, node=0)
        # oslo.messaging connects to the URL's first host that answers.
        assert on_first, 'nobody connected to the node about to stop'
        rabbit_cluster.ctl('stop_app', node=0)
        time.sleep(6)
        rabbit_cluster.ctl('start_app', node=0)
        callers.join()
        answers = callers.answers
        assert not callers.gave_up, callers.gave_up[:5]
        assert len(set(answers.values())) == len(answers)
        slowest = callers.slowest
        assert slowest < 30, slowest  # within one caller's budget
        waiting.wait_for(
            lambda: set(answers.values()) <= events.claimed(), timeout=30,
            what='an event for every claim answered')
        waiting.wait_clear(
            lambda: accounting.accounted(cinder, managers.db_url, pool_name,
                                         answers, since=managers.started_at),
            timeout=90, what='every volume accounted for')
    finally:
        listener.stop()
        listener.wait()
        transport.cleanup()
    retried = [t for _k, _v, t, _s in callers.outcomes if t]
    print('RabbitMQ node stopped for 6 s with %d connections on it: %d '
          'claims answered, %d retried (%s), slowest %.1fs, %d events'
          % (on_first, len(answers), len(retried), retried[:3], slowest,
             len(events.seen)))


def _connections(rabbit_cluster, url, node):
    """How many of the vhost's connections are on node ``node``."""
    vhost = url.rsplit('/', 1)[1]
    lines = rabbit_cluster.ctl('list_connections', '--no-table-headers',
                               'vhost', 'pid', node=(node + 1) % 3)
    # A connection's process id names its node: <rmq1@localhost.1.2.0>.
    on_node = '<%s.' % rabbit_cluster.nodename(node)
    return sum(1 for line in lines.splitlines()
               if line.startswith(vhost + '\t') and on_node in line)
