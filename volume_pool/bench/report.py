"""The run's figures: a printed table, the targets they meet or miss, and
the JSON file the docs page is written from."""

import json
import os
import platform
import subprocess
import sys
import time

import psutil

from volume_pool.bench.profile import PHASES

# The targets the benchmark judges its figures by (the Targets table of
# doc/source/benchmark.rst).
# Claim latency over the floor of a safe claim (empty RPC p50 + rename
# p50 + one durable commit's p50 on the same database): p50 for one
# caller alone and at the most callers, p99 at the most callers.
CLAIM_P50_OVER_SAFE_FLOOR_ALONE = 1.3
CLAIM_P50_OVER_SAFE_FLOOR = 1.5
CLAIM_P99_OVER_SAFE_FLOOR = 2.5
# The manager's CPU per claim over its CPU per empty RPC call, at the most
# callers: what the manager adds to the RPC it answers.
CLAIM_CPU_OVER_RPC = 3.0
SYNC_MAX_REQUESTS = 10
SYNC_MIN_SPEEDUP = 50.0
REFILL_MAX_OVER_IDEAL = 1.3
IDLE_MAX_RSS_MB = 120.0
IDLE_MAX_CORE_PERCENT = 1.0
TARGET_BACKENDS = ('mysql', 'postgresql')
# The scale part (--only scale): a replenish run that finds nothing short,
# per manager, whatever the pool count; one Sync.run of the largest pool
# count in one cluster (1000 pools x 20 volumes at full size); the idle
# manager with those pools at the default intervals; a claim's p50 with
# 100,000 rows in the table over its p50 with 100.
SCALE_REPLENISH_MAX_STATEMENTS = 3
SCALE_REPLENISH_MAX_ROUND_TRIPS = 2
SCALE_SYNC_MAX_REQUESTS = 30
SCALE_SYNC_MAX_STATEMENTS = 5
SCALE_IDLE_MAX_CORE_PERCENT = 1.0
SCALE_IDLE_MAX_RSS_MB = 150.0
SCALE_CLAIM_MAX_RATIO = 1.2


def machine():
    """What the figures were measured on."""
    info = {'nproc': os.cpu_count(),
            'memory_gb': round(psutil.virtual_memory().total / 2 ** 30, 1),
            'python': platform.python_version(),
            'platform': platform.platform(),
            'cpu': _cpu_model()}
    try:
        out = subprocess.run(['rabbitmqctl', 'version'], capture_output=True,
                             text=True, timeout=60)
        info['rabbitmq'] = out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        info['rabbitmq'] = None
    return info


def _cpu_model():
    try:
        with open('/proc/cpuinfo') as cpuinfo:
            for line in cpuinfo:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _check(name, value, limit, at_most=True):
    met = None if value is None else (value <= limit if at_most
                                      else value >= limit)
    return {'target': name, 'value': value,
            'limit': ('<= %s' if at_most else '>= %s') % limit, 'met': met}


def targets(results):
    """One entry per target, with the figure it was judged on."""
    checks = []
    for backend in results.get('claim', []):
        if backend['backend'] not in TARGET_BACKENDS:
            continue
        checks.extend(_claim_checks(backend))
    sync = results.get('sync')
    if sync:
        big = max(sync, key=lambda s: (s['volumes'],
                                       s.get('api_latency_ms', 0)))
        where = '%d volumes, API latency %s ms' % (
            big['volumes'], big.get('api_latency_ms', 0))
        checks.append(_check('sync of %s: Cinder requests' % where,
                             big['sync_requests'], SYNC_MAX_REQUESTS))
        checks.append(_check('sync of %s: speed-up over one GET per '
                             'volume' % where,
                             big.get('speedup'), SYNC_MIN_SPEEDUP,
                             at_most=False))
    refill = results.get('refill')
    if refill:
        checks.append(_check('refill of %d / (ceil(%d/%d) x L)' % (
            refill['size'], refill['size'], refill['concurrency']),
            refill['over_ideal'], REFILL_MAX_OVER_IDEAL))
    footprint = results.get('footprint')
    if footprint:
        for manager in footprint['managers']:
            checks.append(_check('idle manager, %d pool(s): RSS MB'
                                 % manager['pools'], manager['rss_mb'],
                                 IDLE_MAX_RSS_MB))
            checks.append(_check('idle manager, %d pool(s): %% of a core'
                                 % manager['pools'],
                                 manager['core_percent'],
                                 IDLE_MAX_CORE_PERCENT))
    if results.get('scale'):
        checks.extend(_scale_checks(results['scale']))
    return checks


def _scale_checks(scale):
    checks = []
    grid = scale.get('grid', [])
    for backend in dict.fromkeys(p['backend'] for p in grid):
        points = [p for p in grid if p['backend'] == backend]
        label = points[0]['label']
        for field, limit, what in (
                ('db_statements', SCALE_REPLENISH_MAX_STATEMENTS,
                 'DB statements'),
                ('coordination_round_trips',
                 SCALE_REPLENISH_MAX_ROUND_TRIPS,
                 'coordination round trips')):
            worst = max(points,
                        key=lambda p: p['worst']['replenish'][field])
            checks.append(_check(
                'scale: replenish, nothing short, %s per manager (worst: '
                '%s, %s)' % (what, label, _where(worst)),
                worst['worst']['replenish'][field], limit))
        single = [p for p in points if p['clusters'] == 1 and
                  p['managers_per_cluster'] == 1]
        if single:
            big = max(single, key=lambda p: p['pools'])
            where = '%d pools x %d volumes, one cluster, %s' % (
                big['pools'], big['volumes'] // big['pools'], label)
            run = big['worst']['sync_run']
            checks.append(_check('scale: Sync.run of %s: Cinder requests'
                                 % where, run['cinder_requests'],
                                 SCALE_SYNC_MAX_REQUESTS))
            checks.append(_check('scale: Sync.run of %s: DB statements'
                                 % where, run['db_statements'],
                                 SCALE_SYNC_MAX_STATEMENTS))
    shared = [p for p in grid if p['managers_per_cluster'] > 1]
    if shared:
        checks.append(_check(
            'scale: pools done twice in one interval (worst grid point, '
            'replenish or sync)',
            max(max(p['pools_done_twice'].values()) for p in shared), 0))
    if grid:
        checks.append(_check(
            'scale: grid points whose managers left a pool undone',
            sum(1 for p in grid if not all(p['all_pools_covered'].values())),
            0))
    for claim in scale.get('claims', []):
        checks.append(_check(
            'scale: claim p50 at %d rows / at %d rows, %s'
            % (claim['rows_large'], claim['rows_small'], claim['label']),
            claim['ratio'], SCALE_CLAIM_MAX_RATIO))
    idle = scale.get('idle')
    if idle:
        where = '%d pools x %d volumes, %s' % (
            idle['pools'], idle['volumes'] // idle['pools'], idle['label'])
        checks.append(_check('scale: idle manager, %s: %% of a core'
                             % where, idle['core_percent'],
                             SCALE_IDLE_MAX_CORE_PERCENT))
        checks.append(_check('scale: idle manager, %s: max RSS MB' % where,
                             idle['rss_mb_max'], SCALE_IDLE_MAX_RSS_MB))
    return checks


def _where(point):
    return '%d pools, %d cluster(s), %d manager(s) each' % (
        point['pools'], point['clusters'], point['managers_per_cluster'])


_SAFE_FLOOR = '(RPC floor + rename + one commit)'


def _claim_checks(backend):
    """The claim targets of one backend: latency at the fewest and the
    most callers over the floor of a safe claim, the manager's CPU at the
    most callers."""
    def where(level):
        return '%s, %d caller%s' % (backend['label'], level['callers'],
                                    '' if level['callers'] == 1 else 's')
    levels = backend['levels']
    alone, top = levels[0], levels[-1]
    checks = []
    if alone is not top:
        checks.append(_check('claim p50 / %s, %s' % (_SAFE_FLOOR,
                                                     where(alone)),
                             alone.get('p50_over_safe_floor'),
                             CLAIM_P50_OVER_SAFE_FLOOR_ALONE))
    checks.append(_check('claim p50 / %s, %s' % (_SAFE_FLOOR, where(top)),
                         top.get('p50_over_safe_floor'),
                         CLAIM_P50_OVER_SAFE_FLOOR))
    checks.append(_check('claim p99 / %s, %s' % (_SAFE_FLOOR, where(top)),
                         top.get('p99_over_safe_floor'),
                         CLAIM_P99_OVER_SAFE_FLOOR))
    checks.append(_check('manager CPU per claim / per empty RPC, '
                         + where(top), top.get('cpu_over_rpc'),
                         CLAIM_CPU_OVER_RPC))
    return checks


def _fmt(value, digits=1):
    if value is None:
        return '-'
    if isinstance(value, float):
        if abs(value) < 1:
            digits = 3
        elif abs(value) < 10:
            digits = 2
        return '%.*f' % (digits, value)
    return str(value)


def _table(title, header, rows):
    widths = [max(len(str(h)), *(len(_fmt(r[i])) for r in rows))
              for i, h in enumerate(header)] if rows else [len(h) for h in
                                                           header]
    def line(cells):
        return '  '.join(cell.rjust(width)
                         for cell, width in zip(cells, widths, strict=True))
    lines = ['', title, '-' * len(title), line(header)]
    lines += [line([_fmt(v) for v in row]) for row in rows]
    return '\n'.join(lines)


def render(results):
    """The human table, section by section."""
    out = []
    claim_rows = []
    for backend in results.get('claim', []) + (
            [results['real_cinder']] if results.get('real_cinder') else []):
        label = backend['label'] + (' / real Cinder'
                                    if backend['cinder'] != 'simulator'
                                    else '')
        for lv in backend['levels']:
            claim_rows.append([
                label, lv['callers'], lv['claim']['p50_ms'],
                lv['claim']['p95_ms'], lv['claim']['p99_ms'],
                lv['claim']['per_s'], lv['empty_rpc']['p50_ms'],
                lv['empty_rpc']['per_s'], lv['rename']['p50_ms'],
                (lv.get('commit') or {}).get('p50_ms'),
                lv['p50_over_floor'], lv['p99_over_floor'],
                lv.get('p50_over_safe_floor'), lv.get('p99_over_safe_floor'),
                lv.get('cpu_over_rpc')])
    if claim_rows:
        out.append(_table(
            'Claims over RabbitMQ RPC (ms; floor = empty RPC p50 + rename '
            'p50, safe = floor + one commit p50, at the same callers)',
            ['backend', 'callers', 'p50', 'p95', 'p99', 'claims/s',
             'rpc p50', 'rpc/s', 'rename p50', 'commit p50', 'p50/floor',
             'p99/floor', 'p50/safe', 'p99/safe', 'cpu/rpc'], claim_rows))
        out.append('safe: the floor of a claim that survives a crash at '
                   'any line, which writes once before the rename.  '
                   'cpu/rpc: the manager\'s CPU per claim over its CPU '
                   'per empty RPC call.')
    cpu_rows = _cpu_rows(results)
    if cpu_rows:
        out.append(_table(
            'CPU per operation, ms, by process (client = this process: RPC '
            'client and simulator); ops/s = %d cores / total'
            % _cores(results),
            ['backend', 'callers', 'operation', 'manager', 'client',
             'broker', 'database', 'cinder', 'total', 'ops/s'], cpu_rows))
    phase_rows = _phase_rows(results)
    if phase_rows:
        out.append(_table(
            'Manager CPU per claim by phase, ms (a py-spy profile of as '
            'many claims again; shares of the measured CPU)',
            ['backend', 'callers', *PHASES, 'flame graph'], phase_rows))
    waits = results.get('rpc_wait')
    if waits:
        out.append(_table(
            'RPC server CPU per call when its method only waits (one '
            'caller; oslo.messaging\'s listener wakes after 1, 2, 4 ms...)',
            ['wait (ms)', 'call (ms)', 'server CPU (ms)'],
            [[w['wait_ms'], w['call_ms'], w['server_cpu_ms']]
             for w in waits]))
    no_pool = results.get('no_pool')
    if no_pool:
        rows = [['simulator, L=%ss' % results['settings']['creation_delay'],
                 no_pool['p50_ms'], no_pool.get('speedup_vs_claim_p50')]]
        real = results.get('real_cinder')
        if real:
            rows.append(['real Cinder (fake driver)',
                         real['no_pool']['p50_ms'],
                         real['speedup_vs_claim_p50']])
        out.append(_table('Without a pool: create from snapshot, wait for '
                          'available (ms)',
                          ['cinder', 'p50', 'speed-up vs claim p50 (1 '
                           'caller)'], rows))
    if results.get('sync'):
        out.append(_table(
            'Sync of one pool (wall s; baseline = one GET per volume)',
            ['volumes', 'API ms', 'requests', 'wall', 'baseline requests',
             'baseline wall', 'requests x', 'speed-up'],
            [[s['volumes'], s.get('api_latency_ms', 0), s['sync_requests'],
              s['sync_wall_s'],
              s.get('baseline_requests'), s.get('baseline_wall_s'),
              s.get('request_ratio'), s.get('speedup')]
             for s in results['sync']]))
    refill = results.get('refill')
    if refill:
        out.append(_table(
            'Refill from empty (s)',
            ['size', 'concurrency', 'L', 'wall', 'ideal', 'wall/ideal',
             'serial wall', 'speed-up'],
            [[refill['size'], refill['concurrency'],
              refill['creation_delay_s'], refill['wall_s'],
              refill['ideal_s'], refill['over_ideal'],
              refill['serial_wall_s'], refill['speedup_vs_serial']]]))
    if results.get('hit_rate'):
        out.append(_table(
            'Hit rate on a bursty trace',
            ['target', 'claims', 'hits', 'hit rate', 'avg ready', 'burst',
             'gap s'],
            [[h['target'], h['claims'], h['hits'], h['hit_rate'],
              h['avg_ready'], h['burst'], h['gap_s']]
             for h in results['hit_rate']]))
    footprint = results.get('footprint')
    if footprint:
        out.append(_table(
            'Idle manager (CPU sampled over %ss, scaled to a minute)'
            % footprint['window_s'],
            ['pools', 'RSS MB', 'threads', 'CPU s/min', '% of a core'],
            [[m['pools'], m['rss_mb'], m['threads'], m['cpu_s_per_min'],
              m['core_percent']] for m in footprint['managers']]))
    if results.get('scale'):
        out.extend(_scale_tables(results['scale']))
    if results.get('real_cinder_error'):
        out.append('\nThe real Cinder part failed: %s'
                   % results['real_cinder_error'])
    checks = results.get('targets', [])
    if checks:
        out.append(_table('Targets', ['target', 'value', 'limit', 'met'],
                          [[c['target'], c['value'], c['limit'],
                            {True: 'yes', False: 'NO', None: '-'}[c['met']]]
                           for c in checks]))
    return '\n'.join(out) + '\n'


def _scale_tables(scale):
    out = []
    rows = []
    for p in scale.get('grid', []):
        worst, base = p['worst'], p.get('per_pool') or {}
        rows.append([
            p['label'], p['pools'], p['volumes'], p['clusters'],
            p['managers_per_cluster'],
            worst['replenish']['db_statements'],
            worst['replenish']['coordination_round_trips'],
            worst['sync_run']['db_statements'],
            worst['sync_run']['cinder_requests'],
            worst['sync_run']['wall_s'],
            worst['sync_task']['db_statements'],
            worst['sync_task']['coordination_round_trips'],
            worst['sync_task']['cinder_requests'],
            worst['sync_task']['wall_s'],
            base.get('db_statements'), base.get('cinder_requests'),
            base.get('wall_s'),
            max(p['pools_done_twice'].values()),
            'yes' if all(p['all_pools_covered'].values()) else 'NO'])
    if rows:
        out.append(_table(
            'Scale: one interval per manager, the worst manager of each '
            'grid point (cluster-wide vs per-pool sync: run = Sync.run, '
            'task = the whole Manager.sync, per-pool = one '
            'Sync.sync_pool per pool)',
            ['backend', 'pools', 'volumes', 'clusters', 'mgrs',
             'repl db', 'repl coord', 'run db', 'run cinder', 'run wall',
             'task db', 'task coord', 'task cinder', 'task wall',
             'per-pool db', 'per-pool cinder', 'per-pool wall', 'twice',
             'covered'], rows))
    claims = scale.get('claims')
    if claims:
        out.append(_table(
            'Scale: claim p50 (ms, in process) by rows in the table',
            ['backend', 'rows', 'p50', 'rows', 'p50', 'ratio'],
            [[c['label'], c['rows_small'], c['p50_small_ms'],
              c['rows_large'], c['p50_large_ms'], c['ratio']]
             for c in claims]))
    idle = scale.get('idle')
    if idle:
        out.append(_table(
            'Scale: idle manager process at the default intervals '
            '(replenish %ss, sync %ss), after its first sync'
            % (idle['replenish_interval'], idle['sync_interval']),
            ['backend', 'pools', 'volumes', 'warm-up s', 'window s',
             'CPU s', '% of a core', 'max RSS MB', 'syncs logged'],
            [[idle['label'], idle['pools'], idle['volumes'],
              idle['warmup_s'], idle['window_s'], idle['cpu_s'],
              idle['core_percent'], idle['rss_mb_max'],
              idle['syncs_logged']]]))
    return out


def _cores(results):
    return results.get('machine', {}).get('nproc') or 1


def _cpu_rows(results):
    rows = []
    cores = _cores(results)
    for backend in results.get('claim', []) + (
            [results['real_cinder']] if results.get('real_cinder') else []):
        for level in backend['levels']:
            for operation, cpu in sorted(
                    level.get('cpu_ms_per_op', {}).items()):
                rows.append([
                    backend['label'], level['callers'], operation,
                    cpu['manager'], cpu['client'], cpu['broker'],
                    cpu['database'], cpu['cinder'], cpu['total'],
                    (round(cores * cpu['ops_per_core_s'])
                     if cpu['ops_per_core_s'] else None)])
    return rows


def _phase_rows(results):
    rows = []
    for backend in results.get('claim', []):
        for level in backend['levels']:
            phases = level.get('manager_cpu_ms_by_phase')
            if phases:
                rows.append([backend['label'], level['callers'],
                             *(phases[phase] for phase in PHASES),
                             level['flame_graph']])
    return rows


def default_json_path():
    return os.path.join('bench-results', 'bench-%s.json'
                        % time.strftime('%Y%m%dT%H%M%SZ', time.gmtime()))


def write_json(results, path):
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    with open(path, 'w') as out:
        json.dump(results, out, indent=2, sort_keys=True, default=str)
        out.write('\n')
    return path


def command_line():
    return ' '.join(['volume-pool-bench'] + sys.argv[1:])
