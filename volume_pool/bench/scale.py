"""Scale: what the periodic tasks cost with many pools and volumes.

Not one of the default parts (``--only scale`` runs it): at its full size
it seeds 20,000 volumes per grid point and runs for a while.

1. The grid.  For each backend, pool count, managers per cluster (1, 3)
   and cluster count (1; 4 only at the largest pool count), the table and
   the simulator are seeded directly (not through replenish): one snapshot
   per pool, the volumes spread evenly over the pools, tagged as the pool
   tags them, each with its ``available`` row; every pool's target is its
   volume count, so replenish finds nothing short.  In-process
   :class:`volume_pool.manager.Manager` objects, each with its own host
   and config (and, with a coordination URL, real tooz membership), then
   run one interval: per manager a replenish run, one ``Sync.run`` of its
   share and the whole ``Manager.sync`` task.  Each is counted on the
   calling thread: database statements (transaction control aside),
   coordination round trips (redis-py packets sent), Cinder requests (the
   simulator's count), wall time and the thread's CPU.  The pools each
   manager accepted are recorded: ``pools_done_twice`` must be 0 and the
   union must be every pool.  Beside it, the per-pool path: one
   ``Sync.sync_pool`` per pool.
2. The idle manager: a real ``volume-pool-manager`` process on MariaDB with
   1000 pools of 20 volumes at the default intervals, CPU and RSS over a
   window after its first sync.
3. Claim p50 with 100 rows and with 100,000 rows in the table, in process
   (the Claimer against the simulator), after ANALYZE.
"""

import contextlib
import os
import statistics
import time
import uuid

from oslo_db.sqlalchemy import enginefacade
import sqlalchemy as sa

from volume_pool import cinder as vp_cinder
from volume_pool import claim_request
from volume_pool import claims
from volume_pool import config
from volume_pool import context as vp_context
from volume_pool import pool_spec
from volume_pool import stats
from volume_pool.bench import services
from volume_pool.db import api as db_api
from volume_pool.db import deployment as db_deployment
from volume_pool.db import migration
from volume_pool.db import models
from volume_pool.fixtures import cinder_handles
from volume_pool.fixtures import costs
from volume_pool.fixtures import seeding

DEFAULT_POOLS = (1, 100, 1000)
DEFAULT_VOLUMES = 20000
MANAGERS = (1, 3)
CLUSTERS = (1, 4)
IDLE_POOLS = 1000
IDLE_VOLUMES_PER_POOL = 20
CLAIMS = 200
CLAIM_WARMUP = 5
# (pools, volumes per pool) of the small and the large table.
CLAIM_TABLES = ((1, 100), (1000, 100))
# Seconds a claim may hold its row: [volume_pool] claim_timeout's default.
CLAIM_HOLD = 120.0
# Blocks the claims of each table size alternate in.
CLAIM_BLOCKS = 4


# -- counting ----------------------------------------------------------------

@contextlib.contextmanager
def counted(sim=None):
    """Count what the calling thread does meanwhile; yields the dict that
    holds the figures once the block ends: ``db_statements``,
    ``coordination_round_trips`` (Redis packets, tooz's executor working
    for this thread included), ``cinder_requests`` (the simulator's
    count, all threads: measure one call at a time), ``wall_s``,
    ``cpu_s`` (this thread's).
    """
    figures = {}
    if sim is not None:
        sim.reset_counts()
    started, cpu = time.perf_counter(), time.thread_time()
    with costs.statements() as statements, \
            costs.redis_round_trips() as trips:
        try:
            yield figures
        finally:
            figures['wall_s'] = round(time.perf_counter() - started, 4)
            figures['cpu_s'] = round(time.thread_time() - cpu, 4)
            figures['db_statements'] = len(statements)
            figures['coordination_round_trips'] = len(trips)
            if sim is not None:
                figures['cinder_requests'] = sum(
                    sim.request_counts.values())


@contextlib.contextmanager
def recording_owns(coordination):
    """The pool names the ring gave this manager meanwhile (through
    ``coordination.ownership()``, once per periodic run)."""
    owned = set()
    original = coordination.ownership

    def ownership():
        owns = original()

        def recording(name):
            mine = owns(name)
            if mine:
                owned.add(name)
            return mine
        return recording
    coordination.ownership = ownership
    try:
        yield owned
    finally:
        del coordination.ownership


def done_twice(owned_sets, pools):
    """``(pools in two sets or more, whether the sets cover every pool)``.
    """
    seen, twice = set(), set()
    for owned in owned_sets:
        twice |= seen & owned
        seen |= owned
    return len(twice), set(pools) <= seen


# -- databases ---------------------------------------------------------------

@contextlib.contextmanager
def using_database(url):
    """Point this process's data layer at ``url`` (migrated) meanwhile."""
    with data_layers([url]) as (layer,), in_layer(layer):
        yield url


@contextlib.contextmanager
def data_layers(urls):
    """A migrated data layer (transaction context) per URL, swapped in
    with :func:`in_layer`; disposed at the end."""
    layers = []
    try:
        for url in urls:
            layer = enginefacade.transaction_context()
            layer.configure(connection=url)
            layers.append(layer)
            with in_layer(layer):
                migration.upgrade()
        yield layers
    finally:
        for layer in layers:
            layer.writer.get_engine().dispose()


@contextlib.contextmanager
def in_layer(layer):
    """The data layer ``db_api`` uses meanwhile."""
    previous = db_api.context_manager
    db_api.context_manager = layer
    try:
        yield layer
    finally:
        db_api.context_manager = previous


def analyze(engine):
    """Fresh planner statistics of the pool table."""
    table = models.PoolVolume.__tablename__
    with engine.begin() as connection:
        name = engine.dialect.name
        if name == 'mysql':
            connection.exec_driver_sql('ANALYZE TABLE %s' % table).fetchall()
        elif name == 'postgresql':
            connection.exec_driver_sql('ANALYZE %s' % table)
        else:
            connection.exec_driver_sql('ANALYZE')


def clear_pool_table(engine):
    with engine.begin() as connection:
        connection.execute(models.PoolVolume.__table__.delete())


# -- seeding -----------------------------------------------------------------

def spread(total, pools):
    """``total`` volumes over ``pools`` pools, as evenly as they go."""
    base, extra = divmod(total, pools)
    return [base + (1 if n < extra else 0) for n in range(pools)]


def pool_names(pools, clusters):
    """``{cluster index: [pool names]}``, pools dealt round the clusters."""
    names = {k: [] for k in range(clusters)}
    for n in range(pools):
        names[n % clusters].append('c%d-p%04d' % (n % clusters, n))
    return names


class Seeded:
    """What :func:`seed` put in the simulator and the table."""

    def __init__(self):
        self.snapshots = {}      # pool -> snapshot id
        self.counts = {}         # pool -> volumes
        self.clusters = {}       # pool -> cluster name
        self.volume_ids = []     # simulator volumes, to remove afterwards
        self.rows = 0

    def remove(self, sim):
        for volume_id in self.volume_ids:
            sim.remove_volume(volume_id)
        for snapshot_id in self.snapshots.values():
            sim.delete_snapshot(snapshot_id)
        self.volume_ids = []


def seed(sim, engine, pools, host='bench-seed', in_simulator=None):
    """``pools``: ``{pool: (cluster, volumes)}``.  Each pool gets a
    snapshot, its volumes (available, tagged as the pool tags them) and an
    ``available`` row per volume, inserted in bulk.  ``in_simulator``: the
    pools whose volumes go to the simulator (default: all); the others get
    rows only, with made-up volume ids."""
    seeded = Seeded()
    rows = []
    deployment = db_deployment.identity(engine)
    for pool, (cluster, count) in pools.items():
        snapshot_id = sim.add_snapshot(size=1)
        seeded.snapshots[pool] = snapshot_id
        seeded.counts[pool] = count
        seeded.clusters[pool] = cluster
        real = in_simulator is None or pool in in_simulator
        for _ in range(count):
            row = seeding.row_values(pool, None, snapshot_id,
                                      cluster=cluster, host=host)
            if real:
                row['volume_id'] = sim.add_volume(
                    size=1, name=row['name'], snapshot_id=snapshot_id,
                    metadata=vp_cinder.pool_tags(pool, cluster,
                                                 row['request_id'],
                                                 deployment))
                seeded.volume_ids.append(row['volume_id'])
            else:
                row['volume_id'] = str(uuid.uuid4())
            rows.append(row)
    seeding.insert_rows(rows, engine)
    seeded.rows = len(rows)
    return seeded


# -- managers in this process ------------------------------------------------

def manager_config_text(sim, host, cluster, pools, snapshots, counts,
                        coordination_url=None):
    lines = ['[DEFAULT]', 'host = %s' % host]
    if cluster:
        lines.append('cluster = %s' % cluster)
    lines += ['[volume_pool]', 'enabled_pools = %s' % ','.join(pools),
              'periodic_fuzzy_delay = 0']
    if coordination_url:
        lines += ['[coordination]', 'backend_url = %s' % coordination_url]
    text = '\n'.join(lines) + '\n' + cinder_handles.cinder_section(
        sim.endpoint, sim.project_id)
    for pool in pools:
        text += '[pool:%s]\nsnapshot_id = %s\ntarget = %d\n' % (
            pool, snapshots[pool], counts[pool])
    return text


def start_managers(sim, workdir, clusters, managers, seeded,
                   coordination_url=None, join_timeout=30.0):
    """``managers`` Manager objects per cluster (``{cluster: [pools]}``),
    each joined to its cluster's group when ``coordination_url`` is set.
    """
    from volume_pool import coordination
    from volume_pool import manager as vp_manager
    started = []
    try:
        for cluster, pools in clusters.items():
            for index in range(managers):
                host = '%s-m%d' % (cluster or 'nocluster', index)
                path = os.path.join(workdir, '%s.conf' % host)
                with open(path, 'w') as out:
                    out.write(manager_config_text(
                        sim, host, cluster, pools, seeded.snapshots,
                        seeded.counts, coordination_url))
                conf = config.own_conf(path)
                member = coordination.Coordination(conf)
                member.start()
                mgr = vp_manager.Manager(vp_cinder.Cinder(conf), conf=conf,
                                         coordinator=member)
                mgr.init_host()
                started.append(mgr)
        if coordination_url:
            _wait_for_members(started, managers, join_timeout)
        return started
    except BaseException:
        stop_managers(started)
        raise


def _wait_for_members(started, managers, timeout):
    deadline = time.monotonic() + timeout
    for mgr in started:
        while len(mgr.coordination.members()) < managers:
            if time.monotonic() > deadline:
                raise RuntimeError('%s sees %s in its group, not %d managers'
                                   % (mgr.host, mgr.coordination.members(),
                                      managers))
            time.sleep(0.1)


def stop_managers(started):
    for mgr in started:
        try:
            mgr.cleanup_host()
        finally:
            mgr.coordination.stop()


# -- 1. the grid -------------------------------------------------------------

def measure_interval(sim, started):
    """One interval of every manager: replenish, Sync.run, Manager.sync,
    each counted on its own; returns per-manager figures and owned sets.
    """
    ctxt = vp_context.get_admin_context()
    for mgr in started:  # connections, sessions and threads warmed
        mgr.replenish(ctxt)
    figures = [{'host': mgr.host, 'cluster': mgr.cluster,
                'pools_configured': len(mgr.specs)} for mgr in started]
    owned = {'replenish': [], 'sync': []}
    for mgr, fig in zip(started, figures, strict=True):
        with counted(sim) as fig['replenish']:
            mgr.replenish(ctxt)
        # With every pool full the run asks no ring; when pools are short
        # it takes one view of it, the one asked here.
        owns = mgr.coordination.ownership()
        mine = {name for name in mgr.specs if owns(name)}
        fig['replenish']['pools'] = len(mine)
        owned['replenish'].append(mine)
    for mgr, fig in zip(started, figures, strict=True):
        with recording_owns(mgr.coordination) as mine, \
                counted(sim) as fig['sync_run']:
            report = mgr.syncer.run(mgr.specs, mgr.cluster,
                                    owns=mgr.coordination.ownership())
        fig['sync_run']['pools'] = len(mine)
        fig['sync_run']['changed'] = {k: v for k, v in
                                      report.as_dict().items() if v}
        owned['sync'].append(mine)
    for mgr, fig in zip(started, figures, strict=True):
        with recording_owns(mgr.coordination) as mine, \
                counted(sim) as fig['sync_task']:
            mgr.sync(ctxt)
        fig['sync_task']['pools'] = len(mine)
    return figures, owned


def per_pool_path(sim, started):
    """One ``Sync.sync_pool`` per pool of each cluster, in a loop (by the
    first manager of the cluster): the per-pool design's figures."""
    done, changed, pools = set(), {}, 0
    with counted(sim) as figures:
        for mgr in started:
            if mgr.cluster in done:
                continue
            done.add(mgr.cluster)
            for name, spec in sorted(mgr.specs.items()):
                pools += 1
                report = mgr.syncer.sync_pool(name, spec, mgr.cluster)
                for key, value in report.as_dict().items():
                    if value:
                        changed[key] = changed.get(key, 0) + value
    figures['pools'] = pools
    figures['changed'] = changed
    return figures


def _worst(figures, key, field):
    values = [f[key][field] for f in figures]
    return max(values) if values else None


def measure_point(sim, workdir, pools, volumes, clusters, managers,
                  run_id, coordination_url=None, per_pool=True):
    """One grid point on the data layer in use; returns its figures."""
    engine = db_api.get_engine()
    clear_pool_table(engine)
    names = pool_names(pools, clusters)
    counts = dict(zip([p for k in sorted(names) for p in names[k]],
                      spread(volumes, pools), strict=True))
    cluster_of = {k: 'scale-%s-p%d-c%d-m%d-%d' % (run_id, pools, clusters,
                                                  managers, k)
                  for k in names}
    seeded = seed(sim, engine, {
        pool: (cluster_of[k], counts[pool])
        for k in sorted(names) for pool in names[k]})
    try:
        if seeded.rows != volumes:
            raise RuntimeError('seeded %d rows for %d volumes'
                               % (seeded.rows, volumes))
        started = start_managers(
            sim, workdir, {cluster_of[k]: names[k] for k in names},
            managers, seeded, coordination_url)
        try:
            figures, owned = measure_interval(sim, started)
            baseline = per_pool_path(sim, started) if per_pool else None
        finally:
            stop_managers(started)
    finally:
        seeded.remove(sim)
    all_pools = list(counts)
    twice = {}
    covered = {}
    for task in ('replenish', 'sync'):
        twice[task], covered[task] = done_twice(owned[task], all_pools)
    result = {
        'pools': pools, 'volumes': volumes, 'clusters': clusters,
        'managers_per_cluster': managers,
        'managers': figures, 'seeded_rows': seeded.rows,
        'coordination': bool(coordination_url),
        'pools_done_twice': twice, 'all_pools_covered': covered,
        'per_pool': baseline}
    result['worst'] = {}
    for key in ('replenish', 'sync_run', 'sync_task'):
        result['worst'][key] = {
            field: _worst(figures, key, field)
            for field in ('db_statements', 'coordination_round_trips',
                          'cinder_requests', 'wall_s', 'cpu_s')}
    return result


def grid_points(pool_counts):
    """``(pools, clusters, managers)``: 4 clusters only at the largest
    pool count (at least 4 pools)."""
    points = []
    largest = max(pool_counts)
    for pools in pool_counts:
        for clusters in CLUSTERS:
            if clusters > 1 and (pools != largest or pools < clusters):
                continue
            for managers in MANAGERS:
                points.append((pools, clusters, managers))
    return points


def run_grid(sim, workdir, pool_counts, volumes, coordination_url=None,
             say=None, label=''):
    run_id = uuid.uuid4().hex[:8]
    results = []
    for pools, clusters, managers in grid_points(pool_counts):
        if say:
            say('scale grid %s: %d pools, %d volumes, %d cluster(s), %d '
                'manager(s) each' % (label, pools, volumes, clusters,
                                     managers))
        results.append(measure_point(sim, workdir, pools, volumes, clusters,
                                     managers, run_id, coordination_url,
                                     per_pool=(managers == 1)))
    return results


# -- 2. the idle manager process ---------------------------------------------

def idle_manager(sim, transport_url, workdir, url, window, pools=IDLE_POOLS,
                 per_pool=IDLE_VOLUMES_PER_POOL, coordination_url=None,
                 warmup_timeout=900.0, sample=1.0):
    """A real manager process on ``url`` with ``pools`` full pools of
    ``per_pool`` volumes at the default intervals: CPU and RSS over
    ``window`` seconds once its first sync has finished."""
    import psutil

    from volume_pool.bench import manager_proc
    cluster = 'scale-idle-%s' % uuid.uuid4().hex[:8]
    engine = sa.create_engine(url)
    try:
        migration.upgrade(engine=engine)
        names = ['p%04d' % n for n in range(pools)]
        seeded = seed(sim, engine, dict.fromkeys(names, (cluster, per_pool)))
    finally:
        engine.dispose()
    options = config.CONF.volume_pool
    intervals = {'replenish_interval': options.replenish_interval,
                 'sync_interval': options.sync_interval}
    text = manager_proc.config_text(
        host='scale-idle', transport_url=transport_url, connection=url,
        cinder_section=cinder_handles.cinder_section(sim.endpoint,
                                                     sim.project_id),
        pools={n: {'snapshot_id': seeded.snapshots[n], 'target': per_pool}
               for n in names},
        volume_pool_options=dict(intervals))
    text = text.replace('[DEFAULT]\n', '[DEFAULT]\ncluster = %s\n' % cluster,
                        1)
    if coordination_url:
        text += '[coordination]\nbackend_url = %s\n' % coordination_url
    manager = manager_proc.ManagerProcess(workdir, 'scale-idle', text)
    started = time.monotonic()
    manager.start()
    try:
        manager.wait_until(lambda: 'Sync: ' in manager.log_tail(10 ** 6),
                           timeout=warmup_timeout, what='the first sync')
        warmup = time.monotonic() - started
        process = psutil.Process(manager.proc.pid)
        before = process.cpu_times()
        began = time.monotonic()
        rss = process.memory_info().rss
        while time.monotonic() - began < window:
            time.sleep(min(sample, max(0.0, window -
                                       (time.monotonic() - began))))
            rss = max(rss, process.memory_info().rss)
        after = process.cpu_times()
        elapsed = time.monotonic() - began
        cpu = (after.user + after.system) - (before.user + before.system)
        log = manager.log_tail(10 ** 7)
        return dict(intervals, pools=pools, volumes=pools * per_pool,
                    seeded_rows=seeded.rows,
                    coordination=bool(coordination_url),
                    warmup_s=round(warmup, 1), window_s=round(elapsed, 1),
                    cpu_s=round(cpu, 3),
                    core_percent=round(100.0 * cpu / elapsed, 3),
                    rss_mb_max=round(rss / 2 ** 20, 1),
                    syncs_logged=log.count('Sync: '))
    finally:
        manager.stop()
        seeded.remove(sim)


# -- 3. claims beside the table's size ---------------------------------------

def claim_p50(sim, cinder, urls, tables=CLAIM_TABLES, claims_each=CLAIMS,
              warmup=CLAIM_WARMUP, blocks=CLAIM_BLOCKS):
    """Claim p50 (ms) from one pool with each table size, in process.

    Each table size has a database of its own (``urls``, one per entry of
    ``tables``), seeded first; then the claims alternate between them in
    ``blocks`` blocks each, so a drift of the machine or the aftermath of
    the seeding (the database flushing 100,000 new rows) weighs on both
    sizes alike.  Only the claimed pool's volumes are in the simulator
    (the claim reads one row and renames one volume); every row is in the
    table.  After each claim one volume and its row are added back,
    untimed, so the table keeps its size and every claim is a hit.
    """
    claimer = claims.Claimer(cinder, stats.ClaimStats(), host='bench-scale')
    setups, seeded_all = [], []
    with data_layers(urls) as layers:
        try:
            for layer, (pools, per_pool) in zip(layers, tables, strict=True):
                with in_layer(layer):
                    engine = db_api.get_engine()
                    names = ['claim-p%04d' % n for n in range(pools)]
                    seeded = seed(sim, engine,
                                  dict.fromkeys(names, (None, per_pool)),
                                  in_simulator={names[0]})
                    seeded_all.append(seeded)
                    analyze(engine)
                    checkpoint(engine)
                    spec = pool_spec.PoolSpec(
                        name=names[0], cluster=None,
                        snapshot_id=seeded.snapshots[names[0]],
                        target=per_pool)
                    setups.append({'layer': layer, 'spec': spec,
                                   'pools': pools, 'rows': pools * per_pool,
                                   'durations': [], 'misses': 0})
            per_block = max(1, claims_each // blocks)
            for block in range(blocks):
                for setup in setups:
                    with in_layer(setup['layer']):
                        _claims(sim, claimer, setup, seeded_all,
                                per_block + (warmup if block == 0 else 0),
                                warmup if block == 0 else 0)
            figures = []
            for setup in setups:
                with in_layer(setup['layer']):
                    rows = _count(db_api.get_engine())
                figures.append({
                    'pools': setup['pools'], 'rows': setup['rows'],
                    'rows_after': rows, 'claims': len(setup['durations']),
                    'misses': setup['misses'],
                    'p50_ms': round(1000 * statistics.median(
                        setup['durations']), 3)})
        finally:
            for seeded in seeded_all:
                seeded.remove(sim)
    return figures


def _claims(sim, claimer, setup, seeded_all, count, untimed):
    """``count`` claims of the setup's pool, the first ``untimed`` not
    timed; each claimed volume is replaced, untimed."""
    spec = setup['spec']
    engine = db_api.get_engine()
    for index in range(count):
        started = time.perf_counter()
        answer = claimer.claim(claim_request.ClaimRequest(
            spec, name='scale-claim-%d' % index, hold=CLAIM_HOLD))
        elapsed = time.perf_counter() - started
        if answer['source'] != 'pool':
            setup['misses'] += 1
        if index >= untimed:
            setup['durations'].append(elapsed)
        seeded_all[0].volume_ids.append(
            seed_one(sim, engine, spec.name, spec.snapshot_id))


def checkpoint(engine):
    """PostgreSQL: write the seeded rows out now (a CHECKPOINT), not
    while the claims are timed; a no-op elsewhere or without the right
    to."""
    if engine.dialect.name != 'postgresql':
        return
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql('CHECKPOINT')
    except sa.exc.DBAPIError:
        pass


def _count(engine):
    with engine.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(
            models.PoolVolume.__table__)).scalar()


def seed_one(sim, engine, pool, snapshot_id):
    """One more available volume and its row in ``pool`` (no cluster)."""
    row = seeding.row_values(pool, None, snapshot_id, host='bench-seed')
    row['volume_id'] = sim.add_volume(
        size=1, name=row['name'], snapshot_id=snapshot_id,
        metadata=vp_cinder.pool_tags(pool, None, row['request_id'],
                                     db_deployment.identity(engine)))
    seeding.insert_rows([row], engine)
    return row['volume_id']


def claim_ratio(figures):
    small, large = figures[0], figures[-1]
    return {'rows_small': small['rows'], 'rows_large': large['rows'],
            'p50_small_ms': small['p50_ms'], 'p50_large_ms': large['p50_ms'],
            'ratio': (round(large['p50_ms'] / small['p50_ms'], 3)
                      if small['p50_ms'] else None),
            'sizes': figures}


# -- the part ----------------------------------------------------------------

def run(sim, cinder, transport_url, workdir, *, pool_counts, volumes,
        backends, idle_window, coordination_url, say=None):
    """The whole part over ``backends``; the idle manager on MariaDB (the
    first backend if MariaDB is not among them), skipped with a window of
    0."""
    say = say or (lambda text: None)
    results = {'pool_counts': list(pool_counts), 'volumes': volumes,
               'backends': list(backends),
               'coordination_url': coordination_url,
               'grid': [], 'claims': []}
    with private_namespace(coordination_url) as url:
        _run(sim, cinder, transport_url, workdir, results, url,
             pool_counts=pool_counts, volumes=volumes, backends=backends,
             idle_window=idle_window, say=say)
    return results


@contextlib.contextmanager
def private_namespace(url):
    """``url`` with a tooz key namespace of this run's own, emptied at the
    end.  Every grid point makes cluster groups; a manager reads every
    cluster group of its namespace each refresh, so groups left by other
    runs would be measured as this run's cost."""
    if not url:
        yield url
        return
    import redis
    namespace = 'vp-bench-%s' % uuid.uuid4().hex[:8]
    yield '%s%snamespace=%s' % (url, '&' if '?' in url else '?', namespace)
    client = redis.Redis.from_url(url.split('?', 1)[0])
    try:
        keys = list(client.scan_iter(match=namespace + '*'))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def _run(sim, cinder, transport_url, workdir, results, coordination_url, *,
         pool_counts, volumes, backends, idle_window, say):
    for backend in backends:
        label = services.BACKEND_LABELS[backend]
        with services.database(backend, workdir) as url, \
                using_database(url):
            for point in run_grid(sim, workdir, pool_counts, volumes,
                                  coordination_url, say=say, label=label):
                point.update(backend=backend, label=label)
                results['grid'].append(point)
            say('scale: claim p50 with %s rows on %s' % (
                ' and '.join(str(p * v) for p, v in CLAIM_TABLES), label))
            with services.database(backend, workdir) as small, \
                    services.database(backend, workdir) as large:
                claim = claim_ratio(claim_p50(sim, cinder, [small, large]))
            claim.update(backend=backend, label=label)
            results['claims'].append(claim)
    if idle_window > 0:
        backend = 'mysql' if 'mysql' in backends else backends[0]
        say('scale: an idle manager with %d pools x %d volumes on %s, %ss '
            'window after its first sync' % (
                IDLE_POOLS, IDLE_VOLUMES_PER_POOL,
                services.BACKEND_LABELS[backend], idle_window))
        with services.database(backend, workdir) as url:
            idle = idle_manager(sim, transport_url, workdir, url,
                                idle_window,
                                coordination_url=coordination_url)
        idle.update(backend=backend,
                    label=services.BACKEND_LABELS[backend])
        results['idle'] = idle
