"""A steady-state sync on a real Cinder at scale: what it costs Cinder.

``python -m volume_pool.bench.real_sync`` (not in CI: at its full size it
seeds 100,000 volumes and runs about half an hour).

1. A real Cinder (:class:`volume_pool.fixtures.local_cinder.LocalCinder`:
   one cinder-api worker, fake driver, the machine's MariaDB) and the
   managers' database on PostgreSQL, so that mariadbd's CPU is Cinder's.
2. Seeding through Cinder's own database, not its API (a create takes
   about a second): one volume is made through the API from a snapshot,
   and its ``volumes`` row is copied with new ids -- ``--pool-volumes``
   pool volumes, each with the four pool tags (pool, cluster, request,
   deployment) in ``volume_metadata``, and ``--other-volumes`` volumes with
   no metadata (claimed volumes, which keep no pool tag), shuffled, their
   ``created_at``/``updated_at`` spread over the last month.  Each pool
   volume gets its ``available`` row in the pool table: every pool is
   full, a steady state.
3. Measured, all CPU read off ``/proc``: the background (Cinder's services
   and the machine, no manager running); one full listing of the cluster
   in this process (wall, requests, cinder-api and mariadbd CPU); a
   single-volume GET's latency with nothing else running; then, per mode
   (``after``: ``full_sync_interval`` as given; ``before``: 0, every sync
   lists in full), ``--managers`` manager processes of one cluster with
   Redis membership, started ``--stagger`` seconds apart, over
   ``--intervals`` sync intervals: each sync's wall time (the manager's
   log: the periodic task's start to its ``Sync:`` line), the requests
   Cinder logged, manager CPU, and cinder-api + mariadbd CPU per
   ``sync_interval`` for the cluster, less the background; ``--churn``
   pool volumes have their ``updated_at`` moved in Cinder's database each
   interval (what claims and refills change).  Then, over
   ``--probe-intervals`` more intervals, GETs at ``--probe-rate`` a second,
   split by whether a sync task ran when each was sent.
"""

import volume_pool.cmd  # noqa: F401  (first: no eventlet, threading)

# isort: split

import argparse
import contextlib
import datetime
import json
import os
import random
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid

MODES = ('after', 'before')
CLUSTER = 'bench-real-sync'
MANAGER_USER = 'volume-pool'
PROBE_USER = 'bench-probe'
LISTING_USER = 'bench-listing'
# Cinder's DATETIME columns are whole seconds; volumes are spread over
# this many seconds before now.
AGE_SPREAD = 30 * 24 * 3600
_CHUNK = 2000

_STAMP = re.compile(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) ')
_ACCESS = re.compile(r'\[(?P<ctx>[^\]]*)\] \S+ "(?P<method>[A-Z]+) '
                     r'(?P<path>\S+) HTTP/1\.[01]" status: (?P<status>\d+)'
                     r'\s+len: (?P<len>\d+) time: (?P<time>[\d.]+)')
_SYNC_START = re.compile(r'Running periodic task \S+\.sync\b(?!_)')
_CHANGES = re.compile(r'lists the changes: (\d+) volumes changed')


# -- arguments ---------------------------------------------------------------

def _positive(kind):
    def parse(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError('expected > 0: %r' % text)
        return value
    return parse


def _modes(text):
    values = [v.strip() for v in text.split(',') if v.strip()]
    if not values or set(values) - set(MODES):
        raise argparse.ArgumentTypeError('choose from %s (got %s)'
                                         % (','.join(MODES), text))
    return values


def parse_cli(argv):
    parser = argparse.ArgumentParser(
        prog='python -m volume_pool.bench.real_sync',
        description='A steady-state sync of one cluster on a real Cinder '
                    'at scale: seeds Cinder through its database, runs '
                    'manager processes, measures each sync and what it '
                    'costs cinder-api and MariaDB.')
    add = parser.add_argument
    add('--pool-volumes', type=_positive(int), default=20000,
        help='Pool volumes, tagged for the pools of one cluster '
             '(default: %(default)s).')
    add('--other-volumes', type=int, default=80000,
        help='Volumes of the same Cinder project without pool tags, as '
             'claimed volumes are (default: %(default)s).')
    add('--pools', type=_positive(int), default=1000,
        help='Pools the pool volumes are spread over (default: '
             '%(default)s).')
    add('--managers', type=_positive(int), default=3,
        help='Manager processes of the cluster (default: %(default)s).')
    add('--sync-interval', type=_positive(int), default=60,
        help='[volume_pool] sync_interval, seconds (default: '
             '%(default)s).')
    add('--full-sync-interval', type=_positive(int), default=3600,
        help='[volume_pool] full_sync_interval of the "after" mode '
             '(default: %(default)s).')
    add('--modes', type=_modes, default=list(MODES),
        help='after: listings of the changes between full ones; before: '
             'full_sync_interval 0, every sync lists in full (default: '
             'after,before).')
    add('--intervals', type=_positive(int), default=5,
        help='Sync intervals the CPU and the syncs are measured over, per '
             'mode (default: %(default)s).')
    add('--probe-intervals', type=int, default=3,
        help='Sync intervals of single-volume GETs after that, per mode '
             '(default: %(default)s; 0: none).')
    add('--probe-rate', type=_positive(float), default=5.0,
        help='GETs a second (default: %(default)s).')
    add('--idle-probe-seconds', type=float, default=40.0,
        help='Seconds of GETs with no manager running (default: '
             '%(default)s).')
    add('--baseline-seconds', type=_positive(float), default=60.0,
        help='Seconds the background CPU is read over, no manager '
             'running (default: %(default)s).')
    add('--churn', type=int, default=20,
        help='Pool volumes whose updated_at moves in each interval '
             '(default: %(default)s).')
    add('--stagger', type=float, default=None,
        help='Seconds between two manager starts [default: '
             'sync_interval / managers].')
    add('--full-listings', type=int, default=2,
        help='Full listings of the cluster timed in this process before '
             'the managers start (default: %(default)s).')
    add('--coordination-url', default=None, metavar='URL',
        help='tooz backend of the managers, given a namespace of the '
             'run\'s own [default: the machine\'s Redis].')
    add('--json', metavar='PATH', default=None,
        help='Where the figures go [default: '
             'bench-results/real-sync-<UTC time>.json].')
    args = parser.parse_args(argv)
    if args.other_volumes < 0 or args.churn < 0 or args.probe_intervals < 0:
        parser.error('--other-volumes, --churn and --probe-intervals must '
                     'be >= 0')
    if args.pools > args.pool_volumes:
        parser.error('--pools must be at most --pool-volumes')
    if args.churn > args.pool_volumes:
        parser.error('--churn must be at most --pool-volumes')
    if args.stagger is None:
        args.stagger = args.sync_interval / args.managers
    return args


# -- logs --------------------------------------------------------------------

def _stamp(line):
    """A log line's time (Unix seconds, the machine's local time, as both
    oslo.log and eventlet write it), or None."""
    found = _STAMP.match(line)
    if not found:
        return None
    return datetime.datetime.strptime(
        found.group(1), '%Y-%m-%d %H:%M:%S.%f').timestamp()


def sync_runs(log_text):
    """The sync task's runs in a manager's log: ``[{start, end, wall_s,
    kind ('full' or 'changes'), changed}]``.  A run starts at oslo.service's
    "Running periodic task ... sync" (DEBUG) and ends at the manager's
    ``Sync:`` line; a run with no line about listing the changes listed in
    full."""
    runs, current = [], None
    for line in log_text.splitlines():
        moment = _stamp(line)
        if moment is None:
            continue
        if _SYNC_START.search(line):
            current = {'start': moment, 'kind': 'full', 'changed': None}
            continue
        if current is None:
            continue
        changes = _CHANGES.search(line)
        if changes:
            current['kind'] = 'changes'
            current['changed'] = int(changes.group(1))
        elif ' volume_pool.manager ' in line and 'Sync: ' in line:
            current['end'] = moment
            current['wall_s'] = round(moment - current['start'], 3)
            runs.append(current)
            current = None
    return runs


def api_requests(log_text, start=None, end=None):
    """Requests cinder-api logged (eventlet's access lines) that ended
    within ``[start, end)``: ``[{end, start, time_s, user, method, path,
    status}]``; ``start`` of a request is its end less the time it
    took."""
    found = []
    for line in log_text.splitlines():
        access = _ACCESS.search(line)
        if not access:
            continue
        moment = _stamp(line)
        if moment is None or (start is not None and moment < start) or (
                end is not None and moment >= end):
            continue
        context = access.group('ctx').split()
        took = float(access.group('time'))
        found.append({'end': moment, 'start': moment - took,
                      'time_s': took,
                      'user': context[2] if len(context) > 2 else None,
                      'method': access.group('method'),
                      'path': access.group('path'),
                      'status': int(access.group('status'))})
    return found


def overlaps(moment, duration, windows):
    """True when ``[moment, moment + duration]`` meets one of
    ``windows`` (``(start, end)`` pairs)."""
    return any(moment <= end and moment + duration >= start
               for start, end in windows)


# -- CPU ---------------------------------------------------------------------

class CpuTimeline:
    """CPU seconds of named groups of processes, sampled in a thread."""

    def __init__(self, groups, interval=0.25):
        """``groups``: ``{name: [psutil.Process]}``."""
        self._groups = groups
        self._interval = interval
        self.samples = []  # (time, {name: cpu seconds})
        self._stop = threading.Event()
        self._thread = None

    def read(self):
        import psutil
        figures = {}
        for name, processes in self._groups.items():
            total = 0.0
            for process in processes:
                try:
                    times = process.cpu_times()
                except psutil.NoSuchProcess:
                    continue
                total += times.user + times.system
            figures[name] = total
        return figures

    def start(self):
        self.samples.append((time.time(), self.read()))

        def sample():
            while not self._stop.wait(self._interval):
                self.samples.append((time.time(), self.read()))
        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join()
        self.samples.append((time.time(), self.read()))

    def at(self, moment, names):
        return cpu_at(self.samples, moment, names)

    def between(self, start, end, names):
        return self.at(end, names) - self.at(start, names)


def cpu_at(samples, moment, names):
    """CPU seconds of ``names`` together at ``moment``, interpolated
    between the two samples around it (clamped to the first and last)."""
    def total(figures):
        return sum(figures.get(name, 0.0) for name in names)
    if moment <= samples[0][0]:
        return total(samples[0][1])
    for (t0, f0), (t1, f1) in zip(samples, samples[1:], strict=False):
        if t0 <= moment <= t1:
            if t1 == t0:
                return total(f1)
            share = (moment - t0) / (t1 - t0)
            return total(f0) + share * (total(f1) - total(f0))
    return total(samples[-1][1])


def _processes(local, managers=()):
    """``{group: [psutil.Process]}``: cinder-api with its workers, the
    other Cinder services, mariadbd, each manager."""
    import psutil
    api = psutil.Process(local.api_group())
    groups = {'cinder-api': [api] + api.children(recursive=True)}
    for name in ('cinder-scheduler', 'cinder-volume'):
        with open(os.path.join(local.state_dir, '%s.pid' % name)) as pid:
            groups[name] = [psutil.Process(int(pid.read().strip()))]
    groups['mariadbd'] = [p for p in psutil.process_iter(['name'])
                          if p.info['name'] in ('mariadbd', 'mysqld')]
    for manager in managers:
        groups[manager.name] = [psutil.Process(manager.proc.pid)]
    return groups


# -- seeding -----------------------------------------------------------------

def pool_names(pools):
    return ['rs-p%04d' % n for n in range(pools)]


def plan_rows(pools, pool_volumes, snapshot_id, cluster):
    """The pool table's rows, spread evenly over ``pools`` (their volume
    ids set when Cinder's rows are made)."""
    from volume_pool.bench import scale
    from volume_pool.fixtures import seeding
    rows = []
    for name, count in zip(pools, scale.spread(pool_volumes, len(pools)),
                           strict=True):
        for _ in range(count):
            row = seeding.row_values(name, None, snapshot_id,
                                     cluster=cluster, host='bench-seed')
            row['volume_id'] = str(uuid.uuid4())
            rows.append(row)
    return rows


def cinder_rows(template, pool_rows, others, deployment, now,
                rng=random):
    """``(volumes rows, volume_metadata rows)`` copied from ``template``
    (a ``volumes`` row as a dict): one per pool row, carrying the pool's
    tags, and ``others`` with no metadata; shuffled, with creation and
    update times spread over the ``AGE_SPREAD`` before ``now``."""
    from volume_pool import cinder as vp_cinder
    kinds = [('pool', row) for row in pool_rows] + [('other', n)
                                                    for n in range(others)]
    rng.shuffle(kinds)
    volumes, metadata = [], []
    for kind, row in kinds:
        created = now - datetime.timedelta(
            seconds=rng.randint(60, AGE_SPREAD))
        volume = dict(template, created_at=created, updated_at=created
                      + datetime.timedelta(seconds=rng.randint(1, 30)),
                      scheduled_at=created, launched_at=created)
        if kind == 'pool':
            volume.update(id=row['volume_id'], display_name=row['name'],
                          snapshot_id=row['snapshot_id'])
            tags = vp_cinder.pool_tags(row['pool'], row['cluster'] or None,
                                       row['request_id'], deployment)
            metadata.extend({'created_at': created, 'updated_at': None,
                             'deleted_at': None, 'deleted': False,
                             'key': key, 'value': value,
                             'volume_id': row['volume_id']}
                            for key, value in tags.items())
        else:
            volume.update(id=str(uuid.uuid4()),
                          display_name='claimed-%06d' % row)
        volumes.append(volume)
    return volumes, metadata


def seed_cinder(db_url, template_id, pool_rows, others, deployment):
    """Copy the template volume's row in Cinder's database; returns the
    seconds it took."""
    import sqlalchemy as sa
    started = time.monotonic()
    engine = sa.create_engine(db_url)
    try:
        meta = sa.MetaData()
        volumes = sa.Table('volumes', meta, autoload_with=engine)
        volume_metadata = sa.Table('volume_metadata', meta,
                                   autoload_with=engine)
        with engine.connect() as connection:
            template = dict(connection.execute(
                sa.select(volumes).where(volumes.c.id == template_id))
                .mappings().one())
            now = connection.execute(sa.text('SELECT UTC_TIMESTAMP()')
                                     ).scalar()
        vol_rows, meta_rows = cinder_rows(template, pool_rows, others,
                                          deployment, now)
        for table, rows in ((volumes, vol_rows), (volume_metadata,
                                                  meta_rows)):
            for first in range(0, len(rows), _CHUNK):
                with engine.begin() as connection:
                    connection.execute(table.insert(),
                                       rows[first:first + _CHUNK])
        with engine.connect() as connection:
            for name in ('volumes', 'volume_metadata'):
                connection.exec_driver_sql('ANALYZE TABLE %s'
                                           % name).fetchall()
    finally:
        engine.dispose()
    return time.monotonic() - started


def touch(db_url, volume_ids):
    """Move ``updated_at`` of these volumes to now, in Cinder's database
    (UTC, as Cinder writes it)."""
    import sqlalchemy as sa
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text('UPDATE volumes SET updated_at = UTC_TIMESTAMP() '
                        'WHERE id IN :ids').bindparams(
                    sa.bindparam('ids', expanding=True)),
                {'ids': list(volume_ids)})
    finally:
        engine.dispose()


# -- probes ------------------------------------------------------------------

def probe(client, volume_ids, rate, seconds, rng=random):
    """GET one volume (chosen at random) ``rate`` times a second for
    ``seconds``: ``[(sent at, seconds)]``."""
    samples = []
    gap = 1.0 / rate
    deadline = time.time() + seconds
    due = time.time()
    while due < deadline:
        pause = due - time.time()
        if pause > 0:
            time.sleep(pause)
        sent = time.time()
        began = time.perf_counter()
        client.volumes.get(rng.choice(volume_ids))
        samples.append((sent, time.perf_counter() - began))
        due += gap
    return samples


def latency(durations):
    from volume_pool.bench import measure
    figures = measure.summarize(durations, 1.0)
    return {key: figures[key] for key in ('count', 'p50_ms', 'p95_ms',
                                          'p99_ms')}


def split_probes(samples, sync_windows, listing_windows):
    """The GETs' latency with no sync task running, during one, and
    during a listing request in Cinder."""
    idle, during, listing = [], [], []
    for sent, took in samples:
        (during if overlaps(sent, took, sync_windows) else idle).append(
            took)
        if overlaps(sent, took, listing_windows):
            listing.append(took)
    return {'between_syncs': latency(idle), 'during_sync': latency(during),
            'during_listing': latency(listing)}


# -- the managers ------------------------------------------------------------

def manager_config(index, *, transport_url, connection, local, pools,
                   snapshot_id, per_pool, options, coordination_url):
    from volume_pool.bench import manager_proc
    from volume_pool.fixtures import cinder_handles
    text = manager_proc.config_text(
        host='rs-m%d' % index, transport_url=transport_url,
        connection=connection,
        cinder_section=cinder_handles.cinder_section(
            local.endpoint, local.project_id, timeout=120,
            user_id=MANAGER_USER),
        pools={name: {'snapshot_id': snapshot_id, 'target': per_pool[name]}
               for name in pools},
        volume_pool_options=options)
    text = text.replace(
        '[DEFAULT]\n', '[DEFAULT]\ncluster = %s\n' % CLUSTER, 1).replace(
        manager_proc.LOG_LEVELS,
        manager_proc.LOG_LEVELS + ',oslo_service.periodic_task=DEBUG', 1)
    if coordination_url:
        text += '[coordination]\nbackend_url = %s\n' % coordination_url
    return text


def start_managers(args, workdir, mode, configs, say):
    from volume_pool.bench import manager_proc
    started = []
    for index, text in enumerate(configs):
        if index:
            time.sleep(args.stagger)
        manager = manager_proc.ManagerProcess(
            workdir, '%s-rs-m%d' % (mode, index), text)
        started.append(manager.start())
        say('%s: manager %d started' % (mode, index))
    return started


def wait_first_syncs(managers, timeout=1800):
    def synced(manager):
        text = manager.log_tail(10 ** 8)
        if sync_runs(text):
            return True
        if 'Sync: ' in text:
            raise RuntimeError('%s logged a sync but not the start of the '
                               'periodic task (oslo_service.periodic_task '
                               'at DEBUG)' % manager.name)
        return False
    for manager in managers:
        manager.wait_until(lambda m=manager: synced(m), timeout=timeout,
                           what='its first sync')


def run_mode(args, mode, local, ctx, say):
    """One mode: the managers, the window, the probes; returns figures."""
    sync_interval = args.sync_interval
    options = {'sync_interval': sync_interval, 'replenish_interval': 60,
               'periodic_fuzzy_delay': 0,
               'full_sync_interval': (args.full_sync_interval
                                      if mode == 'after' else 0)}
    configs = [manager_config(
        index, transport_url=ctx['transport_url'],
        connection=ctx['pool_db_url'], local=local, pools=ctx['pools'],
        snapshot_id=ctx['snapshot_id'], per_pool=ctx['per_pool'],
        options=options, coordination_url=ctx['coordination_url'])
        for index in range(args.managers)]
    say('%s: %d managers, sync_interval %ds, full_sync_interval %ds'
        % (mode, args.managers, sync_interval,
           options['full_sync_interval']))
    began = time.time()
    managers = start_managers(args, ctx['workdir'], mode, configs, say)
    try:
        wait_first_syncs(managers)
        first = [sync_runs(m.log_tail(10 ** 8))[0] for m in managers]
        say('%s: first syncs took %s s' % (
            mode, ', '.join(str(run['wall_s']) for run in first)))
        # The window starts after the last first sync, when the cluster
        # is in its steady state.
        time.sleep(2)
        timeline = CpuTimeline(_processes(local, managers)).start()
        window_start = time.time()
        window = args.intervals * sync_interval
        churned = []
        churn_stop = threading.Event()

        def churn():
            due = window_start + sync_interval / 2.0
            while not churn_stop.wait(max(0.0, due - time.time())):
                if args.churn:
                    ids = random.sample(ctx['pool_volume_ids'], args.churn)
                    touch(ctx['cinder_db_url'], ids)
                    churned.append(time.time())
                due += sync_interval
        churner = threading.Thread(target=churn, daemon=True)
        churner.start()
        say('%s: %d intervals of %ds measured' % (mode, args.intervals,
                                                  sync_interval))
        time.sleep(window)
        window_end = time.time()
        probe_samples = []
        if args.probe_intervals:
            say('%s: GETs at %s/s over %d intervals' % (
                mode, args.probe_rate, args.probe_intervals))
            probe_samples = probe(ctx['probe_client'], ctx['probe_ids'],
                                  args.probe_rate,
                                  args.probe_intervals * sync_interval)
        churn_stop.set()
        churner.join()
        timeline.stop()
        probe_end = time.time()
        logs = {m.name: m.log_tail(10 ** 8) for m in managers}
        api_log = local.api_log()
    finally:
        for manager in managers:
            manager.stop()
    return mode_figures(
        args, mode, options, timeline, logs, api_log, ctx['background'],
        began, window_start, window_end, probe_end, probe_samples,
        churned, first)


def mode_figures(args, mode, options, timeline, logs, api_log, background,
                 began, window_start, window_end, probe_end, probe_samples,
                 churned, first):
    sync_interval = args.sync_interval
    window = window_end - window_start
    runs = []
    for name, text in logs.items():
        for run in sync_runs(text):
            run['manager'] = name
            runs.append(run)
    in_window = [r for r in runs if window_start <= r['start'] < window_end]
    requests = api_requests(api_log, window_start, window_end)
    ours = [r for r in requests if r['user'] == MANAGER_USER]
    listings = [r for r in ours if '/volumes/detail' in r['path']]
    cinder_db = ('cinder-api', 'mariadbd')
    used = {name: timeline.between(window_start, window_end, [name])
            for name in timeline.samples[0][1]}
    rate = background['per_s']
    net = sum(used[n] for n in cinder_db) - (
        rate['cinder-api'] + rate['mariadbd']) * window
    managers = list(logs)
    per_sync, per_sync_api, per_sync_db = [], [], []
    for run in in_window:
        start, end = run['start'] - 0.25, run['end'] + 0.25
        api = (timeline.between(start, end, ['cinder-api']) -
               rate['cinder-api'] * (end - start))
        db = (timeline.between(start, end, ['mariadbd']) -
              rate['mariadbd'] * (end - start))
        per_sync_api.append(api)
        per_sync_db.append(db)
        per_sync.append(api + db)
    walls = [r['wall_s'] for r in in_window]
    figures = {
        'mode': mode, 'options': options,
        'first_syncs_s': [r['wall_s'] for r in first],
        'first_sync_kinds': [r['kind'] for r in first],
        'startup_to_window_s': round(window_start - began, 1),
        'window_s': round(window, 1),
        'syncs_in_window': len(in_window),
        'sync_kinds': sorted({r['kind'] for r in in_window}),
        'changed_listed': [r['changed'] for r in in_window],
        'sync_wall_s': {'p50': _median(walls), 'max': max(walls or [0]),
                        'all': walls},
        'churn_batches': len(churned),
        'cinder_requests': {
            'managers_total': len(ours),
            'listings': len(listings),
            'per_interval': round(len(ours) * sync_interval / window, 1),
            'listing_server_s_max': max(
                [r['time_s'] for r in listings] or [0]),
            'listing_server_s_sum_per_interval': round(
                sum(r['time_s'] for r in listings) * sync_interval
                / window, 3),
            'paths': _path_counts(ours)},
        'cpu_s_in_window': {k: round(v, 3) for k, v in used.items()},
        'cinder_api_db_cpu_s_per_interval': round(
            net * sync_interval / window, 3),
        'cinder_api_db_cpu_s_per_interval_gross': round(
            sum(used[n] for n in cinder_db) * sync_interval / window, 3),
        'cinder_api_db_cpu_s_per_sync': {
            'p50': _median(per_sync), 'max': round(max(per_sync or [0]), 3),
            'api_p50': _median(per_sync_api), 'db_p50': _median(per_sync_db),
            'all': [round(v, 3) for v in per_sync]},
        'manager_cpu_s_per_interval': round(
            sum(used[m] for m in managers) * sync_interval / window, 3),
    }
    if probe_samples:
        windows = [(r['start'], r['end']) for r in runs]
        listing_windows = [
            (r['start'], r['end']) for r in api_requests(
                api_log, window_end, probe_end + 1)
            if r['user'] == MANAGER_USER and '/volumes/detail' in r['path']]
        figures['probes'] = split_probes(probe_samples, windows,
                                         listing_windows)
    return figures


def chunk_rates(samples, chunk):
    """``{name: [CPU seconds a minute over each chunk of seconds]}``:
    how much the background moves."""
    start, end = samples[0][0], samples[-1][0]
    rates = {name: [] for name in samples[0][1]}
    moment = start
    while moment + chunk <= end + 1e-6:
        for name in rates:
            used = (cpu_at(samples, moment + chunk, [name]) -
                    cpu_at(samples, moment, [name]))
            rates[name].append(round(used * 60.0 / chunk, 2))
        moment += chunk
    return rates


def _median(values):
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return round(ordered[middle], 3)
    return round((ordered[middle - 1] + ordered[middle]) / 2.0, 3)


def _path_counts(requests):
    counts = {}
    for request in requests:
        path = request['path']
        if '/volumes/detail' in path:
            if 'updated_at' in path:
                key = 'list changes'
            elif 'volume_pool_lease' in path:
                key = 'list leases'
            else:
                key = 'list cluster'
        else:
            key = '%s %s' % (request['method'], re.sub(
                r'[0-9a-f-]{36}', '{id}', path.split('?')[0]))
        counts[key] = counts.get(key, 0) + 1
    return counts


# -- the run -----------------------------------------------------------------

def full_listing(local, cinder, timeline, cluster):
    """One listing of the cluster's pool volumes in this process."""
    from volume_pool import cinder as vp_cinder
    start = time.time()
    listed = cinder.list_volumes(
        {vp_cinder.TAG_CLUSTER: vp_cinder.cluster_tag(cluster)})
    end = time.time()
    time.sleep(0.5)  # the last sample after the answer
    api = [r for r in api_requests(local.api_log(), start, end + 1)
           if r['user'] == LISTING_USER and r['start'] >= start - 0.01]
    return {'volumes': len(listed), 'wall_s': round(end - start, 2),
            'requests': len(api),
            'server_s': round(sum(r['time_s'] for r in api), 2),
            'cinder_api_cpu_s': round(timeline.between(
                start, end + 0.25, ['cinder-api']), 2),
            'mariadbd_cpu_s': round(timeline.between(
                start, end + 0.25, ['mariadbd']), 2)}


def run(args, workdir, say):
    import sqlalchemy as sa

    from volume_pool.bench import scale
    from volume_pool.bench import services
    from volume_pool.db import deployment as db_deployment
    from volume_pool.db import migration
    from volume_pool.fixtures import cinder_handles
    from volume_pool.fixtures import local_cinder
    from volume_pool.fixtures import seeding
    from volume_pool.fixtures import services as fixture_services

    total = args.pool_volumes + args.other_volumes
    os.environ['CINDER_QUOTA_VOLUMES'] = str(total + 1000)
    os.environ['CINDER_QUOTA_GIGABYTES'] = str(2 * total + 10000)
    results = {'settings': vars(args).copy(),
               'started_at': _utc_now(), 'cluster': CLUSTER}
    local = local_cinder.LocalCinder()
    with contextlib.ExitStack() as stack:
        say('starting the local Cinder')
        local.start()
        stack.callback(local.stop)
        cinder_db_url = '%s%s' % (fixture_services.MYSQL_ADMIN_URL,
                                  local.env['CINDER_DB'])
        snapshot_id = local.make_snapshot(size=1)
        client = local.client()
        template = client.volumes.create(1, snapshot_id=snapshot_id,
                                         name='template')
        local_cinder.wait_for_status(client.volumes, template.id,
                                     'available')
        pool_db_url = stack.enter_context(services.database('postgresql',
                                                            workdir))
        engine = sa.create_engine(pool_db_url)
        try:
            migration.upgrade(engine=engine)
            deployment = db_deployment.identity(engine)
            pools = pool_names(args.pools)
            rows = plan_rows(pools, args.pool_volumes, snapshot_id, CLUSTER)
            say('seeding %d pool volumes and %d others in Cinder\'s '
                'database' % (args.pool_volumes, args.other_volumes))
            seeded_s = seed_cinder(cinder_db_url, template.id, rows,
                                   args.other_volumes, deployment)
            started = time.monotonic()
            seeding.insert_rows(rows, engine)
            rows_s = time.monotonic() - started
        finally:
            engine.dispose()
        results['seeding'] = {'cinder_s': round(seeded_s, 1),
                              'pool_rows_s': round(rows_s, 1),
                              'volumes': total + 2,
                              'pool_volumes': args.pool_volumes,
                              'metadata_rows': 4 * args.pool_volumes}
        per_pool = {}
        for row in rows:
            per_pool[row['pool']] = per_pool.get(row['pool'], 0) + 1
        say('background CPU over %ss, no manager running'
            % args.baseline_seconds)
        timeline = CpuTimeline(_processes(local)).start()
        time.sleep(args.baseline_seconds)
        timeline.stop()
        first, last = timeline.samples[0], timeline.samples[-1]
        length = last[0] - first[0]
        background = {'window_s': round(length, 1), 'per_s': {
            name: (last[1][name] - first[1][name]) / length
            for name in first[1]}}
        results['background'] = {
            'window_s': background['window_s'],
            'cpu_s_per_min': {name: round(value * 60, 3) for name, value
                              in background['per_s'].items()},
            'cpu_s_per_min_by_10s': chunk_rates(timeline.samples, 10.0)}
        cinder = cinder_handles.make_cinder(
            local.endpoint, local.project_id, timeout=300,
            user_id=LISTING_USER).for_deployment(deployment)
        listings = []
        timeline = CpuTimeline(_processes(local)).start()
        for _ in range(args.full_listings):
            say('a full listing of the cluster in this process')
            listings.append(full_listing(local, cinder, timeline, CLUSTER))
            say('full listing: %s' % listings[-1])
        timeline.stop()
        results['full_listings'] = listings
        probe_client = cinder_handles.noauth_cinder_client(
            local.endpoint, local.project_id, user_id=PROBE_USER)
        pool_volume_ids = [row['volume_id'] for row in rows]
        probe_ids = random.sample(pool_volume_ids,
                                  min(500, len(pool_volume_ids)))
        if args.idle_probe_seconds > 0:
            say('GETs with no manager running, %ss' % args.idle_probe_seconds)
            results['idle_probe'] = latency([
                took for _, took in probe(probe_client, probe_ids,
                                          args.probe_rate,
                                          args.idle_probe_seconds)])
        transport_url = stack.enter_context(services.rabbit_vhost())
        coordination_url = stack.enter_context(scale.private_namespace(
            args.coordination_url or services.REDIS_URL))
        ctx = {'workdir': workdir, 'transport_url': transport_url,
               'pool_db_url': pool_db_url, 'cinder_db_url': cinder_db_url,
               'pools': pools, 'per_pool': per_pool,
               'snapshot_id': snapshot_id,
               'coordination_url': coordination_url,
               'pool_volume_ids': pool_volume_ids, 'probe_ids': probe_ids,
               'probe_client': probe_client, 'background': background}
        results['modes'] = []
        for mode in args.modes:
            results['modes'].append(run_mode(args, mode, local, ctx, say))
            _say_mode(results['modes'][-1], say)
        results['cinder_version'] = _cinder_version()
    results['finished_at'] = _utc_now()
    results['targets'] = targets(results)
    return results


def targets(results):
    """The targets, judged on the ``after`` mode."""
    checks = []
    idle = (results.get('idle_probe') or {}).get('p95_ms')
    for figures in results.get('modes', []):
        if figures['mode'] != 'after':
            continue
        checks.append({'target': 'Cinder API + DB CPU per sync_interval, '
                                 'cluster (s)',
                       'measured': figures[
                           'cinder_api_db_cpu_s_per_interval'],
                       'limit': 2.0})
        checks.append({'target': 'steady-state sync wall time, max (s)',
                       'measured': figures['sync_wall_s']['max'],
                       'limit': 3.0})
        probes = figures.get('probes') or {}
        during = probes.get('during_sync', {})
        between = probes.get('between_syncs', {}).get('p95_ms')
        for label, reference in (('no manager running', idle),
                                 ('between syncs', between)):
            if during.get('p95_ms') and reference:
                checks.append({
                    'target': 'GET p95 during a sync / p95 with %s' % label,
                    'measured': round(during['p95_ms'] / reference, 2),
                    'limit': 2.0})
    for check in checks:
        check['met'] = check['measured'] <= check['limit']
    return checks


def _say_mode(figures, say):
    say('%s: syncs %s (%s), wall p50 %s max %s s; Cinder API + DB CPU per '
        'interval %s s (gross %s); manager CPU per interval %s s; requests '
        'per interval %s; probes %s' % (
            figures['mode'], figures['syncs_in_window'],
            ','.join(figures['sync_kinds']), figures['sync_wall_s']['p50'],
            figures['sync_wall_s']['max'],
            figures['cinder_api_db_cpu_s_per_interval'],
            figures['cinder_api_db_cpu_s_per_interval_gross'],
            figures['manager_cpu_s_per_interval'],
            figures['cinder_requests']['per_interval'],
            json.dumps(figures.get('probes'))))


def _cinder_version():
    from volume_pool.fixtures import local_cinder
    venv = os.environ.get('CINDER_VENV', os.path.join(
        local_cinder.CACHE_DIR, 'cinder-venv'))
    for python in os.listdir(os.path.join(venv, 'lib')):
        site = os.path.join(venv, 'lib', python, 'site-packages')
        for name in os.listdir(site):
            if name.startswith('cinder-') and name.endswith('.dist-info'):
                return name[len('cinder-'):-len('.dist-info')]
    return None


def _utc_now():
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())


def _say(text):
    sys.stderr.write('real-sync: %s\n' % text)
    sys.stderr.flush()


def main(argv=None):
    import logging
    args = parse_cli(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING,
                        format='%(levelname)s %(name)s: %(message)s')
    workdir = tempfile.mkdtemp(prefix='volume-pool-real-sync-')
    path = args.json or os.path.join(
        'bench-results', 'real-sync-%s.json'
        % time.strftime('%Y%m%dT%H%M%SZ', time.gmtime()))
    try:
        results = run(args, workdir, _say)
    except BaseException as exc:
        _say('FAILED: %s: %s (work files kept in %s)'
             % (exc.__class__.__name__, exc, workdir))
        raise
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'w') as out:
        json.dump(results, out, indent=2, sort_keys=True, default=str)
    sys.stdout.write(json.dumps(results['targets'], indent=2) + '\n')
    _say('figures written to %s' % path)
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
