"""The oslo.service Service that runs the manager (threading backend).

Everything that opens a connection or a thread (Cinder session, RPC server,
create workers, timers) is made in :meth:`Service.start`, never at import or
in ``__init__`` (the designate rule), and stopped in nova's order.
"""

import random
import threading

from oslo_log import log as logging
import oslo_messaging as messaging
from oslo_service import service
from oslo_utils import importutils

from volume_pool import api_endpoint
from volume_pool import arrival
from volume_pool import cinder as vp_cinder
from volume_pool import context as vp_context
from volume_pool import coordination
from volume_pool import exception
from volume_pool import metrics_server
from volume_pool import rpc
from volume_pool import rpc_start
from volume_pool import version
from volume_pool.db import api as db_api
from volume_pool.db import migration

LOG = logging.getLogger(__name__)

MANAGER_CLASS = 'volume_pool.manager.Manager'
# The timer never sleeps longer than this, so a reload is seen in time.
_PERIODIC_INTERVAL_MAX = 60
_PERIODIC_RETRY = 5
# start() waits this long for the RPC servers: a manager whose broker
# answers serves claims when start() returns.  After it they go on
# starting in the background.
RPC_START_GRACE = 5.0


def check_schema():
    """Refuse to run on a database that ``db sync`` has not brought up."""
    try:
        current, head = migration.version(), migration.head()
    except db_api.DATABASE_ERRORS as exc:
        raise exception.ConfigError(
            reason='[database] connection: cannot use the database: %s'
                   % exception.first_line(exc))
    standing = migration.state(current)
    if standing in (migration.EMPTY, migration.OLDER):
        raise exception.ConfigError(
            reason='database is at revision %s, the code needs %s: run '
                   '"volume-pool-manage db sync"' % (current, head))
    if standing == migration.NEWER:
        LOG.warning('The database is at revision %(current)s, newer than '
                    'this code (%(head)s): running on it, as in a rolling '
                    'upgrade; upgrade this manager next.',
                    {'current': current, 'head': head})


def rpc_server_name(conf):
    """Clustered managers share their cluster's queue; others their host's."""
    return conf.cluster or conf.host


class Service(service.Service):
    """volume-pool-manager: RPC server plus periodic tasks."""

    def __init__(self, conf, manager_class=MANAGER_CLASS):
        super().__init__()
        self.conf = conf
        self.manager_class = manager_class
        self.manager = None
        self.rpcserver = None
        self.host_rpcserver = None
        self.metrics_server = None
        self.coordination = None
        self._rpc_start = None

    def start(self):
        LOG.info('Starting volume-pool-manager %(version)s on %(host)s '
                 '(cluster %(cluster)s)',
                 {'version': version.version_string(),
                  'host': self.conf.host,
                  'cluster': self.conf.cluster or '-'})
        manager_cls = importutils.import_class(self.manager_class)
        self.coordination = coordination.Coordination(self.conf)
        self.coordination.start()
        self.manager = manager_cls(vp_cinder.Cinder(self.conf),
                                   conf=self.conf,
                                   coordinator=self.coordination)
        self.manager.init_host()
        # Its own timer, so a long sync never delays the heartbeat.
        self.tg.add_timer_args(self.conf.volume_pool.heartbeat_interval,
                               self.heartbeat, stop_on_exception=False)
        self._start_metrics()
        fuzzy = self.conf.volume_pool.periodic_fuzzy_delay
        self.tg.add_dynamic_timer(
            self.periodic_tasks,
            initial_delay=random.randint(0, fuzzy) if fuzzy else None,
            periodic_interval_max=_PERIODIC_INTERVAL_MAX)
        # Last, and in the background: with the broker away, starting an
        # RPC server waits for it, and the pools must not.
        self._rpc_start = rpc_start.BackgroundStart(
            [('volume-pool', self._make_rpcserver),
             ('volume-pool-host', self._make_host_rpcserver)],
            on_serving=self._serving)
        self._rpc_start.start()
        if not self._rpc_start.wait(RPC_START_GRACE):
            LOG.warning('The message broker does not answer yet: replenish '
                        'and sync run, and claims are served once it '
                        'does.')
        LOG.info('volume-pool-manager serving pools %s on topic %s',
                 ', '.join(sorted(self.manager.specs)) or '(none)',
                 rpc.TOPIC)

    def _make_rpcserver(self):
        """The API's server.  Only the API: the manager's tasks and
        internals stay off the bus.  Its calls know how long they waited
        for a worker (claims count it against the caller's time)."""
        target = messaging.Target(topic=rpc.TOPIC,
                                  server=rpc_server_name(self.conf))
        self.rpcserver = rpc.get_server(
            target, [api_endpoint.PoolAPIEndpoint(self.manager)],
            server_cls=arrival.ArrivalStampingServer)
        return self.rpcserver

    def _make_host_rpcserver(self):
        """Managers of a cluster share one server name: each also answers
        ping under its own, so that it can be probed by name."""
        self.host_rpcserver = rpc.get_server(
            messaging.Target(topic=rpc.HOST_TOPIC, server=self.conf.host),
            [api_endpoint.HostEndpoint(self.manager)])
        return self.host_rpcserver

    def _serving(self):
        self.manager.rpc_serving = True

    def _start_metrics(self):
        """The /metrics and /healthcheck listener, if configured.  A port
        taken is logged and the manager serves on without it: claims
        matter more than their figures."""
        options = self.conf.metrics
        if options.port is None:
            return
        server = metrics_server.MetricsServer(
            options.host, options.port, self.manager,
            vp_context.get_admin_context(), conf=self.conf)
        try:
            server.start()
        except OSError as exc:
            LOG.error('Cannot listen on [metrics] host %(host)s port '
                      '%(port)s (%(err)s): no /metrics or /healthcheck '
                      'until that is fixed and the manager restarted; '
                      'claims are served.',
                      {'host': options.host, 'port': options.port,
                       'err': exc})
            return
        self.metrics_server = server

    def periodic_tasks(self, raise_on_error=False):
        """Run the due tasks; returns the seconds until the next one is due.

        A task's error is logged by oslo.service and never stops the timer.
        """
        ctxt = vp_context.get_admin_context()
        try:
            return self.manager.run_periodic_tasks(
                ctxt, raise_on_error=raise_on_error)
        except Exception:
            if raise_on_error:
                raise
            LOG.exception('Periodic tasks failed; retrying in %ss',
                          _PERIODIC_RETRY)
            return _PERIODIC_RETRY

    def heartbeat(self):
        try:
            self.manager.heartbeat()
        except db_api.DATABASE_ERRORS as exc:
            LOG.warning('Heartbeat failed: %s', exception.first_line(exc))

    def wait(self):
        """oslo.service's wait, joined one second at a time.

        Python runs signal handlers (SIGHUP, SIGTERM) in the main thread
        only, between two bytecodes; a join with no timeout that the
        signal did not interrupt (it reached another thread) would keep
        them waiting until the service ends.
        """
        waiter = threading.Thread(target=super().wait,
                                  name='service-wait', daemon=True)
        waiter.start()
        while waiter.is_alive():
            waiter.join(timeout=1.0)

    def reset(self):
        """Called after a SIGHUP has re-read the mutable options."""
        if self.manager is not None:
            self.manager.reset()

    def stop(self, graceful=True):
        """nova's order: flag, stop RPC, drain claims, wait, clean up."""
        LOG.info('Stopping volume-pool-manager on %s', self.conf.host)
        if self.manager is not None:
            self.manager.prepare_for_shutdown()
            self.manager.rpc_serving = False
        # Only the servers that started: one still waiting for the broker
        # is left to its thread, which stops it if it ever starts.
        servers = (self._rpc_start.stop() if self._rpc_start is not None
                   else [])
        for server in servers:
            try:
                server.stop()
            except Exception:
                LOG.exception('Stopping an RPC server failed')
        if self.manager is not None:
            self.manager.drain(self.conf.graceful_shutdown_timeout or None)
        for server in servers:
            try:
                server.wait()
            except Exception:
                LOG.exception('Waiting for an RPC server failed')
        if self.metrics_server is not None:
            self.metrics_server.stop()
        # Timers first, so no periodic task starts while workers wind down.
        super().stop(graceful=False)
        if self.manager is not None:
            self.manager.cleanup_host()
        if self.coordination is not None:
            self.coordination.stop()  # leave the group last
        LOG.info('volume-pool-manager stopped')
