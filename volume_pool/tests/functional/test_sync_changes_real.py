"""Sync between two full listings, against the real Cinder: a listing of
the volumes Cinder changed (``updated_at=gte:``, microversion 3.60) settles
a status change at once; a volume deleted behind the pool's back, which no
such listing shows, is never handed out and goes at the next full
listing."""

import time

from volume_pool import context as vp_context
from volume_pool import exception
from volume_pool.fixtures import waiting
from volume_pool.tests.functional import engines
from volume_pool.tests.functional.test_real_peers import _gone
from volume_pool.tests.functional.test_real_peers import table
from volume_pool.tests.functional.test_real_peers import tagged

CTXT = vp_context.RequestContext()
CHANGES = 'lists the changes'
FULL = 'lists every volume'


def _count(process, line):
    return process.log().count(line)


def _after(process, line, count, what, timeout=60):
    """Wait until ``line`` is in the log more than ``count`` times."""
    waiting.wait_for(lambda: _count(process, line) > count,
                     timeout=timeout, what=what)


def _ready_and_quiet(managers, api, snapshot, pool_name, full):
    manager = managers([(pool_name, snapshot, 3)], sync_interval=2,
                       full_sync_interval=full)
    waiting.pool_ready(api, pool_name, 3)
    _after(manager, CHANGES, _count(manager, CHANGES),
           'a sync that lists the changes')
    return manager


@engines.ON_MARIADB
def test_a_listing_of_the_changes_evicts_a_volume_in_error(
        managers, api, cinder, snapshot, pool_name):
    manager = _ready_and_quiet(managers, api, snapshot, pool_name, 3600)
    client = cinder.client()
    broken = sorted(v.id for v in tagged(cinder, pool_name))[0]
    full_before = _count(manager, FULL)
    client.volumes.reset_state(broken, 'error')
    waiting.wait_for(lambda: broken not in table(managers.db_url,
                                                 pool_name),
                     timeout=60, what='the volume in error evicted')
    waiting.wait_for(lambda: _gone(client, broken), timeout=60,
                     what='the volume in error deleted')
    waiting.pool_ready(api, pool_name, 3)
    # Seen by listings of the changes alone.
    assert _count(manager, FULL) == full_before
    assert 'Traceback' not in manager.log()


def _delete_unseen(manager, client, volume_id):
    """Delete a pool volume in Cinder while the manager is stopped, so
    that it is gone before any sync could see it ``deleting``."""
    with manager.paused(settle=1):
        client.volumes.delete(volume_id)
        waiting.wait_for(lambda: _gone(client, volume_id), timeout=60,
                         what='the volume deleted in Cinder')


@engines.ON_MARIADB
def test_a_volume_deleted_behind_the_pools_back_goes_at_the_full_listing(
        managers, api, cinder, snapshot, pool_name):
    manager = _ready_and_quiet(managers, api, snapshot, pool_name, 20)
    client = cinder.client()
    gone = sorted(v.id for v in tagged(cinder, pool_name))[0]
    _delete_unseen(manager, client, gone)
    changes, full = _count(manager, CHANGES), _count(manager, FULL)
    _after(manager, CHANGES, changes, 'a listing of the changes')
    if _count(manager, FULL) == full:
        # A deleted volume is not listed: its absence decides nothing.
        assert gone in table(managers.db_url, pool_name)
    _after(manager, FULL, full, 'the next full listing', timeout=60)
    waiting.wait_for(lambda: gone not in table(managers.db_url, pool_name),
                     timeout=20, what='the row of the deleted volume gone')
    waiting.pool_ready(api, pool_name, 3)
    assert 'Traceback' not in manager.log()


@engines.ON_MARIADB
def test_a_volume_deleted_behind_the_pools_back_is_never_handed_out(
        managers, api, cinder, snapshot, pool_name):
    manager = _ready_and_quiet(managers, api, snapshot, pool_name, 3600)
    client = cinder.client()
    gone = sorted(v.id for v in tagged(cinder, pool_name))[0]
    _delete_unseen(manager, client, gone)
    _after(manager, CHANGES, _count(manager, CHANGES),
           'a listing of the changes')
    assert gone in table(managers.db_url, pool_name)
    handed = []
    deadline = time.monotonic() + 60
    while gone in table(managers.db_url, pool_name):
        assert time.monotonic() < deadline, 'the row of %s stays' % gone
        try:
            handed.append(api.claim(CTXT, pool_name, name='vm-%d' % len(
                handed), create_on_miss=False)['volume_id'])
        except exception.PoolEmpty:
            time.sleep(0.5)  # replenish refills; the row is still there
    assert gone not in handed
    assert 'Traceback' not in manager.log()
    for volume_id in handed:
        client.volumes.delete(volume_id)

