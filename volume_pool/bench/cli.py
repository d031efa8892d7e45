"""volume-pool-bench: the benchmark the project keeps (``tox -e bench``).

Runs against this machine's real RabbitMQ, MariaDB, PostgreSQL and SQLite
and the project's Cinder API simulator (and, with --with-real-cinder, a
real Cinder started by volume_pool/fixtures/cinder-local.sh), prints a
table, checks the figures against their targets and writes them as JSON,
and draws them as PNG charts beside it.
"""

import volume_pool.cmd  # noqa: F401  (first: no eventlet, threading)

# isort: split

import argparse
import concurrent.futures
import contextlib
import logging
import os
import shutil
import sys
import tempfile
import time

from volume_pool.bench import profile as bench_profile
from volume_pool.bench import services as bench_services

LOG = logging.getLogger(__name__)

DESCRIPTION = ('Benchmark volume-pool against the real RabbitMQ, MariaDB, '
               'PostgreSQL and SQLite and the Cinder simulator: claim '
               'latency and throughput beside the empty-RPC and rename '
               'floor, sync cost beside one GET per volume, refill beside '
               'serial creation, hit rate on a bursty trace, idle '
               'footprint. Prints a table, checks the targets, writes '
               'JSON and draws PNG charts.')

QUICK = {'calls': 64, 'sync_sizes': [100, 1000], 'refill_size': 20,
         'hit_targets': [5, 10], 'bursts': 2, 'gap': 3.0,
         'footprint_pools': [1, 10], 'footprint_window': 5.0,
         'no_pool_samples': 3}
PARTS = ('claim', 'sync', 'refill', 'hitrate', 'footprint')
# Parts run only when --only names them: long, and not in CI.
EXTRA_PARTS = ('scale',)


def _ints(text):
    try:
        values = [int(v) for v in text.split(',') if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError('expected integers: %r' % text)
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError('expected positive integers')
    return values


def _driver(text):
    """``BACKEND=DRIVER``: the SQLAlchemy driver of a backend's URL."""
    backend, _, driver = text.partition('=')
    if backend not in bench_services.DRIVERS or not driver:
        raise argparse.ArgumentTypeError(
            'expected BACKEND=DRIVER, BACKEND one of %s: %r'
            % (','.join(sorted(bench_services.DRIVERS)), text))
    if driver not in bench_services.DRIVERS[backend]:
        raise argparse.ArgumentTypeError(
            '%s drivers: %s (got %s)' % (
                backend, ','.join(bench_services.DRIVERS[backend]), driver))
    return backend, driver


def _names(allowed):
    def parse(text):
        values = [v.strip() for v in text.split(',') if v.strip()]
        bad = sorted(set(values) - set(allowed))
        if bad or not values:
            raise argparse.ArgumentTypeError(
                'choose from %s (got %s)' % (','.join(allowed), text))
        return values
    return parse


def parse_cli(argv):
    parser = argparse.ArgumentParser(
        prog='volume-pool-bench', description=DESCRIPTION,
        epilog='Example: volume-pool-bench --quick; the full run with a '
               'real Cinder: volume-pool-bench --with-real-cinder')
    add = parser.add_argument
    add('--quick', action='store_true',
        help='A short run: %s (explicit options still win).'
             % ', '.join('%s=%s' % item for item in QUICK.items()))
    add('--only', type=_names(PARTS + EXTRA_PARTS), default=list(PARTS),
        help='Comma-separated parts to run (default: %s; "scale", the '
             'periodic tasks\' cost with many pools and managers, runs '
             'only when named: --only scale).' % ','.join(PARTS))
    add('--creation-delay', '-L', type=float, default=1.0, metavar='L',
        help='Seconds the simulated Cinder takes to create a volume (the '
             'path without a pool, refill and hit rate; default: '
             '%(default)s).')
    add('--api-latency', type=float, default=0.0, metavar='MS',
        help='Extra milliseconds the simulator adds to every API request '
             '(default: %(default)s).')
    add('--backends', type=_names(bench_services.BACKENDS),
        default=list(bench_services.BACKENDS),
        help='Databases the claim benchmark runs on (default: '
             'mysql,postgresql,sqlite).')
    add('--callers', type=_ints, default=[1, 8, 32],
        help='Concurrent RPC callers, threads of one client process '
             '(default: 1,8,32).')
    add('--calls', type=int, default=None,
        help='Calls per measurement (empty RPC, rename, claim) and caller '
             'count [default: 800; --quick: %d].' % QUICK['calls'])
    add('--sync-sizes', type=_ints, default=None,
        help='Pool sizes the sync is measured at [default: 100,1000,10000].')
    add('--sync-api-latency', type=float, default=10.0, metavar='MS',
        help='The sync and its baseline also run with this API latency '
             '(a real Cinder answered a GET in about 13 ms here); the sync '
             'targets are judged at it (default: %(default)s).')
    add('--page-size', type=int, default=None,
        help='[cinder] list_page_size for the sync [default: the option '
             'default, 1000].')
    add('--refill-size', type=int, default=None,
        help='Pool target refilled from empty [default: 50].')
    add('--concurrency', type=int, default=None,
        help='[volume_pool] create_concurrency [default: the option '
             'default, 4].')
    add('--poll-interval', type=float, default=0.1,
        help='[volume_pool] create_poll_interval for refill and hit rate '
             '(default: %(default)s; the option defaults to 2 s, sized for '
             'real creation delays).')
    add('--replenish-interval', type=float, default=1.0,
        help='Seconds between replenish runs for refill and hit rate '
             '(default: %(default)s).')
    add('--hit-targets', type=_ints, default=None,
        help='Pool targets of the hit-rate trace [default: 5,10,20].')
    add('--burst', type=int, default=20,
        help='Claims per burst (default: %(default)s).')
    add('--bursts', type=int, default=None,
        help='Bursts in the hit-rate trace [default: 4].')
    add('--gap', type=float, default=None,
        help='Idle seconds after each burst [default: 8 x L].')
    add('--footprint-pools', type=_ints, default=None,
        help='Pool counts of the idle managers [default: 1,10,100].')
    add('--footprint-window', type=float, default=None,
        help='Seconds CPU is sampled over, scaled to a minute '
             '[default: 30].')
    add('--no-pool-samples', type=int, default=None,
        help='Creates timed (at once) for the path without a pool '
             '[default: 5].')
    add('--scale-pools', type=_ints, default=[1, 100, 1000],
        help='scale: pool counts of the grid (default: 1,100,1000; 4 '
             'clusters only at the largest).')
    add('--scale-volumes', type=int, default=20000,
        help='scale: volumes at each grid point, spread evenly over its '
             'pools (default: %(default)s).')
    add('--scale-backends', type=_names(bench_services.BACKENDS),
        default=['mysql', 'postgresql'],
        help='scale: databases of the grid and of the claim p50 at 100 '
             'and 100,000 rows (default: mysql,postgresql).')
    add('--scale-idle-window', type=float, default=330.0, metavar='S',
        help='scale: seconds the idle manager (1000 pools x 20 volumes, '
             'default intervals) is sampled after its first sync; the '
             'default holds the next sync (sync_interval is 300 s); 0 '
             'skips it (default: %(default)s).')
    add('--scale-coordination-url', default=bench_services.REDIS_URL,
        metavar='URL',
        help='scale: the tooz backend of the managers (default: '
             '%(default)s; "" runs them without coordination).')
    add('--database-option', action='append', default=[],
        metavar='KEY=VALUE',
        help='A [database] option of the claim benchmark\'s managers, e.g. '
             'max_pool_size=40 (repeatable; default: the project\'s).')
    add('--driver', type=_driver, action='append', default=[],
        metavar='BACKEND=DRIVER',
        help='The database driver of the claim benchmark, e.g. '
             'mysql=mysqldb (mysqlclient) or postgresql=psycopg (psycopg '
             '3); repeatable [default: mysql=pymysql, '
             'postgresql=psycopg2].')
    add('--with-real-cinder', action='store_true',
        help='Also run the claim path and the path without a pool against '
             'a real Cinder (volume_pool/fixtures/cinder-local.sh; MariaDB).')
    add('--real-cinder-calls', type=int, default=40,
        help='Calls per measurement against the real Cinder (default: '
             '%(default)s).')
    add('--profile', metavar='DIR', default=None,
        help='Also run each claim measurement once more under py-spy: '
             'the manager\'s CPU per claim split by phase, and a flame '
             'graph (SVG) and the collapsed stacks per backend and '
             'callers in DIR.')
    add('--json', metavar='PATH', default=None,
        help='Where the JSON goes [default: bench-results/bench-<UTC '
             'time>.json].')
    add('--charts', metavar='DIR', default=None,
        help='Where the PNG charts go (claim latency, refill, hit rate) '
             '[default: beside the JSON, in <its name>-charts/].')
    add('--no-charts', action='store_true',
        help='Draw no charts (they need matplotlib, in the bench extra).')
    add('--strict', action='store_true',
        help='Exit 1 when a target is missed.')
    args = parser.parse_args(argv)
    defaults = {'calls': 800, 'sync_sizes': [100, 1000, 10000],
                'refill_size': 50, 'hit_targets': [5, 10, 20], 'bursts': 4,
                'gap': 8 * args.creation_delay,
                'footprint_pools': [1, 10, 100], 'footprint_window': 30.0,
                'no_pool_samples': 5}
    if args.quick:
        defaults.update(QUICK)
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if any('=' not in item for item in args.database_option):
        parser.error('--database-option takes KEY=VALUE')
    if args.scale_volumes < max(args.scale_pools):
        parser.error('--scale-volumes must be at least the largest '
                     '--scale-pools (a pool holds one volume or more)')
    if args.creation_delay < 0 or args.api_latency < 0:
        parser.error('--creation-delay and --api-latency must be >= 0')
    return args


def _setup(workdir):
    from volume_pool import config
    from volume_pool.db import api as db_api
    from volume_pool.db import migration

    config.parse_args([])
    conf = config.CONF
    conf.set_override('connection', 'sqlite:///%s/bench.sqlite' % workdir,
                      group='database')
    db_api.configure(conf)
    migration.upgrade()
    return conf


def run(args, workdir):
    from volume_pool.bench import plot
    if not args.no_charts and not plot.available():
        # Said now, not after the run: the figures still go to the JSON.
        _say('%s; no charts this run' % plot.missing())
        args.no_charts = True
    conf = _setup(workdir)
    from volume_pool import rpcapi
    from volume_pool.bench import claim
    from volume_pool.bench import footprint
    from volume_pool.bench import hitrate
    from volume_pool.bench import real_cinder
    from volume_pool.bench import refill
    from volume_pool.bench import report
    from volume_pool.bench import rpc_wait
    from volume_pool.bench import services
    from volume_pool.bench import sync
    from volume_pool.fixtures import cinder_handles
    from volume_pool.fixtures.simulator import cinder_api

    concurrency = args.concurrency or conf.volume_pool.create_concurrency
    results = {'command': report.command_line(), 'machine': report.machine(),
               'started_at': time.strftime('%Y-%m-%dT%H:%M:%SZ',
                                           time.gmtime()),
               'settings': {k: v for k, v in vars(args).items()
                            if k != 'json'}}
    results['settings']['concurrency'] = concurrency
    with cinder_api.CinderSimulator(
            creation_delay=args.creation_delay) as sim:
        sync.set_latency(sim, args.api_latency)
        cinder = cinder_handles.make_cinder(sim.endpoint, sim.project_id,
                                      page_size=args.page_size)
        needs_rabbit = {'claim', 'footprint'} & set(args.only) or (
            'scale' in args.only and args.scale_idle_window > 0)
        with (services.rabbit_vhost() if needs_rabbit
              else contextlib.nullcontext()) as transport_url:
            transport = (rpcapi.get_transport(conf, url=transport_url)
                         if transport_url else None)
            try:
                if 'claim' in args.only:
                    _claims(args, results, sim, cinder, transport,
                            transport_url, workdir, claim, services,
                            rpc_wait)
                if 'sync' in args.only:
                    _say('sync at %s volumes' % args.sync_sizes)
                    results['sync'] = sync.run(
                        sim, cinder, args.sync_sizes,
                        latencies=sorted({args.api_latency,
                                          args.sync_api_latency}),
                        restore_latency=args.api_latency)
                _background(args, results, sim, cinder, transport_url,
                            workdir, concurrency, refill, hitrate,
                            footprint)
                if 'scale' in args.only:
                    _scale(args, results, sim, cinder, transport_url,
                           workdir)
                if args.with_real_cinder and 'claim' in args.only:
                    _say('claims against a real Cinder')
                    try:
                        results['real_cinder'] = real_cinder.run(
                            transport, transport_url, workdir,
                            args.callers[:2], args.real_cinder_calls,
                            args.no_pool_samples, poll=0.1)
                    except Exception as exc:
                        # A service outside the project: the figures
                        # already taken are still printed and written,
                        # and the traceback says what went wrong.
                        LOG.exception('The real Cinder part failed')
                        results['real_cinder_error'] = '%s: %s' % (
                            exc.__class__.__name__, exc)
                        _say('the real Cinder part FAILED (%s); the other '
                             'figures are kept' % results['real_cinder_error'])
            finally:
                if transport is not None:
                    transport.cleanup()
    results['targets'] = report.targets(results)
    results['finished_at'] = time.strftime('%Y-%m-%dT%H:%M:%SZ',
                                           time.gmtime())
    sys.stdout.write(report.render(results))
    path = report.write_json(results, args.json or
                             report.default_json_path())
    _say('figures written to %s' % path)
    if not args.no_charts:
        _draw_charts(results, path, args.charts)
    missed = [c for c in results['targets'] if c['met'] is False]
    if results.get('real_cinder_error'):
        return 1
    return 1 if (missed and args.strict) else 0


def _claims(args, results, sim, cinder, transport, transport_url, workdir,
            claim, services, rpc_wait):
    results['claim'] = []
    profiler = (bench_profile.Profiler(args.profile) if args.profile
                else None)
    claim.DATABASE_OPTIONS = dict(item.split('=', 1)
                                  for item in args.database_option)
    for backend in args.backends:
        _say('claims on %s, callers %s, %d calls each'
             % (backend, args.callers, args.calls))
        driver = dict(args.driver).get(backend)
        with services.database(backend, workdir) as url:
            figures = claim.run_backend(
                backend, services.with_driver(url, driver), transport,
                transport_url, sim, workdir, args.callers, args.calls,
                profiler=profiler)
            if driver:
                figures['label'] += ' (%s)' % driver
            results['claim'].append(figures)
    _say('an RPC whose method only waits, 0-20 ms')
    results['rpc_wait'] = rpc_wait.run(transport, transport_url,
                                       calls=min(args.calls, 400))
    _say('the path without a pool (L=%ss)' % args.creation_delay)
    snapshot_id = sim.add_snapshot(size=1)
    no_pool = claim.no_pool_path(cinder, snapshot_id, args.no_pool_samples,
                                 poll=min(0.1, args.creation_delay / 10 or
                                          0.01))
    first = results['claim'][0]['levels'][0]['claim']['p50_ms']
    no_pool['speedup_vs_claim_p50'] = round(no_pool['p50_ms'] / first, 1)
    results['no_pool'] = no_pool


def _background(args, results, sim, cinder, transport_url, workdir,
                concurrency, refill, hitrate, footprint):
    """Refill and hit rate wait on creation delays, not on the CPU: they
    run at once.  The footprint's managers fill 111 pools first, which
    would take the CPU the refill is timed on: they start after."""
    jobs = {}
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        if 'refill' in args.only:
            _say('refill of %d at L=%ss, concurrency %d (and serial)'
                 % (args.refill_size, args.creation_delay, concurrency))
            jobs['refill'] = ex.submit(
                refill.run, sim, cinder, args.refill_size, concurrency,
                args.creation_delay, args.poll_interval,
                args.replenish_interval)
        if 'hitrate' in args.only:
            _say('hit rate, targets %s, %d bursts of %d, %ss gaps'
                 % (args.hit_targets, args.bursts, args.burst, args.gap))
            jobs['hit_rate'] = ex.submit(
                hitrate.run, sim, cinder, args.hit_targets, concurrency,
                args.poll_interval, args.replenish_interval, args.bursts,
                args.burst, args.gap)
        for key, job in jobs.items():
            results[key] = job.result()
    if 'footprint' in args.only:
        _say('idle managers with %s pools, %ss CPU window'
             % (args.footprint_pools, args.footprint_window))
        results['footprint'] = footprint.run(
            sim, transport_url, workdir, args.footprint_pools,
            args.footprint_window)


def _scale(args, results, sim, cinder, transport_url, workdir):
    from volume_pool.bench import scale
    _say('scale: pools %s, %d volumes, on %s, API latency %s ms'
         % (args.scale_pools, args.scale_volumes,
            ','.join(args.scale_backends), args.api_latency))
    results['scale'] = scale.run(
        sim, cinder, transport_url, workdir, pool_counts=args.scale_pools,
        volumes=args.scale_volumes, backends=args.scale_backends,
        idle_window=args.scale_idle_window,
        coordination_url=args.scale_coordination_url or None, say=_say)
    results['scale']['api_latency_ms'] = args.api_latency


def _draw_charts(results, json_path, directory=None):
    from volume_pool.bench import charts
    directory = directory or charts.directory_beside(json_path)
    paths = charts.draw(results, directory)
    if paths:
        _say('charts written to %s: %s' % (
            directory, ', '.join(os.path.basename(p) for p in paths)))


def _say(text):
    sys.stderr.write('volume-pool-bench: %s\n' % text)
    sys.stderr.flush()


def main(argv=None):
    args = parse_cli(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING,
                        format='%(levelname)s %(name)s: %(message)s')
    # Many calls in flight on purpose: not a leak, not news.
    for name in ('oslo_messaging', 'urllib3'):
        logging.getLogger(name).setLevel(logging.ERROR)
    workdir = tempfile.mkdtemp(prefix='volume-pool-bench-')
    try:
        return run(args, workdir)
    except Exception as exc:
        _say('FAILED: %s: %s (work files kept in %s)'
             % (exc.__class__.__name__, exc, workdir))
        raise
    finally:
        if sys.exc_info()[0] is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
