"""Per-pool backoff after Cinder refuses to create volumes.

When Cinder answers a create with 413 (quota), 5xx, a refusal, or the
volume ends in ``error``, the pool waits before it asks again: an
exponentially growing, jittered delay (tenacity's ``wait_exponential_jitter``
computes it), reset by the first volume that becomes available.  After
``max_consecutive_errors`` failures in a row the pool pauses until the
operator reloads the configuration (SIGHUP) or asks for a refill, so a pool
whose snapshot is broken does not create error volumes forever.  Claims
are never affected: they keep serving what the pool has.
"""

import dataclasses
import threading

from oslo_log import log as logging
from oslo_utils import timeutils
import tenacity

LOG = logging.getLogger(__name__)


@dataclasses.dataclass
class _State:
    failures: int = 0
    until: float = 0.0
    last_error: str | None = None
    paused: bool = False


class _Attempt:
    """The one field of tenacity's RetryCallState its wait functions read."""

    def __init__(self, number):
        self.attempt_number = number


def wall_clock():
    """Seconds since the epoch; tests move it with timeutils overrides."""
    return timeutils.utcnow_ts(microsecond=True)


class Backoff:
    """Thread-safe backoff state of every pool of one manager."""

    def __init__(self, initial, maximum, max_consecutive_errors,
                 clock=wall_clock):
        # The first delay is ``initial`` (``multiplier`` * 2**0), plus up
        # to ``initial`` of jitter.
        self._wait = tenacity.wait_exponential_jitter(
            multiplier=initial, max=maximum, jitter=initial)
        self._max_errors = max_consecutive_errors
        self._clock = clock
        self._states = {}
        self._lock = threading.Lock()

    def allowed(self, pool):
        """True if the pool may ask Cinder for a volume now."""
        with self._lock:
            state = self._states.get(pool)
            return state is None or (not state.paused and
                                     self._clock() >= state.until)

    def failure(self, pool, error):
        with self._lock:
            state = self._states.setdefault(pool, _State())
            state.failures += 1
            state.last_error = str(error)[:300]
            delay = self._wait(_Attempt(state.failures))
            state.until = self._clock() + delay
            if self._max_errors and state.failures >= self._max_errors:
                state.paused = True
            failures, paused = state.failures, state.paused
        if paused:
            LOG.error('Pool %(pool)s paused after %(n)d failed creates in a '
                      'row (last: %(err)s); reload the configuration or run '
                      'a refill to resume.',
                      {'pool': pool, 'n': failures, 'err': error})
        else:
            LOG.warning('Pool %(pool)s backs off for %(delay).0fs after '
                        '%(n)d failed creates (last: %(err)s).',
                        {'pool': pool, 'delay': delay, 'n': failures,
                         'err': error})

    def success(self, pool):
        with self._lock:
            state = self._states.pop(pool, None)
        if state is not None and state.failures:
            LOG.info('Pool %s creates volumes again; backoff cleared.', pool)

    def reset(self, pool=None):
        """Resume (SIGHUP, refill): forget failures of one or all pools."""
        with self._lock:
            if pool is None:
                self._states.clear()
            else:
                self._states.pop(pool, None)

    def state(self, pool):
        """What pool_status shows: None when the pool is not held back."""
        with self._lock:
            state = self._states.get(pool)
            if state is None:
                return None
            return {'failures': state.failures, 'paused': state.paused,
                    'until': None if state.paused else state.until,
                    'last_error': state.last_error}
