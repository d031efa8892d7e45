"""Backoff, the whole manager against the Cinder simulator over real
HTTP: a pool whose creates fail backs off, then pauses, instead of
hammering Cinder, and comes back on reload or refill."""

import re

import pytest

from volume_pool import exception
from volume_pool.db import models
from volume_pool.tests.unit.manager_steps import call
from volume_pool.tests.unit.manager_steps import counts
from volume_pool.tests.unit.manager_steps import CTXT
from volume_pool.tests.unit.manager_steps import fill
from volume_pool.tests.unit.manager_steps import ready
from volume_pool.tests.unit.manager_steps import settle
from volume_pool.tests.unit.manager_steps import started
from volume_pool.tests.unit.manager_steps import wait_for


def test_quota_storm_backs_off_instead_of_hammering(make_manager, simulator,
                                                    frozen_time):
    mgr = make_manager({'debian': 5}, backoff_initial=0.5, backoff_max=2)
    started(mgr)
    simulator.inject_fault(status=413, method='POST', path='^/volumes$',
                           count=1000)
    simulator.reset_counts()
    for _ in range(40):  # two seconds of replenish runs, 50 ms apart
        mgr.replenish(CTXT)
        settle(mgr)
        frozen_time(0.05)
    posts = simulator.request_counts[('POST', '/volumes')]
    # Without backoff: 5 creates a run, 200 in all.  With it: a handful.
    assert 1 <= posts <= 20, posts
    status = call(mgr.pool_status)[0]
    assert status['reason'].startswith(('backing off', 'paused'))
    assert 'VolumeLimitExceeded' in status['backoff']['last_error'] or \
        'Injected' in status['backoff']['last_error']
    simulator.clear_faults()
    frozen_time(2.5)  # past backoff_max
    fill(mgr)  # full speed after the first success
    assert call(mgr.pool_status)[0]['backoff'] is None


def test_pool_pauses_after_errors_in_a_row_and_resumes_on_reload(
        make_manager, simulator, frozen_time):
    mgr = make_manager({'debian': 2}, backoff_initial=0.1, backoff_max=1,
                       max_consecutive_errors=3)
    started(mgr)
    simulator.fail_next_creates(100)
    for _ in range(40):
        mgr.replenish(CTXT)
        settle(mgr)
        mgr.sync(CTXT)
        if mgr.backoff.state('debian') and \
                mgr.backoff.state('debian')['paused']:
            break
        frozen_time(1)  # past any backoff delay
    status = call(mgr.pool_status)[0]
    # Creates already in flight when the pool pauses still count.
    failures = re.match(r'paused after (\d+) failed creates',
                        status['reason'])
    assert failures and int(failures.group(1)) >= 3, status['reason']
    errors_made = len([v for v in simulator.list_volumes()
                       if v['status'] == 'error'])
    frozen_time(60)  # paused is not backing off: time does not resume it
    mgr.replenish(CTXT)
    assert counts().get(models.CREATING, 0) == 0  # no create queued
    assert len([v for v in simulator.list_volumes()
                if v['status'] == 'error']) == errors_made  # no new ones
    simulator.clear_faults()
    mgr.reset()  # SIGHUP
    mgr.sync(CTXT)
    fill(mgr)


def test_refill_resumes_a_paused_pool_and_creates_its_deficit(
        make_manager, simulator):
    # One create at a time: a success beside the failure would clear it.
    mgr = make_manager({'debian': 1}, backoff_initial=0.1, backoff_max=1,
                       max_consecutive_errors=1)
    started(mgr)
    simulator.fail_next_creates(1)
    mgr.replenish(CTXT)
    wait_for(lambda: mgr.backoff.state('debian') and
             mgr.backoff.state('debian')['paused'])
    wait_for(lambda: (mgr.sync(CTXT), counts() == {})[1])  # error deleted
    assert call(mgr.refill, 'debian') == 1
    assert mgr.backoff.state('debian') is None
    wait_for(lambda: ready() == 1)
    assert call(mgr.refill, 'debian') == 0  # full: nothing to create
    with pytest.raises(exception.PoolNotFound):
        call(mgr.refill, 'no-such-pool')
    with pytest.raises(exception.InvalidClaimRequest):
        call(mgr.refill, '')
