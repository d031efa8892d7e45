"""Pool sizing as pure functions: specs, counts and demand in, no services."""

import pytest

from volume_pool import demand
from volume_pool import pool_spec
from volume_pool import sizing
from volume_pool.db import models

SNAP, OLD_SNAP = 'snap-new', 'snap-old'
NOW = 1_000_000.0


def spec(**kwargs):
    kwargs.setdefault('target', 4)
    return pool_spec.PoolSpec(name='debian', cluster=None, snapshot_id=SNAP,
                          **kwargs)


def auto_spec(**kwargs):
    return spec(auto=True, target=kwargs.get('max_ready', 6),
                **{'min_ready': 1, 'max_ready': 6, **kwargs})


def pool_demand(rate=0.0, refill_time=20.0, idle_for=0.0):
    estimate = demand.Estimate(rate=rate, refill_time=refill_time,
                               refill_measured=True, last_claim_at=None)
    return sizing.PoolDemand(estimate=estimate, last_activity=NOW - idle_for,
                             now=NOW)


class Coordination:
    """Who replenishes a pool; counts how often it was asked."""

    def __init__(self, owns=True, degraded=False):
        self._owns, self.degraded, self.asked = owns, degraded, 0

    def owns(self, name):
        self.asked += 1
        return self._owns


# -- counts ------------------------------------------------------------------

COUNTS = {'debian': {
    SNAP: {models.AVAILABLE: 2, models.CREATING: 1, models.UNCERTAIN: 1,
           models.CLAIMING: 3},
    OLD_SNAP: {models.AVAILABLE: 4, models.DELETING: 5}}}


def test_pool_counts_are_of_the_current_snapshot():
    assert sizing.pool_counts(COUNTS, spec()) == (2, 1)
    assert sizing.pool_counts(COUNTS, spec(), with_uncertain=True) == (3, 1)
    assert sizing.pool_counts({}, spec()) == (0, 0)


def test_counts_of_a_configured_pool_keeps_older_snapshots_apart():
    assert sizing.counts_of('debian', spec(), COUNTS) == sizing.Counts(
        ready=2, creating=1, claiming=3, uncertain=1, deleting=5, stale=4)


def test_counts_of_a_removed_pool_are_all_ready():
    counts = sizing.counts_of('debian', None, COUNTS)
    assert (counts.ready, counts.creating, counts.stale) == (6, 1, 0)


# -- the target of the moment ------------------------------------------------

def test_fixed_target_needs_no_demand():
    assert not sizing.uses_demand(spec())
    assert sizing.target_now(spec()) == sizing.Target(4)
    assert sizing.target_now(None).value == 0


@pytest.mark.parametrize('rate, expected', [
    (0.0, 1),       # no claims: min_ready
    (0.1, 2),       # 0.1/s x 20 s = 2
    (0.101, 3),     # 2.02 rounds up
    (0.1002, 2),    # 2.004: a claim all but faded out keeps no volume
    (1.0, 6),       # 20 wanted, max_ready 6
])
def test_auto_target_is_littles_law_within_bounds(rate, expected):
    target = sizing.target_now(auto_spec(), 1.0, pool_demand(rate=rate))
    assert (target.value, target.computed, target.idle) == (
        expected, expected, False)


def test_auto_target_headroom_multiplies():
    target = sizing.target_now(auto_spec(), 1.5, pool_demand(rate=0.1))
    assert target.value == 3


@pytest.mark.parametrize('idle_for, idle', [
    (599.0, False), (600.0, True), (5000.0, True)])
def test_idle_pool_aims_at_min_ready_once_idle_ttl_passed(idle_for, idle):
    pool = spec(min_ready=1, idle_ttl=600)
    assert sizing.uses_demand(pool)
    target = sizing.target_now(pool, None, pool_demand(idle_for=idle_for))
    assert (target.value, target.idle) == ((1, True) if idle else (4, False))


def test_idle_auto_pool_keeps_the_lower_of_both():
    pool = auto_spec(min_ready=2, idle_ttl=60)
    target = sizing.target_now(pool, 1.0,
                               pool_demand(rate=1.0, idle_for=60))
    assert (target.value, target.computed, target.idle) == (2, 6, True)


def test_is_idle_needs_an_idle_ttl_and_an_activity():
    assert not sizing.is_idle(spec(), NOW - 10 ** 6, NOW)
    assert not sizing.is_idle(spec(idle_ttl=10), None, NOW)
    assert sizing.is_idle(spec(idle_ttl=10), NOW - 10, NOW)


def test_ceiling_is_max_ready_for_auto_and_the_target_otherwise():
    assert sizing.ceiling(spec(target=3)) == 3
    assert sizing.ceiling(auto_spec(max_ready=8)) == 8


def test_explain_shows_the_inputs_of_auto_and_idle():
    pool = auto_spec(idle_ttl=600)
    target = sizing.target_now(pool, 1.5,
                               pool_demand(rate=0.1234567, idle_for=0))
    views = sizing.explain(pool, target)
    assert views['auto'] == {
        'computed_target': 4, 'claim_rate_per_s': 0.123457,
        'refill_time_s': 20.0, 'refill_time_measured': True,
        'headroom': 1.5, 'min_ready': 1, 'max_ready': 6}
    assert views['idle'] == {'idle': False, 'idle_ttl': 600, 'min_ready': 1,
                             'last_activity_at': '1970-01-12T13:46:40Z'}
    assert sizing.explain(spec(), sizing.target_now(spec())) == {
        'auto': None, 'idle': None}


# -- caps --------------------------------------------------------------------

def test_plan_is_bounded_by_max_creating_and_names_no_cap():
    assert sizing.plan(spec(target=20, max_creating=5), 20, 3, 2, {}) == \
        sizing.Plan(3)


def test_plan_names_max_ready_when_it_binds():
    assert sizing.plan(spec(target=5, max_ready=3), 5, 1, 1, {}) == \
        sizing.Plan(1, 'max_ready=3')
    assert sizing.plan(spec(target=2, max_ready=3), 2, 1, 0, {}) == \
        sizing.Plan(1)


def test_unknown_size_creates_one_volume_first_to_learn_it():
    pool = spec(target=5, max_ready_gb=10)
    assert sizing.plan(pool, 5, 0, 0, {}) == \
        sizing.Plan(1, 'max_ready_gb=10')
    # That one is still creating: nothing more until its size is known.
    assert sizing.plan(pool, 5, 0, 1, {'debian': (0, 1, None)}) == \
        sizing.Plan(0, 'max_ready_gb=10')
    # 2 GiB volumes, 2 GiB held: three more fit in 10 GiB.
    assert sizing.plan(pool, 5, 1, 0, {'debian': (2, 0, 2)}).deficit == 4
    assert sizing.plan(pool, 5, 2, 0, {'debian': (4, 0, 2)}) == \
        sizing.Plan(3)


def test_max_total_gb_counts_every_pool_of_the_cluster():
    usage = {'debian': (3, 0, 1), 'windows': (4, 0, 2)}
    assert sizing.plan(spec(target=5, size=1), 5, 3, 0, usage,
                       max_total_gb=8) == sizing.Plan(1, 'max_total_gb=8')
    # A row of another pool without a size yet counts as that pool's
    # largest volume.
    usage['windows'] = (4, 1, 2)
    assert sizing.plan(spec(target=5, size=1), 5, 3, 0, usage,
                       max_total_gb=8) == sizing.Plan(0, 'max_total_gb=8')


def test_usage_matters_only_under_a_gb_cap():
    assert not sizing.gb_capped(spec(), None)
    assert sizing.gb_capped(spec(max_ready_gb=5), None)
    assert sizing.gb_capped(spec(), 100)


# -- why a pool is short -----------------------------------------------------

def reason(pool, ready=0, creating=0, target=None, **kwargs):
    target = target or sizing.target_now(pool)
    return sizing.reason('debian', pool, sizing.Counts(ready, creating),
                         target, **kwargs)


def test_reason_of_removed_disabled_and_full_pools():
    assert reason(None, target=sizing.Target(0)) == (
        'not configured: volumes kept until "volume-pool-manage pool drain '
        'debian"')
    assert reason(spec(target=0)) == 'disabled: target is 0'
    assert reason(spec(), ready=4) == 'full'


def test_reason_of_an_idle_pool_says_whether_it_shrinks():
    pool = spec(min_ready=2, idle_ttl=600)
    idle = sizing.target_now(pool, None, pool_demand(idle_for=600))
    assert reason(pool, ready=2, target=idle) == \
        'idle: no claim for 600s, keeps min_ready=2'
    assert reason(pool, ready=3, target=idle) == \
        'idle: no claim for 600s, keeps min_ready=2 (shrinking)'


def test_reason_puts_backoff_before_caps_and_creates():
    paused = {'failures': 3, 'paused': True, 'until': None,
              'last_error': 'quota'}
    waiting = {'failures': 1, 'paused': False, 'until': 60.0,
               'last_error': 'HTTP 503'}
    assert reason(spec(), creating=1, held=paused,
                  capped='max_ready=3') == \
        'paused after 3 failed creates: quota'
    assert reason(spec(), held=waiting) == \
        'backing off until 1970-01-01T00:01:00Z: HTTP 503'


def test_reason_of_a_short_pool_names_what_holds_it():
    assert reason(spec(), creating=1, capped='max_total_gb=7') == \
        'capped at max_total_gb=7'
    assert reason(spec(max_creating=2), creating=2) == \
        'creating (capped at max_creating=2)'
    assert reason(spec(), creating=1) == 'creating'
    assert reason(spec()) == 'waiting for the next replenish'


def test_reason_asks_the_coordination_only_for_an_idle_short_pool():
    coordination = Coordination(owns=False)
    assert reason(spec(), ready=4, coordination=coordination) == 'full'
    assert reason(spec(), creating=1, coordination=coordination) == \
        'creating'
    assert coordination.asked == 0
    assert reason(spec(), coordination=coordination) == \
        'replenished by another manager'
    assert reason(spec(), coordination=Coordination(
        owns=False, degraded=True)).startswith(
            'coordination backend unreachable')
    assert reason(spec(), coordination=Coordination(owns=True)) == \
        'waiting for the next replenish'


def test_reason_of_a_pool_no_sync_has_reconciled_yet():
    # Refills wait for it; a full pool, another manager's, or one already
    # creating says so first.
    waiting = reason(spec(), reconciled=False)
    assert waiting.startswith('waiting for the first sync with Cinder')
    assert reason(spec(), ready=4, reconciled=False) == 'full'
    assert reason(spec(), creating=1, reconciled=False) == 'creating'
    assert reason(spec(), reconciled=False, coordination=Coordination(
        owns=False)) == 'replenished by another manager'
    assert reason(spec(), reconciled=False, coordination=Coordination(
        owns=True)) == waiting
