"""The demand estimate of target = auto, driven by a synthetic clock."""

import pytest

from volume_pool import demand
from volume_pool import sizing


class Clock:
    def __init__(self, now=1_000_000.0):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


def target(estimator, pool='debian', headroom=1.0, lo=1, hi=10,
           refill=30.0):
    return sizing.auto_target(
        estimator.estimate(pool, default_refill_time=refill), headroom,
        lo, hi)


def claims(estimator, clock, every, duration, pool='debian', seen=None):
    """One claim every ``every`` seconds for ``duration`` seconds."""
    for _ in range(int(duration / every)):
        clock.advance(every)
        estimator.record_claim(pool)
        if seen is not None:
            seen.append(target(estimator, pool))


def test_target_follows_a_claim_trace_up_and_down_within_bounds():
    clock = Clock()
    estimator = demand.Estimator(window=60, clock=clock)
    assert target(estimator) == 1  # no claims: min_ready
    seen = []
    # 0.1 claims/s x 30 s refill: about 3 volumes.
    claims(estimator, clock, every=10, duration=600, seen=seen)
    steady = target(estimator)
    assert steady in (3, 4)
    # 0.5 claims/s: 15 wanted, max_ready 10.
    claims(estimator, clock, every=2, duration=300, seen=seen)
    assert target(estimator) == 10
    # 1 claim / 30 s: back down to 1 or 2.
    claims(estimator, clock, every=30, duration=600, seen=seen)
    assert target(estimator) in (1, 2)
    # Nobody claims for a while: min_ready.
    clock.advance(600)
    assert target(estimator) == 1
    assert all(1 <= t <= 10 for t in seen)
    assert max(seen) == 10 and min(seen) <= 2


def test_rate_is_the_mean_rate_in_steady_state():
    clock = Clock()
    estimator = demand.Estimator(window=100, clock=clock)
    claims(estimator, clock, every=1, duration=2000)
    rate = estimator.estimate('debian').rate
    assert rate == pytest.approx(1.0, rel=0.01)


def test_refill_time_defaults_then_follows_measurements():
    clock = Clock()
    estimator = demand.Estimator(window=60, clock=clock)
    first = estimator.estimate('debian', default_refill_time=60)
    assert (first.refill_time, first.refill_measured) == (60.0, False)
    estimator.record_refill('debian', 10)
    assert estimator.estimate('debian').refill_time == 10.0
    for _ in range(30):
        estimator.record_refill('debian', 40)
    measured = estimator.estimate('debian')
    assert measured.refill_measured
    assert measured.refill_time == pytest.approx(40, abs=0.1)
    # Little's law: 1 claim/s x 40 s.
    claims(estimator, clock, every=0.5, duration=1000)
    assert sizing.auto_target(estimator.estimate('debian'), 1.0, 0,
                              1000) == pytest.approx(80, abs=2)


def test_managers_rates_add_up():
    """Claims spread over two managers give the rate of all of them."""
    clock = Clock()
    one, two, alone = (demand.Estimator(window=60, clock=clock)
                       for _ in range(3))
    for n in range(300):
        clock.advance(1)
        (one if n % 3 else two).record_claim('debian')
        alone.record_claim('debian')
    two.record_refill('debian', 25)
    clock.advance(7)
    combined = one.estimate('debian', [two.state('debian')])
    assert combined.rate == pytest.approx(alone.estimate('debian').rate)
    assert combined.refill_time == 25.0
    assert combined.last_claim_at == clock.now - 7


def test_times_round_trip_through_the_database_form():
    seconds = 1_764_046_800.25
    assert demand.epoch(demand.utc_datetime(seconds)) == seconds
    assert demand.epoch(None) is None and demand.utc_datetime(None) is None
