"""One soak: bring the rig up, fill the pools, claim under faults, heal,
let the managers settle, check the invariant and report.

Exit status: 0 the invariant held, 1 it did not, 2 the soak could not run.
"""

import collections
import logging
import os
import random
import shutil
import tempfile
import time

from oslo_config import cfg
from oslo_messaging import opts as messaging_opts

from volume_pool import rpcapi
from volume_pool.fixtures import waiting
from volume_pool.tests.chaos import check
from volume_pool.tests.chaos import claimer as vp_claimer
from volume_pool.tests.chaos import faults as vp_faults
from volume_pool.tests.chaos import report as vp_report
from volume_pool.tests.chaos import rig as vp_rig
from volume_pool.tests.chaos import state

# Violations a later sync can still mend: worth waiting for.
HEALABLE = frozenset((check.LEAK, check.POOL, check.UNSETTLED))
SYNC_INTERVAL = 5
SERVICE_DOWN_TIME = 10


def manager_options(args):
    """Short intervals, so that a soak of minutes settles in seconds.
    Options this tree does not have yet are left out by the rig."""
    return {'replenish_interval': 2, 'sync_interval': SYNC_INTERVAL,
            'claim_timeout': 30, 'claim_lease': args.lease,
            'claim_receipt_ttl': 86400, 'heartbeat_interval': 2,
            'service_down_time': SERVICE_DOWN_TIME, 'database_timeout': 10,
            'create_concurrency': 4, 'create_poll_interval': 0.5,
            'periodic_fuzzy_delay': 0, 'backoff_initial': 0.5,
            'backoff_max': 5, 'max_consecutive_errors': 0}


def supports_claim_keys():
    api = rpcapi.VolumePoolAPI
    version = tuple(int(part) for part in api.RPC_API_VERSION.split('.'))
    return (version >= (1, 4) and hasattr(api, 'confirm')
            and hasattr(api, 'release'))


class Clock:
    """Prints progress lines with the seconds since the start."""

    def __init__(self):
        self.started = time.monotonic()

    def __call__(self, message):
        print('[%6.1fs] %s' % (time.monotonic() - self.started, message),
              flush=True)


def wait_full(rig, timeout):
    engine = rig.engine()

    def full():
        ready = collections.Counter(
            row['pool'] for row in state.pool_rows(engine)
            if row['status'] == 'available')
        return all(ready[pool] >= target
                   for pool, target in rig.pools.items())

    try:
        waiting.wait_for(full, timeout=timeout, interval=1.0,
                         what='pools at target before the faults')
    except AssertionError as exc:
        raise vp_rig.RigFailed(str(exc))
    finally:
        engine.dispose()


def settle(rig, claimer, args, log):
    """Read and check until the invariant holds, or only damage no sync
    can undo is left, or ``args.settle`` seconds have passed.

    Returns (state, report, seconds it took or None).
    """
    clients = {project: rig.cinder_client(project)
               for project in rig.projects}
    engine = rig.engine()
    started = time.monotonic()
    deadline = started + args.settle
    # Abandoned leases run out, then a sync or two hands them back.
    earliest = claimer.last_answer_at() + args.lease + 2 * SYNC_INTERVAL
    wait = min(max(0.0, earliest - time.time()), args.settle)
    log('settling: leases run out in %.0fs, then checks until %ds'
        % (wait, args.settle))
    time.sleep(wait)
    shown = 0.0
    snapshot = report = None
    while True:
        try:
            snapshot = state.read(clients, engine)
            report = check.check(claimer.records, *snapshot,
                                 pools=rig.pools, golden=rig.golden,
                                 lease=args.lease, home=rig.projects[0],
                                 expected_errors=vp_claimer.EXPECTED_ERRORS)
        except Exception as exc:
            log('reading the end state failed: %s' % exc)
        now = time.monotonic()
        if report is not None and (report.ok or not any(
                v.kind in HEALABLE for v in report.violations)):
            return snapshot, report, now - started
        if now >= deadline:
            if report is None:
                raise vp_rig.RigFailed('could not read the end state')
            return snapshot, report, None
        if now - shown >= 15 and report is not None:
            shown = now
            log('not settled yet: %s' % ', '.join(
                '%s %d' % item for item in report.by_kind().items() if
                item[1]))
        time.sleep(5)


def make_claimer(api, rig, args, seed):
    """The callers, with the claim mix the knobs ask for."""
    return vp_claimer.Claimer(
        api, rig.pool_names, vp_rig.CLUSTER, seed, callers=args.callers,
        pause=args.pause, call_timeout=args.call_timeout,
        project=rig.claim_project, project_share=args.project_share,
        unkeyed_share=args.unkeyed_share, attach_share=args.attach_share,
        attach=rig.attach)


def tracebacks(managers):
    counts = collections.Counter()
    for process in managers:
        try:
            counts[process.name] = process.log().count('Traceback')
        except OSError:
            pass
    return +counts


def run(args):
    log = Clock()
    # The callers' reconnects after a closed connection are expected.
    logging.basicConfig(level=logging.WARNING,
                        format='%(levelname)s %(name)s: %(message)s')
    logging.getLogger('oslo.messaging._drivers.impl_rabbit').setLevel(
        logging.CRITICAL)
    if not supports_claim_keys():
        log('volume_pool.rpcapi speaks RPC %s without confirm/release: the '
            'soak needs claim keys (RPC 1.4)'
            % rpcapi.VolumePoolAPI.RPC_API_VERSION)
        return 2
    seed = args.seed if args.seed is not None else random.randrange(10**6)
    params = {'seed': seed, 'duration': args.duration,
              'managers': args.managers, 'callers': args.callers,
              'pools': args.pools, 'target': args.target,
              'backend': args.backend, 'lease': args.lease,
              'project_share': args.project_share,
              'unkeyed_share': args.unkeyed_share,
              'attach_share': args.attach_share,
              'late_rate': args.late_rate, 'topology': args.topology,
              'coordination': (args.coordination
                               if args.topology == vp_faults.HA else None)}
    if args.topology == vp_faults.HA:
        params['backend'] = 'galera'
    began = time.monotonic()
    workdir = tempfile.mkdtemp(prefix='volume-pool-chaos-')
    log('seed %s, work dir %s' % (seed, workdir))
    rng = random.Random(seed)
    try:
        with vp_rig.Rig(workdir, backend=args.backend,
                        managers=args.managers, pools=args.pools,
                        target=args.target, seed=seed,
                        options=manager_options(args), log=log,
                        topology=args.topology,
                        coordination=args.coordination) as rig:
            code = _soak(rig, args, params, rng, log, workdir)
    except vp_rig.RigFailed as exc:
        log('the soak could not run: %s' % exc)
        return 2
    log('done: %.0fs in all, start-up and teardown included'
        % (time.monotonic() - began))
    if code == 0 and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return code


def quorum_queues(conf):
    """The soak's own RPC client declares quorum queues, as the managers
    on the ha topology do."""
    # The drivers' options, registered before a transport is built.
    for group, opts in messaging_opts.list_opts():
        conf.register_opts(opts, group=group)
    for option in vp_rig.QUORUM_OPTIONS:
        conf.set_override(option, True, group='oslo_messaging_rabbit')


def _soak(rig, args, params, rng, log, workdir):
    cfg.CONF([], project='volume-pool-chaos')
    if rig.topology == vp_faults.HA:
        quorum_queues(cfg.CONF)
    transport = rpcapi.get_transport(cfg.CONF, url=rig.transport_url)
    try:
        api = rpcapi.VolumePoolAPI(transport, timeout=args.call_timeout)
        log('%d managers started; waiting for %d pools of %d'
            % (len(rig.managers), len(rig.pools), args.target))
        filling = time.monotonic()
        wait_full(rig, args.fill_timeout)
        times = {'start-up': rig.started_in,
                 'pools filled': time.monotonic() - filling}
        chaos = vp_faults.Chaos(rig, rng, kinds=args.faults,
                                proxy_rate=args.proxy_fault_rate,
                                late_rate=args.late_rate, log=log)
        claimer = make_claimer(api, rig, args, params['seed'])
        log('pools full: %d callers claim for %ds under faults'
            % (args.callers, args.duration))
        chaos.start()
        claimer.start()
        try:
            time.sleep(args.duration)
        except BaseException:
            # Interrupted: no fault may outlive the rig's teardown.
            chaos.stop()
            claimer.stop(timeout=0)
            raise
        log('time is up: healing; callers finish the keys under way')
        chaos.stop()
        busy = claimer.stop(timeout=3 * args.call_timeout)
        if busy:
            log('%d callers still busy, left behind' % busy)
        proxy_faults = collections.Counter(rig.proxy.faults.counts)
        snapshot, result, settled_in = settle(rig, claimer, args, log)
        kept = args.keep or not result.ok
        lines = vp_report.summary(
            params=params, report=result, faults=chaos.counts,
            proxy_faults=proxy_faults, fault_failures=chaos.failures,
            settled_in=settled_in, tracebacks=tracebacks(rig.managers),
            workdir=workdir if kept else None,
            error_messages=claimer.first_messages,
            fault_skips=chaos.skipped, times=times)
        if chaos.died:
            lines.insert(-2, 'managers that exited by themselves: %s'
                         % vp_report.counts_text(chaos.died))
        vp_report.dump(os.path.join(workdir, 'chaos-result.json'),
                       params=params, records=claimer.records,
                       state=snapshot, report=result, faults=chaos.counts,
                       proxy_faults=proxy_faults)
        print('\n'.join(lines), flush=True)
        return 0 if result.ok else 1
    finally:
        transport.cleanup()
