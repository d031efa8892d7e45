"""``/healthcheck`` the OpenStack way: oslo.middleware's health check.

Load balancers, kolla and openstack-helm probe OpenStack services through
oslo.middleware's ``Healthcheck`` (GET and HEAD, text, JSON or HTML,
details only when ``[healthcheck] detailed`` is on).  Its verdict comes
from backend plugins; :class:`ManagerHealthcheck` is this project's,
reading the manager's health record (:mod:`volume_pool.health`).

The listener hands the backend its manager directly instead of leaving
stevedore to find it by entry point: a plugin built from an entry point
only gets the configuration, never the manager it should report on.  The
entry point (``volume_pool`` under ``oslo.middleware.healthcheck``) is
still registered for tools that list the plugins.
"""

import json

from oslo_middleware import healthcheck as oslo_healthcheck
from oslo_middleware.healthcheck import pluginbase
from stevedore import extension

from volume_pool import health

BACKEND_NAME = 'volume_pool'


def failing_checks(record):
    """Names of the checks that are not ok, periodic tasks by name."""
    failing = []
    for name, check in sorted(record['checks'].items()):
        if name == 'periodic':
            failing.extend('periodic %s' % task
                           for task, state in sorted(check.items())
                           if not state['ok'])
        elif not check['ok']:
            failing.append(name)
    return failing


class ManagerHealthcheck(pluginbase.HealthcheckBaseExtension):
    """The manager's record as oslo.middleware's verdict: unavailable
    (503) only when ``failed``; ``degraded`` still serves claims."""

    def __init__(self, oslo_conf, conf, health_record=None):
        super().__init__(oslo_conf, conf)
        self._health_record = health_record

    def healthcheck(self, server_port):
        if self._health_record is None:
            return pluginbase.HealthcheckResult(
                available=False,
                reason='no volume-pool manager runs in this process')
        record = self._health_record()
        failing = failing_checks(record)
        reason = record['status']
        if failing:
            reason += ': ' + ', '.join(failing)
        # The details (errors, hosts, timestamps) are shown only in
        # detailed mode: the middleware decides.
        return pluginbase.HealthcheckResult(
            available=record['status'] != health.FAILED, reason=reason,
            details=json.dumps(record, sort_keys=True))


def _not_served(environ, start_response):
    """Where the middleware passes a request it ignores (a source outside
    ``allowed_source_ranges``, a proxied request)."""
    start_response('404 Not Found', [('Content-Type', 'text/plain')])
    return [b'Not found.\n']


def application(health_record, conf):
    """oslo.middleware's health check app for one manager: its own
    backend first, then the ``[healthcheck] backends`` configured."""
    middleware = oslo_healthcheck.Healthcheck(_not_served, conf)
    own = ManagerHealthcheck(middleware.oslo_conf, {}, health_record)
    configured = [ext for ext in middleware._backends.extensions
                  if ext.name != BACKEND_NAME]
    # No public way to add a backend instance: the manager cannot be
    # reached through an entry point (see the module's docstring).
    middleware._backends.extensions = [
        extension.Extension(BACKEND_NAME, None, ManagerHealthcheck, own),
        *configured]
    return middleware
