"""``[healthcheck]``: oslo.middleware's health check on the listener.

The options are oslo.middleware's own (the same objects, so the middleware
registering them again is a no-op), under the group name nova, cinder and
glance use, so an operator sets ``detailed`` where they expect it.
"""

import itertools

from oslo_config import cfg
from oslo_middleware.healthcheck import opts as healthcheck_opts

healthcheck_group = cfg.OptGroup(
    'healthcheck', title='Health check options',
    help='oslo.middleware\'s health check, served at /healthcheck on the '
         '[metrics] listener (GET and HEAD): 200 (GET) or 204 (HEAD) while '
         'the manager is ok or degraded, 503 when it has failed.  The '
         'manager\'s own checks (database, RPC server, coordination, '
         'periodic tasks) always run; "backends" adds oslo.middleware\'s '
         'plugins, such as disable_by_file to take a manager out of a load '
         'balancer.  Unless "detailed" is on, a response names only the '
         'failing checks, not their errors.')

healthcheck_opts_list = list(itertools.chain(
    healthcheck_opts.HEALTHCHECK_OPTS,
    healthcheck_opts.DISABLE_BY_FILE_OPTS))


def register_opts(conf):
    conf.register_group(healthcheck_group)
    conf.register_opts(healthcheck_opts_list, group=healthcheck_group)


def list_opts():
    return {healthcheck_group: healthcheck_opts_list}
