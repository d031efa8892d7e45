"""One live manager per host name and cluster.

Two processes under one ``[DEFAULT] host`` would each take the other's
rows for its own (a row its host made and no create of its own works on
is dropped by sync), so a second one is refused at start.  A manager
killed without a stop still looks alive for ``service_down_time``; what
tells it from a live one is whether its heartbeat still moves.
"""

import time

from oslo_log import log as logging

from volume_pool import exception
from volume_pool.db import managers as db_managers

LOG = logging.getLogger(__name__)


def _beats(host, cluster, down_time):
    """``{incarnation: heartbeat_at}`` of the live managers named
    ``host`` in ``cluster``."""
    return {incarnation: beat for name, incarnation, beat
            in db_managers.live(cluster, down_time) if name == host}


def refuse_if_taken(host, cluster, down_time, heartbeat_interval,
                    sleep=time.sleep, monotonic=time.monotonic):
    """Raise ConfigError when a manager that still beats registered
    ``host`` in ``cluster``; return at once when none did, or once those
    that did have missed a heartbeat (a process that died)."""
    seen = _beats(host, cluster, down_time)
    if not seen:
        return
    # Two heartbeat intervals: one is always written within them.
    deadline = monotonic() + 2 * heartbeat_interval + 1
    while monotonic() < deadline:
        sleep(1.0)
        beating = sorted(incarnation for incarnation, beat in
                         _beats(host, cluster, down_time).items()
                         if incarnation in seen and beat > seen[incarnation])
        if beating:
            raise exception.ConfigError(
                reason='[DEFAULT] host = %s: a live manager (incarnation '
                       '%s) already runs under this host name in cluster '
                       '%s; give each manager a host name of its own, or '
                       'stop the other first' % (host, beating[0],
                                                 cluster or '(none)'))
    LOG.info('The previous manager under host name %(host)s (incarnation '
             '%(inc)s) stopped beating without a stop: it died; starting.',
             {'host': host, 'inc': ', '.join(sorted(seen))})
