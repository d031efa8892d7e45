"""Refill: time from an empty pool to a full one at creation delay L with
the configured create concurrency, beside serial creation (concurrency 1),
both through the manager's own Replenisher; the ideal is
ceil(size / concurrency) x L.  The pool's level is recorded as it rises,
for the chart of the refill."""

import concurrent.futures
import math
import time

from volume_pool.bench import inprocess
from volume_pool.bench import measure


def time_to_full(pool, size, timeout):
    """Seconds until ``size`` volumes are ready, and the level on the way:
    ``[seconds, ready]`` each time the count the wait polls anyway
    changes."""
    started = time.perf_counter()
    pool.start()
    try:
        deadline = time.monotonic() + timeout
        trace = []
        while True:
            ready = pool.ready()
            if not trace or ready != trace[-1][1]:
                trace.append([round(time.perf_counter() - started, 2),
                              ready])
            if ready >= size:
                break
            if time.monotonic() > deadline:
                raise RuntimeError('pool %s: %d/%d ready after %ss' % (
                    pool.spec.name, ready, size, timeout))
            time.sleep(0.05)
        return time.perf_counter() - started, trace
    finally:
        pool.stop()


def run(sim, cinder, size, concurrency, delay, poll_interval, interval,
        serial=True):
    """Concurrent (and serial) refill; runs both at once, own workers each.
    """
    snapshot_id = sim.add_snapshot(size=1)
    ideal = math.ceil(size / concurrency) * delay
    timeout = 10 * size * max(delay, 0.1) + 60

    def pool(name, workers):
        return inprocess.InProcessPool(
            cinder, name, snapshot_id, target=size, concurrency=workers,
            poll_interval=poll_interval, interval=interval)

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as ex:
        fast = ex.submit(time_to_full, pool('refill-%d' % concurrency,
                                            concurrency), size, timeout)
        slow = (ex.submit(time_to_full, pool('refill-serial', 1), size,
                          timeout) if serial else None)
        wall, trace = fast.result()
        serial_wall, serial_trace = slow.result() if slow else (None, None)
    return {'size': size, 'concurrency': concurrency,
            'creation_delay_s': delay, 'poll_interval_s': poll_interval,
            'replenish_interval_s': interval,
            'wall_s': round(wall, 2), 'ideal_s': round(ideal, 2),
            'over_ideal': measure.ratio(wall, ideal),
            'serial_wall_s': (round(serial_wall, 2) if serial_wall
                              else None),
            'serial_ideal_s': round(size * delay, 2),
            'speedup_vs_serial': measure.ratio(serial_wall, wall, 1),
            'level_trace': trace, 'serial_level_trace': serial_trace}
