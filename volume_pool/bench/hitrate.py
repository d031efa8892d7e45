"""Hit rate on a bursty claim trace: bursts of claims with idle gaps
between them, for a few pool targets.  Reports the share of claims served
from the pool (the rest are created on the miss) and the average number of
ready volumes kept (what the hit rate costs)."""

import concurrent.futures
import threading
import time

from volume_pool.bench import inprocess
from volume_pool.bench import measure


def _trace(pool, bursts, burst, gap, sample_every=0.1):
    samples = []
    done = threading.Event()

    def sampler():
        while not done.is_set():
            samples.append(pool.ready())
            done.wait(sample_every)

    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    sources = []
    try:
        for number in range(bursts):
            for i in range(burst):
                sources.append(pool.claim(name='burst-%d-%d' % (number, i)))
            time.sleep(gap)
    finally:
        done.set()
        thread.join()
    return sources, samples


def run_target(sim, cinder, snapshot_id, target, concurrency, poll_interval,
               interval, bursts, burst, gap):
    pool = inprocess.InProcessPool(
        cinder, 'hit-%d' % target, snapshot_id, target=target,
        concurrency=concurrency, poll_interval=poll_interval,
        interval=interval).start()
    try:
        deadline = time.monotonic() + 120 + target * 10
        while pool.ready() < target:  # the trace starts from a full pool
            if time.monotonic() > deadline:
                raise RuntimeError('pool of %d never filled' % target)
            time.sleep(0.05)
        results, samples = _trace(pool, bursts, burst, gap)
    finally:
        pool.stop()
    hits = sum(1 for r in results if r['source'] == 'pool')
    measure.check_unique([r['volume_id'] for r in results])
    return {'target': target, 'claims': len(results), 'hits': hits,
            'hit_rate': round(hits / len(results), 3),
            'avg_ready': round(sum(samples) / len(samples), 2),
            'bursts': bursts, 'burst': burst, 'gap_s': gap}


def run(sim, cinder, targets, concurrency, poll_interval, interval,
        bursts, burst, gap):
    """Every target at once, each pool with its own workers."""
    snapshot_id = sim.add_snapshot(size=1)
    with concurrent.futures.ThreadPoolExecutor(len(targets)) as ex:
        futures = [ex.submit(run_target, sim, cinder, snapshot_id, target,
                             concurrency, poll_interval, interval, bursts,
                             burst, gap) for target in targets]
        return [f.result() for f in futures]
