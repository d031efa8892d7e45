"""The manager: periodic tasks and life cycle of volume-pool-manager.

It composes the parts that do the work: replenish, sync, claims, leases,
sizing (:mod:`volume_pool.sizing`), the demand shared by the managers.
The API methods its RPC endpoint (:mod:`volume_pool.api_endpoint`) hands
calls to are :mod:`volume_pool.manager_api`'s, mixed in.

Import this module only after the configuration is parsed: as in nova,
``spacing=CONF...`` in the periodic task decorators is read at import time,
so the intervals of the config file are the ones the tasks run with.
"""

import functools
import time

from oslo_log import log as logging
from oslo_service import periodic_task
from oslo_utils import uuidutils

from volume_pool import backoff
from volume_pool import claims
from volume_pool import conf as vp_conf
from volume_pool import coordination
from volume_pool import demand
from volume_pool import exception
from volume_pool import graceful
from volume_pool import late_requests
from volume_pool import leases
from volume_pool import manager_api
from volume_pool import pool_spec
from volume_pool import reconciled
from volume_pool import replenish
from volume_pool import shared_demand
from volume_pool import shrink
from volume_pool import sizing
from volume_pool import stats
from volume_pool import sync
from volume_pool.conf import cinder as cinder_conf
from volume_pool.db import api as db_api
from volume_pool.db import deployment as db_deployment
from volume_pool.db import managers as db_managers
from volume_pool.db import receipts as db_receipts

CONF = vp_conf.CONF
LOG = logging.getLogger(__name__)
# Seconds a stopping manager waits for the claims it answered to be
# recorded before it says it stopped.
ANSWERED_AT_STOP = 10.0


class Manager(manager_api.ManagerAPI, periodic_task.PeriodicTasks):
    """Keeps the pools of this manager's cluster filled and serves claims
    (through :class:`volume_pool.api_endpoint.PoolAPIEndpoint`)."""

    def __init__(self, cinder, conf=CONF, coordinator=None):
        super().__init__(conf)
        # Every pool volume this manager writes or lists is its
        # deployment's: another deployment's in the same Cinder project is
        # never seen, adopted, trimmed or deleted.
        cinder = cinder.for_deployment(db_deployment.identity())
        self.coordination = coordinator or coordination.Coordination(conf)
        self.conf = conf
        self.host = conf.host
        self.cluster = conf.cluster or None
        # This process; a restart under the same host is a new one.
        self.incarnation = uuidutils.generate_uuid()
        self.specs = pool_spec.load_specs(conf)
        options = conf.volume_pool
        self.demand = demand.Estimator(options.auto_target_window)
        self.shared_demand = shared_demand.SharedDemand(
            self.demand, self.cluster, self.host, conf)
        self.stats = stats.ClaimStats(on_claim=self.demand.record_claim)
        self.backoff = backoff.Backoff(
            options.backoff_initial, options.backoff_max,
            options.max_consecutive_errors)
        self.replenisher = replenish.Replenisher(
            cinder, self.host, concurrency=options.create_concurrency,
            poll_interval=options.create_poll_interval,
            creating_timeout=options.creating_timeout,
            backoff=self.backoff, demand=self.demand,
            max_total_gb=pool_spec.max_total_gb(conf),
            incarnation=self.incarnation)
        self._cinder = cinder  # for the idle shrink, confirm and release
        # A Cinder request given up on may still land this long after:
        # the claimer's undo and sync's take-over wait it out alike.
        self.late_window = late_requests.LateWindow(
            conf.cinder.timeout or cinder_conf.DEFAULT_TIMEOUT)
        # The pools a sync of this process has reconciled with Cinder:
        # replenish refills no other (see volume_pool.reconciled).
        self.reconciled = reconciled.ReconciledPools()
        self.syncer = sync.Sync(
            cinder, self.host, self.replenisher.is_pending,
            creating_timeout=options.creating_timeout,
            claim_timeout=options.claim_timeout,
            incarnation=self.incarnation,
            service_down_time=options.service_down_time,
            late_window=self.late_window, reconciled=self.reconciled,
            full_sync_interval=options.full_sync_interval,
            claim_lease=options.claim_lease)
        self.claimer = claims.Claimer(
            cinder, self.stats, host=self.host,
            incarnation=self.incarnation, claim_lease=options.claim_lease,
            batch_wait=options.database_timeout + 5,
            late_window=self.late_window,
            poll_interval=options.create_poll_interval)
        self.lease_keeper = leases.LeaseKeeper(
            cinder, self.host, self.incarnation,
            full_interval=options.full_sync_interval)
        self._stop = graceful.GracefulStop()
        self._peers_without_coordination = []
        # For the health checks: whether the service's RPC server runs,
        # and when each periodic task last finished (Unix time).
        self.rpc_serving = False
        self.started_at = time.time()
        self._snapshots_written = None  # the map the managers row holds
        self.last_runs = {}

    # -- life cycle ----------------------------------------------------

    def init_host(self):
        """Register this process before it serves anything."""
        self._snapshots_written = self._snapshots()
        db_managers.register(self.host, self.cluster, self.incarnation,
                             pools=self._snapshots_written)
        LOG.info('Manager %(host)s registered as incarnation %(inc)s.',
                 {'host': self.host, 'inc': self.incarnation})

    def heartbeat(self):
        """Tell the other managers this process and its claims live.

        The ``{pool: snapshot_id}`` map goes with it only when a reload
        changed it (a thousand pools are a hundred KiB).
        """
        snapshots = self._snapshots()
        changed = snapshots != self._snapshots_written
        if not db_managers.heartbeat(self.incarnation,
                                     snapshots if changed else None):
            # Forgotten after a long outage: claims it held were settled
            # by sync meanwhile, and can no longer finish.
            LOG.warning('Incarnation %s was forgotten; registering again.',
                        self.incarnation)
            db_managers.register(self.host, self.cluster, self.incarnation,
                                 pools=snapshots)
        self._snapshots_written = snapshots

    def _snapshots(self):
        """``{pool: snapshot_id}``: what the other managers must agree on
        before the old volumes of a changed snapshot are deleted."""
        return {name: spec.snapshot_id for name, spec in self.specs.items()}

    def reset(self):
        """SIGHUP: re-read the pools (targets are mutable options)."""
        specs = pool_spec.load_specs(self.conf)
        for name, spec in specs.items():
            old = self.specs.get(name)
            if old is not None and old.target != spec.target:
                LOG.info('Pool %(pool)s target %(old)d -> %(new)d',
                         {'pool': name, 'old': old.target,
                          'new': spec.target})
        self.specs = specs
        self.replenisher.max_total_gb = pool_spec.max_total_gb(self.conf)
        self.backoff.reset()  # the operator's reload resumes paused pools

    def prepare_for_shutdown(self):
        """First step of a graceful stop: refuse new work."""
        self._stop.begin()

    def drain(self, timeout):
        """Wait, at most ``timeout`` seconds, for in-flight claims."""
        return self._stop.wait(timeout)

    def cleanup_host(self):
        self.replenisher.stop(wait=True)
        if not self.claimer.wait_answered(ANSWERED_AT_STOP):
            LOG.warning('Stopping with answered claims not yet recorded; '
                        'sync records them from their volumes.')
        try:
            db_managers.stopped(self.incarnation)
        except db_api.DATABASE_ERRORS as exc:
            LOG.warning('Could not record the stop of this manager (%s); '
                        'its claims are settled after service_down_time.',
                        exc)

    # -- sizing, for the periodic tasks and the API alike -------------------

    def _target_of(self, spec, figures=None):
        """The pool's target of the moment, by the cluster's demand
        (``figures``: the demand read once for a whole run)."""
        if spec is None or not sizing.uses_demand(spec):
            return sizing.target_now(spec)
        return sizing.target_now(spec,
                                 self.conf.volume_pool.auto_target_headroom,
                                 self.shared_demand.of(spec, figures))

    def _owned_specs(self, owns):
        return {name: spec for name, spec in self.specs.items()
                if owns(name)}

    def _usage_once(self):
        """The cluster's GiB by pool, read at most once for a run (only a
        pool under a GiB cap asks)."""
        return functools.cache(lambda: db_api.gb_by_pool(self.cluster))

    def _demand_figures(self, specs):
        """The cluster's demand, read once for a run, if a pool needs it."""
        if any(sizing.uses_demand(spec) for spec in specs.values()):
            return self.shared_demand.figures()
        return {}

    # -- periodic tasks ------------------------------------------------------

    # oslo.service runs the tasks due in the order they are defined: at
    # start, sync (run_immediately) reconciles the pools with Cinder before
    # the first replenish, which refills only reconciled pools.

    @periodic_task.periodic_task(spacing=CONF.volume_pool.sync_interval,
                                 run_immediately=True)
    def sync(self, context):
        """Bring the pool table in step with Cinder."""
        if self._stop.stopping:
            return
        # One view of the ring for the whole run: the pools this manager
        # settles are the ones it trims and shrinks.
        owns = self.coordination.ownership()
        report = self.syncer.run(self.specs, self.cluster, owns=owns)
        try:
            leased = self.lease_keeper.run(self.cluster, owns=owns,
                                           pools=self.specs)
        except exception.CinderException as exc:
            LOG.warning('Lease pass skipped: %s', exc)
        else:
            report.released += leased['returned']
            report.errors += leased['errors']
        self.shared_demand.publish(self.specs)
        self._check_peers_without_coordination()
        report.add(self._give_back_surplus(self._owned_specs(owns)))
        options = self.conf.volume_pool
        db_receipts.purge(self.cluster, options.claim_receipt_ttl)
        db_managers.purge(options.service_down_time,
                          options.claim_receipt_ttl)
        LOG.info('Sync: %s', ', '.join(
            '%s=%d' % item for item in report.as_dict().items()))
        self.last_runs['sync'] = time.time()

    def _give_back_surplus(self, specs):
        """Shrink the idle pools and trim the ones above their ceiling.

        One count of the cluster's rows says which pools to look at, so
        the pools with nothing to give back cost nothing more.
        """
        report = sync.SyncReport()
        counts = db_api.count_by_pool(self.cluster)
        idle = {name: spec for name, spec in specs.items() if spec.idle_ttl}
        figures = self._demand_figures(idle)
        for name, spec in specs.items():
            ready, _creating = sizing.pool_counts(counts, spec)
            if name in idle and ready > spec.min_ready:
                pool_demand = self.shared_demand.of(spec, figures)
                report.add(shrink.shrink_pool(
                    self._cinder, spec, pool_demand.last_activity,
                    pool_demand.now, host=self.host))
            if ready > sizing.ceiling(spec):
                report.add(shrink.trim_pool(self._cinder, spec,
                                            sizing.ceiling(spec),
                                            host=self.host))
        return report

    def _check_peers_without_coordination(self):
        """Say so when other managers share the cluster and no backend
        shares the work out: the database keeps pools from overfilling,
        but every manager then syncs every pool."""
        if self.coordination.enabled:
            return
        # A row under this host name is this process's, or a predecessor
        # that died (start-up refuses a live one): never a peer.
        peers = sorted({host for host, _incarnation, _at in db_managers.live(
            self.cluster, self.conf.volume_pool.service_down_time)
            if host != self.host})
        if peers and peers != self._peers_without_coordination:
            LOG.warning('Managers %(peers)s share cluster %(cluster)s with '
                        'this one, and [coordination] backend_url is not '
                        'set: the database keeps the pools from '
                        'overfilling, but every manager syncs and '
                        'replenishes every pool; configure a coordination '
                        'backend to share them out.',
                        {'peers': ', '.join(peers),
                         'cluster': self.cluster or '(none)'})
        self._peers_without_coordination = peers

    @periodic_task.periodic_task(spacing=CONF.volume_pool.replenish_interval,
                                 run_immediately=True)
    def replenish(self, context):
        """Create the volumes each pool lacks (bounded concurrency).

        Only for the pools a sync of this process has reconciled with
        Cinder: one whose table lacks rows looks emptier than it is.
        """
        if self._stop.stopping:
            return
        self.shared_demand.publish(self.specs)
        queued = {}
        # One read for every pool; a pool full by it is left alone without
        # asking the ring or taking its lock (a claim since is seen next
        # run).  A pool short by it reads its counts again under the lock.
        counts = db_api.count_by_pool(self.cluster)
        figures = self._demand_figures(self.specs)
        usage_of = self._usage_once()
        short = {}
        for name, spec in self.specs.items():
            target = self._target_of(spec, figures).value
            if self.replenisher.plan(spec, target, counts,
                                     usage_of).deficit:
                short[name] = (spec, target)
        # The ring is asked only when a pool is short: a run that finds
        # every pool full costs one read and no call to the backend.
        owns = self.coordination.ownership() if short else None
        for name, (spec, target) in short.items():
            if not owns(name) or self.reconciled.hold(spec.cluster, name):
                continue
            with self.coordination.pool_lock(name) as may_run:
                if may_run:
                    queued[name] = self.replenisher.replenish_pool(spec,
                                                                   target)
        if any(queued.values()):
            LOG.info('Replenish queued %(total)d volumes: %(pools)s',
                     {'total': sum(queued.values()),
                      'pools': ', '.join('%s=%d' % item
                                         for item in sorted(queued.items())
                                         if item[1])})
        self.last_runs['replenish'] = time.time()

    @periodic_task.periodic_task(
        spacing=CONF.coordination.refresh_interval, run_immediately=True)
    def refresh_membership(self, context):
        """Rejoin the coordination group after an outage; stay listed."""
        self.coordination.refresh()
