"""Recent claim figures per pool, kept in memory by each manager."""

import collections
import threading
import time

_WINDOW = 200


class ClaimStats:
    """Hits, misses, errors and recent durations, per pool (thread-safe)."""

    def __init__(self, on_claim=None):
        # Called with the pool name on every claim, whatever its outcome:
        # the demand estimate of target = auto and idle_ttl.
        self._on_claim = on_claim
        self._lock = threading.Lock()
        self._counts = collections.defaultdict(collections.Counter)
        self._durations = collections.defaultdict(
            lambda: collections.deque(maxlen=_WINDOW))
        self._last = {}

    def record(self, pool, outcome, duration):
        """``outcome`` is 'pool' (hit), 'created' (miss) or 'error'."""
        with self._lock:
            self._counts[pool][outcome] += 1
            if outcome != 'error':
                self._durations[pool].append(duration)
                self._last[pool] = time.time()
        if self._on_claim is not None:
            self._on_claim(pool)

    def figures(self, pool):
        with self._lock:
            counts = self._counts.get(pool, collections.Counter())
            durations = sorted(self._durations.get(pool, ()))
            last = self._last.get(pool)
        hits, misses = counts['pool'], counts['created']
        served = hits + misses
        return {
            'claims': served,
            'hits': hits,
            'misses': misses,
            'errors': counts['error'],
            'hit_rate': round(hits / served, 3) if served else None,
            'p50_ms': _percentile_ms(durations, 0.50),
            'p95_ms': _percentile_ms(durations, 0.95),
            'last_claim_at': last,
        }


def _percentile_ms(sorted_values, fraction):
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, int(fraction * len(sorted_values)))
    return round(sorted_values[index] * 1000.0, 2)
