"""Steps the manager tests share: call an RPC endpoint as the dispatcher
would, fill a pool, count its rows, wait for what a test needs.

Not a test module: test modules import their helpers from here, never
from one another, so each stays free to be split or renamed.
"""

import oslo_messaging as messaging
import sqlalchemy as sa

from volume_pool import cinder as vp_cinder
from volume_pool import context as vp_context
from volume_pool.db import api as db_api
from volume_pool.db import clock
from volume_pool.db import models
from volume_pool.fixtures import waiting

CTXT = vp_context.get_admin_context()


def call(endpoint_method, *args, ctxt=CTXT, **kwargs):
    """Call an RPC endpoint method as the dispatcher would, unwrapping the
    ExpectedException that marks a typed error for the caller."""
    try:
        return endpoint_method(ctxt, *args, **kwargs)
    except messaging.ExpectedException as wrapped:
        raise wrapped.exc_info[1]
    finally:
        # A keyed claim answers before its finish is written: the tests
        # look at the tables as they are once it is.
        claimer = getattr(getattr(endpoint_method, '__self__', None),
                          'claimer', None)
        if claimer is not None:
            assert claimer.wait_answered(30.0)


wait_for = waiting.wait_for


def counts(pool='debian'):
    result = {}
    for by_status in db_api.count_by_pool(None).get(pool, {}).values():
        for status, count in by_status.items():
            result[status] = result.get(status, 0) + count
    return result


def ready(pool='debian'):
    return counts(pool).get(models.AVAILABLE, 0)


def started(mgr):
    """The manager's first sync, as the service runs it at start:
    replenish refills only the pools a sync has reconciled with Cinder."""
    mgr.sync(CTXT)
    return mgr


def fill(mgr, pool='debian', timeout=10.0):
    """Run replenish until the pool is full: one run creates at most
    ``max_creating`` volumes, and a pool backing off skips runs.  A pool
    no sync has reconciled yet is synced first (:func:`started`)."""
    target = mgr.specs[pool].target
    if not mgr.reconciled.done(mgr.cluster, pool):
        started(mgr)

    def full():
        mgr.replenish(CTXT)
        return ready(pool) == target

    wait_for(full, timeout=timeout)


def tagged(simulator, pool='debian'):
    return [v for v in simulator.list_volumes()
            if v['metadata'].get(vp_cinder.TAG_POOL) == pool]


def settle(mgr):
    """Wait until every create the last replenish queued was answered (a
    failure is counted by the backoff before its create is done)."""
    queued = [r.request_id for r in
              db_api.get_rows(None, status=models.CREATING)]
    wait_for(lambda: not any(mgr.replenisher.is_pending(request_id)
                             for request_id in queued),
             what='the queued creates answered')


def held_past_its_deadline():
    """True once the held row's claim deadline is past on the database's
    clock, the one that decides whether the claim may still finish."""
    table = models.PoolVolume
    with db_api.reader() as session:
        return session.execute(
            sa.select(sa.func.count()).select_from(table).where(
                table.status == models.CLAIMING,
                table.claim_deadline < clock.utcnow())).scalar() == 1


def spy(api):
    """Record every call the client sends: version, attempt timeout,
    method, arguments, and what came back (answer or exception); and
    every cast (``cast`` True)."""
    sent = []
    prepare = api._prepare

    def spying_prepare(version, cluster=None, timeout=None, **extra):
        cctxt = prepare(version, cluster=cluster, timeout=timeout, **extra)
        call = cctxt.call

        def spying_call(ctxt, method, **kwargs):
            entry = {'version': version, 'timeout': timeout,
                     'method': method, 'kwargs': dict(kwargs)}
            sent.append(entry)
            try:
                entry['outcome'] = call(ctxt, method, **kwargs)
            except Exception as exc:
                entry['outcome'] = exc
                raise
            return entry['outcome']

        def spying_cast(ctxt, method, **kwargs):
            sent.append({'version': version, 'timeout': timeout,
                         'method': method, 'kwargs': dict(kwargs),
                         'cast': True})
            return cast(ctxt, method, **kwargs)

        cast = cctxt.cast
        cctxt.call = spying_call
        cctxt.cast = spying_cast
        return cctxt

    api._prepare = spying_prepare
    return sent
