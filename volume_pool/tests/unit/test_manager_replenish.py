"""Replenish, the whole manager against the Cinder simulator over real
HTTP: pools filled to target with tagged volumes and never past it, at
most max_creating creates in flight, Cinder errors retried."""

from volume_pool import cinder as vp_cinder
from volume_pool.db import api as db_api
from volume_pool.db import models
from volume_pool.tests.unit.manager_steps import call
from volume_pool.tests.unit.manager_steps import counts
from volume_pool.tests.unit.manager_steps import CTXT
from volume_pool.tests.unit.manager_steps import fill
from volume_pool.tests.unit.manager_steps import ready
from volume_pool.tests.unit.manager_steps import settle
from volume_pool.tests.unit.manager_steps import started
from volume_pool.tests.unit.manager_steps import tagged
from volume_pool.tests.unit.manager_steps import wait_for


def test_replenish_fills_each_pool_to_target_with_tagged_volumes(
        make_manager, simulator):
    mgr = make_manager({'debian': 3, 'windows': 2})
    fill(mgr, 'debian')
    wait_for(lambda: ready('windows') == 2)
    volumes = tagged(simulator, 'debian')
    assert len(volumes) == 3
    for volume in volumes:
        assert volume['snapshot_id'] == mgr.snapshots['debian']
        assert volume['status'] == 'available'
        assert volume['metadata'][vp_cinder.TAG_REQUEST]
    rows = db_api.get_rows(None, pool='debian')
    assert {r.volume_id for r in rows} == {v['id'] for v in volumes}
    # A second run creates nothing: no overshoot (a run reserves the rows
    # of its creates before it returns).
    mgr.replenish(CTXT)
    assert counts() == {models.AVAILABLE: 3}
    assert len(tagged(simulator, 'debian')) == 3


def test_replenish_of_full_pools_reads_the_counts_once(
        make_manager, simulator, monkeypatch):
    mgr = make_manager({'debian': 1, 'windows': 1, 'ubuntu': 1})
    for pool in ('debian', 'windows', 'ubuntu'):
        fill(mgr, pool)
    reads, locks, rereads = [], [], []
    monkeypatch.setattr(db_api, 'count_by_pool', record(
        db_api.count_by_pool, reads))
    monkeypatch.setattr(db_api, 'reserve_creates', record(
        db_api.reserve_creates, rereads))
    monkeypatch.setattr(mgr.coordination, 'pool_lock', record(
        mgr.coordination.pool_lock, locks))
    mgr.replenish(CTXT)
    assert (len(reads), len(locks), len(rereads)) == (1, 0, 0)
    # A claim empties one pool: only that pool is locked and re-read,
    # under its lock in the database.
    call(mgr.claim, 'windows')
    mgr.replenish(CTXT)
    assert len(reads) == 2
    assert [args[0] for args in locks] == ['windows']
    assert [args[1] for args in rereads] == ['windows']
    wait_for(lambda: ready('windows') == 1)


def record(function, calls):
    def recorded(*args, **kwargs):
        calls.append(args)
        return function(*args, **kwargs)
    return recorded


def test_replenish_counts_creating_volumes(make_manager, simulator):
    simulator.creation_delay = 0.5
    mgr = make_manager({'debian': 4})
    started(mgr)
    mgr.replenish(CTXT)
    mgr.replenish(CTXT)  # while the first four are still creating
    wait_for(lambda: ready() == 4)
    assert len(tagged(simulator)) == 4


def test_cinder_errors_do_not_crash_replenish_and_are_retried(
        make_manager, simulator):
    mgr = make_manager({'debian': 2}, backoff_initial=0.1)
    started(mgr)
    simulator.inject_fault(status=500, method='POST', path='^/volumes$',
                           count=1)
    simulator.inject_fault(status=413, method='POST', path='^/volumes$',
                           count=1)
    mgr.replenish(CTXT)  # both creates fail, the task returns normally
    wait_for(lambda: counts().get(models.CREATING, 0) <= 1)
    mgr.sync(CTXT)  # settles the row whose create got a 500
    assert ready() == 0
    fill(mgr)  # the next run succeeds
    assert len(tagged(simulator)) == 2


def test_volume_that_ends_in_error_is_deleted_and_replaced(
        make_manager, simulator, frozen_time):
    mgr = make_manager({'debian': 2})
    started(mgr)
    simulator.fail_next_creates(1)
    mgr.replenish(CTXT)
    settle(mgr)  # one ready, one in error (the backoff counted it)
    assert ready() == 1
    mgr.sync(CTXT)
    wait_for(lambda: not [v for v in simulator.list_volumes()
                          if v['status'] == 'error'])
    frozen_time(4)  # past the backoff: 2 s, jitter up to 2 s
    fill(mgr)


def test_max_creating_caps_creates_in_flight(make_manager, simulator, conf):
    simulator.creation_delay = 0.5
    mgr = make_manager({'debian': 6})
    started(mgr)
    conf.set_override('max_creating', 2, group='pool:debian')
    mgr.reset()
    mgr.replenish(CTXT)
    assert counts().get(models.CREATING, 0) == 2
    status = call(mgr.pool_status)[0]
    assert status['reason'] == 'creating (capped at max_creating=2)'
    mgr.replenish(CTXT)
    assert counts().get(models.CREATING, 0) == 2
