"""Is this manager doing its job?  The record health probes read.

``failed`` when it cannot serve (its RPC server is not running, the pool
table does not answer) or has stopped keeping its pools (a periodic task
has not finished for three of its intervals); ``degraded`` when it serves
but a coordination backend is configured and away (claims go on, work
sharing waits); ``ok`` otherwise.  The same record answers the RPC
``ping`` and ``volume-pool-status health``, and feeds oslo.middleware's
``/healthcheck`` (:mod:`volume_pool.healthcheck`).
"""

import time

from volume_pool import exception
from volume_pool.db import api as db_api

OK, DEGRADED, FAILED = 'ok', 'degraded', 'failed'
# A task is late after this many of its intervals without finishing,
# and never before this many seconds (a run can take a while).
_LATE_INTERVALS = 3
_LATE_MINIMUM = 60.0


def database_check():
    try:
        db_api.ping()
    except db_api.DATABASE_ERRORS as exc:
        return {'ok': False, 'error': exception.first_line(exc)}
    return {'ok': True}


def coordination_check(coordination):
    if not coordination.enabled:
        return {'ok': True, 'backend': None}
    return {'ok': not coordination.degraded, 'backend': 'configured'}


def periodic_check(last_runs, intervals, started_at, now):
    """Per task: when it last finished and whether it is late."""
    checks = {}
    for task, interval in sorted(intervals.items()):
        last = last_runs.get(task)
        if interval is None or interval <= 0:
            checks[task] = {'ok': True, 'last_run_at': last,
                            'interval': None}
            continue
        since = now - (last if last is not None else started_at)
        late_after = max(_LATE_INTERVALS * interval, _LATE_MINIMUM)
        checks[task] = {'ok': since <= late_after, 'last_run_at': last,
                        'interval': interval}
    return checks


def check(*, host, cluster, rpc_serving, coordination, last_runs,
          intervals, started_at, now=None):
    """The health record of one manager (a dict, JSON-ready)."""
    now = time.time() if now is None else now
    checks = {
        'rpc': {'ok': bool(rpc_serving)},
        'database': database_check(),
        'coordination': coordination_check(coordination),
        'periodic': periodic_check(last_runs, intervals, started_at, now),
    }
    serving = checks['rpc']['ok'] and checks['database']['ok']
    keeping = all(task['ok'] for task in checks['periodic'].values())
    if not (serving and keeping):
        status = FAILED
    elif not checks['coordination']['ok']:
        status = DEGRADED
    else:
        status = OK
    return {'host': host, 'cluster': cluster, 'status': status,
            'checks': checks}
