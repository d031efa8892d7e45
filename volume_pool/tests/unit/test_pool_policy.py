"""Caps, idle shrink and target = auto: the manager against the simulator.

Time is driven by patching oslo.utils' clock (the clock of the database
rows and of the demand estimate), never with sleeps.
"""


import pytest

from volume_pool import exception
from volume_pool.db import api as db_api
from volume_pool.db import models
from volume_pool.tests.unit.manager_steps import call
from volume_pool.tests.unit.manager_steps import counts
from volume_pool.tests.unit.manager_steps import CTXT
from volume_pool.tests.unit.manager_steps import ready
from volume_pool.tests.unit.manager_steps import started
from volume_pool.tests.unit.manager_steps import tagged
from volume_pool.tests.unit.manager_steps import wait_for


def settle(mgr, pools=('debian',)):
    """Replenish until nothing is creating and a run queues nothing."""
    def quiet():
        if any(counts(pool).get(models.CREATING, 0) for pool in pools):
            return False
        mgr.replenish(CTXT)
        return not any(counts(pool).get(models.CREATING, 0)
                       for pool in pools)

    wait_for(quiet, what='pools settled')


def status_of(mgr, pool='debian'):
    return {p['name']: p for p in call(mgr.pool_status)}[pool]


def ready_ids(pool='debian'):
    return [r.volume_id for r in db_api.get_rows(None, pool=pool,
                                                 status=models.AVAILABLE)]


# -- caps -------------------------------------------------------------------

def test_max_ready_caps_replenish_and_says_so(make_manager, simulator):
    mgr = make_manager({'debian': {'target': 5, 'max_ready': 3}})
    started(mgr)
    settle(mgr)
    assert ready() == 3
    assert len(tagged(simulator)) == 3
    status = status_of(mgr)
    assert status['reason'] == 'capped at max_ready=3'
    assert status['capped'] == 'max_ready=3'
    assert status['target'] == 5


def test_max_ready_gb_learns_the_size_then_caps(make_manager, simulator):
    # No size option: the first run creates one volume to learn the size
    # (2 GiB), then fills what fits in 5 GiB: two volumes.
    mgr = make_manager({'debian': {'target': 5, 'max_ready_gb': 5,
                                   'snapshot_size': 2}})
    started(mgr)
    mgr.replenish(CTXT)
    assert len(db_api.get_rows(None)) == 1
    settle(mgr)
    assert ready() == 2
    assert [v['size'] for v in tagged(simulator)] == [2, 2]
    assert status_of(mgr)['reason'] == 'capped at max_ready_gb=5'


def test_max_total_gb_caps_the_pools_of_the_cluster(make_manager,
                                                    simulator):
    mgr = make_manager({'debian': {'target': 3, 'size': 1},
                        'windows': {'target': 3, 'size': 2,
                                    'snapshot_size': 2}},
                       max_total_gb=7)
    started(mgr)
    settle(mgr, pools=('debian', 'windows'))
    # debian takes 3 GiB first; 4 GiB leave room for two windows volumes.
    assert (ready('debian'), ready('windows')) == (3, 2)
    assert status_of(mgr, 'windows')['reason'] == \
        'capped at max_total_gb=7'
    assert status_of(mgr, 'debian')['reason'] == 'full'
    # A claim frees 1 GiB: debian refills it, windows still does not fit.
    call(mgr.claim, 'debian')
    settle(mgr, pools=('debian', 'windows'))
    assert (ready('debian'), ready('windows')) == (3, 2)
    assert sum(v['size'] for pool in ('debian', 'windows')
               for v in tagged(simulator, pool)) == 7


# -- idle shrink --------------------------------------------------------------

def test_idle_pool_shrinks_oldest_first_to_min_ready_and_recovers(
        make_manager, simulator, frozen_time):
    mgr = make_manager({'debian': {'target': 4, 'min_ready': 2,
                                   'idle_ttl': 600}})
    started(mgr)
    settle(mgr)                         # T0: A, B, C, D ready
    frozen_time(100)
    call(mgr.claim, 'debian')           # T0+100: takes A, the oldest
    frozen_time(300)
    settle(mgr)                         # T0+400: E replaces it
    b, c, d, e = ready_ids()
    frozen_time(300)                          # T0+700: no claim for 600 s
    mgr.sync(CTXT)
    # The two oldest go; D stays for min_ready, E is too young anyway.
    wait_for(lambda: simulator.get_volume(b) is None and
             simulator.get_volume(c) is None, what='B and C deleted')
    mgr.sync(CTXT)                      # their rows go with them
    assert ready_ids() == [d, e]
    assert [r.volume_id for r in db_api.get_rows(None)] == [d, e]
    assert {v['id'] for v in tagged(simulator)} == {d, e}
    status = status_of(mgr)
    assert status['reason'] == 'idle: no claim for 600s, keeps min_ready=2'
    assert status['target'] == 2 and status['idle']['idle']
    # Replenish does not refill a shrunk idle pool, a later sync deletes
    # nothing more.
    mgr.replenish(CTXT)
    assert counts() == {models.AVAILABLE: 2}
    frozen_time(3600)
    mgr.sync(CTXT)
    mgr.replenish(CTXT)
    assert ready_ids() == [d, e]
    # The first claim restores the target.
    assert call(mgr.claim, 'debian')['volume_id'] == d
    settle(mgr)
    assert ready() == 4
    assert status_of(mgr)['reason'] == 'full'
    assert not status_of(mgr)['idle']['idle']


def test_pool_never_claimed_is_idle_after_ttl_from_first_service(
        make_manager, simulator, frozen_time):
    mgr = make_manager({'debian': {'target': 3, 'idle_ttl': 600}})
    started(mgr)
    settle(mgr)
    frozen_time(599)
    mgr.sync(CTXT)
    assert ready() == 3
    frozen_time(1)
    mgr.sync(CTXT)
    wait_for(lambda: not tagged(simulator), what='all deleted')
    mgr.sync(CTXT)
    assert db_api.get_rows(None) == []
    mgr.replenish(CTXT)
    assert counts() == {}


# -- target = auto ------------------------------------------------------------

def test_auto_target_follows_the_claim_rate_up_and_down(
        make_manager, simulator, frozen_time):
    mgr = make_manager({'debian': {'target': 'auto', 'min_ready': 1,
                                   'max_ready': 6}},
                       auto_target_window=100, auto_target_headroom=1.0,
                       auto_target_refill_time=5)
    started(mgr)
    auto = status_of(mgr)['auto']
    assert (auto['computed_target'], auto['refill_time_s'],
            auto['refill_time_measured']) == (1, 5.0, False)
    # Measure a refill of 20 s: the clock moves while Cinder creates.
    simulator.creation_delay = 1.0
    mgr.replenish(CTXT)
    frozen_time(20)
    wait_for(lambda: ready() == 1)
    simulator.creation_delay = 0
    auto = status_of(mgr)['auto']
    assert (auto['refill_time_s'], auto['refill_time_measured']) == (
        20.0, True)

    def claim_every(seconds, duration):
        for _ in range(int(duration / seconds)):
            frozen_time(seconds)
            try:
                call(mgr.claim, 'debian', create_on_miss=False)
            except exception.PoolEmpty:
                pass  # demand all the same

    # 0.5 claims/s x 20 s = 10 expected during a refill: max_ready 6.
    claim_every(2, 200)
    status = status_of(mgr)
    assert status['auto']['computed_target'] == 6
    assert status['auto']['claim_rate_per_s'] == pytest.approx(0.5,
                                                                rel=0.2)
    assert status['target'] == 6
    # Replenish aims at it (refills measured at 20 s again).
    simulator.creation_delay = 1.0
    assert call(mgr.refill, 'debian') == 6 - ready()
    frozen_time(20)
    wait_for(lambda: ready() == 6)
    assert status_of(mgr)['auto']['refill_time_s'] == 20.0
    # One claim per 10 s: about 2 during a refill.
    claim_every(10, 400)
    middle = status_of(mgr)['auto']['computed_target']
    assert 1 < middle < 6
    # Nobody claims: back to min_ready, and replenish creates nothing.
    frozen_time(1000)
    status = status_of(mgr)
    assert (status['auto']['computed_target'], status['target']) == (1, 1)
    assert status['configured_target'] == 'auto'
    mgr.replenish(CTXT)  # the claims took them all: one, for min_ready
    assert counts().get(models.AVAILABLE, 0) + counts().get(
        models.CREATING, 0) == 1
