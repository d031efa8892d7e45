"""Sync cost: Cinder requests and wall time of one sync of a pool of N
volumes, beside the naive design (one GET per volume in the table).

Both run in this process against the simulator and the in-process
database, on a pool whose rows and Cinder volumes already agree, so the
figures are the cost of *checking*, which is what every sync pays.
"""

import time

from volume_pool import exception
from volume_pool import pool_spec
from volume_pool import sync
from volume_pool.bench import measure
from volume_pool.db import api as db_api
from volume_pool.db import models
from volume_pool.fixtures import seeding


def seeds_000_sync(cinder, pool, cluster=None):
    """The baseline: read the table, GET each volume, settle its status."""
    settled = {'kept': 0, 'removed': 0}
    for row in db_api.get_rows(cluster, pool=pool):
        try:
            volume = cinder.get_volume(row.volume_id)
        except exception.VolumeNotFound:
            settled['removed'] += 1
            continue
        if volume.status == 'available' and row.status == models.AVAILABLE:
            settled['kept'] += 1
        else:
            settled['removed'] += 1
    return settled


def _requests(sim):
    return sum(sim.request_counts.values())


def set_latency(sim, ms):
    """Every simulator request waits ``ms`` first (0: none)."""
    sim.clear_faults()
    if ms:
        sim.inject_fault(status=None, delay=ms / 1000.0, count=10 ** 12)


def measure_one(sim, cinder, syncer, name, spec, size, repeats,
                baseline):
    walls, requests = [], []
    for _ in range(repeats):
        sim.reset_counts()
        started = time.perf_counter()
        report = syncer.sync_pool(name, spec, None)
        walls.append(time.perf_counter() - started)
        requests.append(_requests(sim))
        changed = {k: v for k, v in report.as_dict().items() if v}
        if changed:
            raise RuntimeError('sync of an agreeing pool changed %s'
                               % changed)
    result = {'volumes': size, 'sync_requests': max(requests),
              'sync_wall_s': round(min(walls), 4),
              'sync_walls_s': [round(w, 4) for w in walls]}
    if baseline:
        sim.reset_counts()
        started = time.perf_counter()
        settled = seeds_000_sync(cinder, name)
        wall = time.perf_counter() - started
        if settled['kept'] != size:
            raise RuntimeError('baseline saw %s' % settled)
        result.update({
            'baseline_requests': _requests(sim),
            'baseline_wall_s': round(wall, 3),
            'request_ratio': measure.ratio(_requests(sim),
                                           result['sync_requests'], 1),
            'speedup': measure.ratio(wall, min(walls), 1)})
    return result


def run(sim, cinder, sizes, latencies=(0.0,), repeats=3, baseline=True,
        restore_latency=0.0):
    """Per size, one seeded pool; our sync (best of ``repeats``) and the
    baseline (once: it is the slow one) at each API latency (ms)."""
    results = []
    try:
        for size in sizes:
            name = 'sync-%d' % size
            snapshot_id = sim.add_snapshot(size=1)
            with db_api.writer() as session:
                seeding.seed_pool(sim, name, snapshot_id, size,
                                  connectable=session, host='bench')
            spec = pool_spec.PoolSpec(name=name, cluster=None,
                                  snapshot_id=snapshot_id, target=size)
            syncer = sync.Sync(
                cinder, 'bench', lambda r: False, creating_timeout=3600,
                claim_timeout=3600)
            for latency in latencies:
                set_latency(sim, latency)
                result = measure_one(sim, cinder, syncer, name, spec,
                                     size, repeats, baseline)
                result['api_latency_ms'] = latency
                results.append(result)
    finally:
        set_latency(sim, restore_latency)
    return results
