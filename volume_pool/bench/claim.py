"""Claim latency and throughput over real RabbitMQ RPC, beside its floor.

For each database backend a real ``volume-pool-manager`` process serves
claims from a pre-seeded pool (replenish and sync off, so nothing else runs
in it).  For each number of concurrent callers, in the same run and from
the same client process:

* the floor: an empty RPC ``call`` round trip to the same manager
  (``get_usable_hosts`` without a coordination backend touches neither the
  database nor Cinder) and the Cinder rename call alone, at the same
  concurrency;
* one durable commit: a transaction that changes one row of the claim's
  database, through the same driver, from this process, at the same
  concurrency (each caller its own row).  A claim that survives a crash
  at any line must write once before it renames the volume, so the
  floor of a safe claim is the empty RPC, the rename and that commit;
* the claim itself, through :mod:`volume_pool.rpcapi`;
* the path without a pool (once per Cinder): create from the snapshot and
  poll until ``available``.

Every claimed volume id is checked for uniqueness, and every claimed
volume must have lost its pool tag in Cinder.
"""

import concurrent.futures
import time

import sqlalchemy as sa

from volume_pool import cinder as vp_cinder
from volume_pool import context as vp_context
from volume_pool import rpcapi
from volume_pool.bench import cpu
from volume_pool.bench import manager_proc
from volume_pool.bench import measure
from volume_pool.bench import services
from volume_pool.fixtures import cinder_handles
from volume_pool.fixtures import seeding

POOL = 'bench'
# The commit floor's table, in the benchmark's own database; dropped after.
COMMIT_TABLE = 'bench_commit_floor'
# [database] options of the claim managers (none: the project defaults).
DATABASE_OPTIONS = {}


def claims_needed(levels, calls, profiled=False):
    """Rows to seed: every measured, profiled and warm-up claim must be
    a hit."""
    runs = 2 if profiled else 1
    return sum(runs * calls + 2 * callers for callers in levels) + 10


class CommitFloor:
    """One durable commit on a database, as a claim's take makes one:
    ``UPDATE`` of one row and ``COMMIT``, each caller on its own row (no
    lock waits: the floor, not contention)."""

    def __init__(self, url):
        self._engine = sa.create_engine(url, pool_size=64, max_overflow=0)
        self._table = sa.Table(
            COMMIT_TABLE, sa.MetaData(),
            sa.Column('id', sa.Integer, primary_key=True,
                      autoincrement=False),
            sa.Column('n', sa.Integer, nullable=False))
        self._rows = 0

    def measure(self, calls, callers):
        """Summary of ``calls`` commits from ``callers`` threads."""
        self._make_rows(callers)
        table = self._table

        def commit(i):
            with self._engine.begin() as conn:
                conn.execute(table.update()
                             .where(table.c.id == i % callers)
                             .values(n=table.c.n + 1))
        measure.run_concurrently(commit, callers * 2, callers)  # warm
        durations, _, wall = measure.run_concurrently(commit, calls,
                                                      callers)
        return measure.summarize(durations, wall)

    def _make_rows(self, callers):
        self._table.create(self._engine, checkfirst=True)
        if callers > self._rows:
            with self._engine.begin() as conn:
                conn.execute(self._table.insert(), [
                    {'id': i, 'n': 0} for i in range(self._rows, callers)])
            self._rows = callers

    def close(self):
        try:
            self._table.drop(self._engine, checkfirst=True)
        finally:
            self._engine.dispose()


def measure_level(api, ctxt, cinder, rename_ids, calls, callers, meter,
                  profiler=None, name='', commits=None):
    """Floor, rename and claim at one concurrency; returns (figures, ids).

    ``meter`` (a :class:`volume_pool.bench.cpu.CpuMeter`) also gives each
    run's CPU per operation, process by process.  With ``profiler`` (a
    :class:`volume_pool.bench.profile.Profiler`), as many claims again run
    under it, apart from the measured ones, and the manager's CPU per
    claim is split by phase.  With ``commits`` (a :class:`CommitFloor`),
    the floor of a safe claim too.
    """
    for _ in range(2):  # warm connections and threads of both sides
        measure.run_concurrently(lambda i: api.get_usable_hosts(ctxt),
                                 callers, callers)
    warm = measure.run_concurrently(
        lambda i: api.claim(ctxt, POOL), callers * 2, callers)[1]
    (rpc_d, _, rpc_wall), rpc_cpu = meter.measure(
        lambda: measure.run_concurrently(
            lambda i: api.get_usable_hosts(ctxt), calls, callers), calls)
    (claim_d, claimed, claim_wall), claim_cpu = meter.measure(
        lambda: measure.run_concurrently(
            lambda i: api.claim(ctxt, POOL,
                                name='vnf-%d-%d' % (callers, i)),
            calls, callers), calls)
    (rename_d, _, rename_wall), rename_cpu = meter.measure(
        lambda: measure.run_concurrently(
            lambda i: cinder.update_volume(
                rename_ids[i % len(rename_ids)], name='renamed-%d' % i,
                metadata={}),
            calls, callers), calls)
    rpc = measure.summarize(rpc_d, rpc_wall)
    rename = measure.summarize(rename_d, rename_wall)
    claim = measure.summarize(claim_d, claim_wall)
    floor = rpc['p50_ms'] + rename['p50_ms']
    results = warm + claimed
    misses = sum(1 for r in results if r['source'] != 'pool')
    figures = {
        'callers': callers, 'calls': calls, 'empty_rpc': rpc,
        'rename': rename, 'claim': claim, 'misses': misses,
        'floor_ms': round(floor, 3),
        'p50_over_floor': measure.ratio(claim['p50_ms'], floor),
        'p99_over_floor': measure.ratio(claim['p99_ms'], floor),
        'cpu_over_rpc': measure.ratio(claim_cpu['manager'],
                                      rpc_cpu['manager']),
        'cpu_ms_per_op': {'empty_rpc': rpc_cpu, 'claim': claim_cpu,
                          'rename': rename_cpu},
    }
    if commits is not None:
        commit = commits.measure(calls, callers)
        safe_floor = floor + commit['p50_ms']
        figures.update({
            'commit': commit, 'safe_floor_ms': round(safe_floor, 3),
            'p50_over_safe_floor': measure.ratio(claim['p50_ms'],
                                                 safe_floor),
            'p99_over_safe_floor': measure.ratio(claim['p99_ms'],
                                                 safe_floor)})
    if profiler is not None:
        profiled, phases, graph = profiler.record(
            meter.manager_pid, '%s-%d' % (name, callers),
            lambda: measure.run_concurrently(
                lambda i: api.claim(ctxt, POOL), calls, callers)[1])
        results += profiled
        manager_ms = claim_cpu['manager']
        figures['manager_cpu_ms_by_phase'] = None if phases is None else {
            phase: round(share * manager_ms, 3)
            for phase, share in phases.items()}
        figures['flame_graph'] = graph
    return figures, [r['volume_id'] for r in results]


def run_levels(api, ctxt, cinder, rename_ids, levels, calls, manager,
               profiler=None, name='', db_url=None):
    """Every concurrency level against one running ``manager``; with
    ``db_url`` (its database), the commit floor at each."""
    meter = cpu.CpuMeter(manager.proc.pid)
    commits = CommitFloor(db_url) if db_url else None
    figures, claimed = [], []
    try:
        for callers in levels:
            level, ids = measure_level(api, ctxt, cinder, rename_ids,
                                       max(calls, callers), callers, meter,
                                       profiler=profiler, name=name,
                                       commits=commits)
            figures.append(level)
            claimed.extend(ids)
    finally:
        if commits is not None:
            commits.close()
    return figures, claimed


def check_handed_over(claimed, get_volume):
    """Every claimed volume is untagged in Cinder; returns how many."""
    for volume_id in claimed:
        volume = get_volume(volume_id)
        metadata = (volume or {}).get('metadata', {})
        if vp_cinder.TAG_POOL in metadata:
            raise measure.DuplicateClaim(
                'claimed volume %s still carries the pool tag' % volume_id)
    return len(claimed)


def serve(workdir, name, transport_url, url, cinder_section, snapshot_id,
          seed):
    """db sync, seed the pool, start the manager; returns the process."""
    manager = manager_proc.ManagerProcess(
        workdir, name, manager_proc.config_text(
            host=name, transport_url=transport_url, connection=url,
            cinder_section=cinder_section,
            pools={POOL: {'snapshot_id': snapshot_id, 'target': 1}},
            database_options=DATABASE_OPTIONS))
    manager.db_sync()
    engine = sa.create_engine(url)
    try:
        seed(engine)
    finally:
        engine.dispose()
    return manager.start()


def wait_serving(manager, api, ctxt):
    manager.wait_until(
        lambda: api.get_usable_hosts(ctxt, timeout=2) is not None,
        timeout=60, what='RPC server up')


def run_backend(backend, url, transport, transport_url, sim, workdir,
                levels, calls, profiler=None):
    """The claim figures of one database backend, simulated Cinder."""
    snapshot_id = sim.add_snapshot(size=1, name='golden-%s' % backend)
    seeded = claims_needed(levels, calls, profiled=profiler is not None)
    rename_ids = [sim.add_volume(size=1, snapshot_id=snapshot_id)
                  for _ in range(max(levels))]
    manager = serve(
        workdir, 'claim-%s' % backend, transport_url, url,
        cinder_handles.cinder_section(sim.endpoint, sim.project_id),
        snapshot_id,
        lambda engine: seeding.seed_pool(
            sim, POOL, snapshot_id, seeded, connectable=engine,
            host='bench'))
    cinder = cinder_handles.make_cinder(sim.endpoint, sim.project_id)
    api = rpcapi.VolumePoolAPI(transport, timeout=60)
    ctxt = vp_context.RequestContext()
    try:
        wait_serving(manager, api, ctxt)
        figures, claimed = run_levels(api, ctxt, cinder, rename_ids, levels,
                                      calls, manager, profiler=profiler,
                                      name='claim-%s' % backend, db_url=url)
    finally:
        manager.stop()
    unique = measure.check_unique(claimed)
    check_handed_over(claimed, sim.get_volume)
    left = services.count_rows(url)
    if left != seeded - len(claimed):
        raise measure.DuplicateClaim(
            '%d rows left after %d claims of %d seeded'
            % (left, len(claimed), seeded))
    return {'backend': backend, 'label': services.BACKEND_LABELS[backend],
            'server': services.server_version(url), 'cinder': 'simulator',
            'levels': figures, 'claims_checked_unique': unique,
            'rows_left': left}


def no_pool_path(cinder, snapshot_id, samples, poll, timeout=600):
    """Create from the snapshot and wait for available: the boot-time wait
    the pool removes.  ``samples`` creates run at once."""
    def one(i):
        started = time.perf_counter()
        volume = cinder.create_volume(snapshot_id=snapshot_id,
                                      name='no-pool-%d' % i, metadata={},
                                      size=1)
        deadline = time.monotonic() + timeout
        while volume.status != 'available':
            if volume.in_error or time.monotonic() > deadline:
                raise RuntimeError('volume %s: %s' % (volume.id,
                                                      volume.status))
            time.sleep(poll)
            volume = cinder.get_volume(volume.id)
        return time.perf_counter() - started

    with concurrent.futures.ThreadPoolExecutor(max_workers=samples) as ex:
        durations = list(ex.map(one, range(samples)))
    return measure.summarize(durations, max(durations))
