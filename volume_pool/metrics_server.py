"""The manager's HTTP listener: ``/metrics`` and ``/healthcheck``.

A small WSGI server on a thread of its own, started with the service when
``[metrics] port`` is set.  ``/metrics`` is prometheus_client's exposition
of :data:`volume_pool.metrics.REGISTRY`; ``/healthcheck`` is
oslo.middleware's health check fed by the manager's health record
(:mod:`volume_pool.healthcheck`): what a Kubernetes ``httpGet`` probe or a
load balancer reads.  Anything else is 404.
"""

import socketserver
import threading
from wsgiref import simple_server

from oslo_log import log as logging
import prometheus_client as prom

from volume_pool import conf as vp_conf
from volume_pool import healthcheck
from volume_pool import metrics

LOG = logging.getLogger(__name__)
CONF = vp_conf.CONF


class _Server(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(simple_server.WSGIRequestHandler):
    def log_message(self, fmt, *args):
        # Scrapes every few seconds: not worth a log line each.
        LOG.debug('metrics listener: ' + fmt, *args)


def application(health_record, conf):
    """The WSGI app; ``health_record()`` returns the health dict."""
    exposition = prom.make_wsgi_app(metrics.REGISTRY)
    health_check = healthcheck.application(health_record, conf)

    def app(environ, start_response):
        path = environ.get('PATH_INFO', '')
        if path == '/metrics':
            return exposition(environ, start_response)
        if path == '/healthcheck':
            return health_check(environ, start_response)
        start_response('404 Not Found', [('Content-Type', 'text/plain')])
        return [b'Not found: /metrics and /healthcheck are served.\n']
    return app


class MetricsServer:
    """The listener of one manager, with its pool gauges registered."""

    def __init__(self, host, port, manager, context, conf=CONF):
        self._address = (host, port)
        self._manager = manager
        self._conf = conf
        self._collector = metrics.PoolCollector(
            status=lambda: manager.pool_status(context),
            ownership=manager.coordination.ownership, health=manager.health)
        self._server = None
        self._thread = None

    @property
    def port(self):
        """The bound port (the one asked for, or the one given for 0)."""
        return self._server.server_address[1]

    def start(self):
        self._server = simple_server.make_server(
            *self._address, application(self._manager.health, self._conf),
            server_class=_Server, handler_class=_QuietHandler)
        metrics.REGISTRY.register(self._collector)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name='metrics-listener',
            daemon=True)
        self._thread.start()
        LOG.info('Serving /metrics and /healthcheck on %s:%d',
                 self._address[0], self.port)

    def stop(self):
        if self._server is None:
            return
        metrics.REGISTRY.unregister(self._collector)
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
        self._server = None
