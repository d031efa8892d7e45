"""Latency samples, percentiles and the uniqueness check every claim
benchmark runs."""

import collections
import concurrent.futures
import time


class DuplicateClaim(Exception):
    """A volume was handed out twice: the pool's one hard promise broke."""


def percentile(values, fraction):
    """Nearest-rank percentile of ``values`` (seconds), or None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(fraction *
                                                   len(ordered))) - 1))
    return ordered[index]


def summarize(durations, wall):
    """p50/p95/p99 in ms and operations per second of one run."""
    def ms(fraction):
        value = percentile(durations, fraction)
        return None if value is None else round(value * 1000.0, 3)
    return {
        'count': len(durations),
        'p50_ms': ms(0.50),
        'p95_ms': ms(0.95),
        'p99_ms': ms(0.99),
        'per_s': round(len(durations) / wall, 1) if wall > 0 else None,
        'wall_s': round(wall, 3),
    }


def run_concurrently(operation, total, callers):
    """Call ``operation(i)`` ``total`` times from ``callers`` threads.

    Returns (durations in seconds, results in call order, wall seconds).
    Each thread runs its share back to back, as a busy controller would.
    """
    shares = [range(n, total, callers) for n in range(callers)]
    durations = [None] * total
    results = [None] * total

    def worker(indexes):
        for i in indexes:
            started = time.perf_counter()
            results[i] = operation(i)
            durations[i] = time.perf_counter() - started

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=callers) as ex:
        for future in [ex.submit(worker, share) for share in shares]:
            future.result()
    return durations, results, time.perf_counter() - started


def check_unique(volume_ids):
    """Raise DuplicateClaim naming every volume id seen more than once."""
    seen = collections.Counter(volume_ids)
    twice = sorted(v for v, n in seen.items() if n > 1)
    if twice:
        raise DuplicateClaim('%d volume(s) handed out more than once: %s'
                             % (len(twice), ', '.join(twice[:10])))
    return len(seen)


def ratio(numerator, denominator, digits=2):
    if not numerator or not denominator:
        return None
    return round(numerator / denominator, digits)
