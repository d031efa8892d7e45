"""Demand estimate of ``target = auto``: claim rate and refill time.

Little's law, L = lambda x W: while a claimed volume is being replaced
(W, the refill time), lambda x W more claims arrive on average.  A pool
that keeps that many ready volumes (times a headroom for bursts) serves
them all from the pool; :func:`volume_pool.sizing.auto_target` turns this
estimate into that target.

* ``rate`` is an exponentially weighted claim rate: every claim adds 1 to
  a score that decays as exp(-age / window); score / window is the rate in
  claims per second.  It follows a new rate within about one window and
  falls back towards 0 when claims stop, with no sampling task.
* ``refill_time`` is an exponentially weighted mean of the measured
  create-to-available times of the pool's volumes; until the first one is
  measured, a configured guess.

Scores add up: with several managers each one publishes its own score and
the sum is the cluster's rate (see :func:`combine`).
"""

import dataclasses
import datetime
import math
import threading

from oslo_utils import timeutils

# Weight of a new refill measurement in its moving average.
REFILL_ALPHA = 0.3


def wall_clock():
    """Seconds since the epoch; tests drive it with timeutils overrides."""
    return timeutils.utcnow_ts(microsecond=True)


def epoch(moment):
    """A naive UTC datetime of the database as seconds since the epoch."""
    if moment is None:
        return None
    return moment.replace(tzinfo=datetime.timezone.utc).timestamp()


def utc_datetime(seconds):
    """Seconds since the epoch as the naive UTC datetime the DB stores."""
    if seconds is None:
        return None
    return datetime.datetime.fromtimestamp(
        seconds, tz=datetime.timezone.utc).replace(tzinfo=None)


def decay(score, at, now, window):
    """A score computed at ``at``, as it stands at ``now``."""
    if not score or at is None:
        return 0.0
    return score * math.exp(-max(0.0, now - at) / window)


@dataclasses.dataclass
class State:
    """One manager's demand figures of one pool (what it publishes)."""

    score: float = 0.0
    at: float | None = None             # when ``score`` was computed
    last_claim_at: float | None = None
    refill_time: float | None = None    # seconds, moving average


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A pool's demand as the cluster sees it."""

    rate: float                     # claims per second
    refill_time: float              # seconds
    refill_measured: bool
    last_claim_at: float | None


class Estimator:
    """This manager's claims and creates, per pool (thread-safe)."""

    def __init__(self, window, clock=wall_clock):
        self.window = float(window)
        self.clock = clock
        self._states = {}
        self._lock = threading.Lock()

    def record_claim(self, pool):
        now = self.clock()
        with self._lock:
            state = self._states.setdefault(pool, State())
            state.score = decay(state.score, state.at, now, self.window) + 1
            state.at = state.last_claim_at = now

    def record_refill(self, pool, seconds):
        """A volume of ``pool`` went from create to available."""
        with self._lock:
            state = self._states.setdefault(pool, State())
            if state.refill_time is None:
                state.refill_time = float(seconds)
            else:
                state.refill_time += REFILL_ALPHA * (seconds -
                                                     state.refill_time)

    def recorded(self, pool):
        """A copy of the pool's state as last recorded, not decayed: it
        changes only with a claim or a refill measured."""
        with self._lock:
            return dataclasses.replace(self._states.get(pool, State()))

    def state(self, pool):
        """A copy of the pool's state with its score decayed to now."""
        now = self.clock()
        with self._lock:
            state = self._states.get(pool, State())
            return State(score=decay(state.score, state.at, now,
                                     self.window),
                         at=now, last_claim_at=state.last_claim_at,
                         refill_time=state.refill_time)

    def estimate(self, pool, others=(), default_refill_time=60.0):
        """The pool's demand: this manager's state plus ``others``'."""
        return combine([self.state(pool), *others], self.clock(),
                       self.window, default_refill_time)


def combine(states, now, window, default_refill_time):
    """Sum the managers' rates; newest refill time; latest claim."""
    rate = sum(decay(s.score, s.at, now, window) for s in states) / window
    claims = [s.last_claim_at for s in states if s.last_claim_at is not None]
    measured = [s for s in states if s.refill_time is not None]
    newest = max(measured, key=lambda s: s.at or 0.0, default=None)
    return Estimate(
        rate=rate,
        refill_time=(newest.refill_time if newest is not None
                     else float(default_refill_time)),
        refill_measured=newest is not None,
        last_claim_at=max(claims, default=None))

