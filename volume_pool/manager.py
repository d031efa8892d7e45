"""The manager: RPC endpoint and periodic tasks of volume-pool-manager.

Import this module only after the configuration is parsed: as in nova,
``spacing=CONF...`` in the periodic task decorators is read at import time,
so the intervals of the config file are the ones the tasks run with.
"""

import contextlib
import functools
import threading
import time

from oslo_db import exception as db_exc
from oslo_log import log as logging
import oslo_messaging as messaging
from oslo_service import periodic_task
from oslo_utils import uuidutils
from sqlalchemy import exc as sa_exc

from volume_pool import backoff
from volume_pool import claim_request
from volume_pool import claims
from volume_pool import conf as vp_conf
from volume_pool import coordination
from volume_pool import demand
from volume_pool import exception
from volume_pool import group_commit
from volume_pool import leases
from volume_pool import pools
from volume_pool import reconcile
from volume_pool import replenish
from volume_pool import shrink
from volume_pool import stats
from volume_pool import validation
from volume_pool.conf import cinder as cinder_conf
from volume_pool.db import api as db_api
from volume_pool.db import managers as db_managers
from volume_pool.db import models
from volume_pool.db import receipts as db_receipts

CONF = vp_conf.CONF
LOG = logging.getLogger(__name__)


def _project_of(context):
    """The caller's project: claim keys are unique per project."""
    return getattr(context, 'project_id', None) or ''


def _iso(seconds):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(seconds))


def _database_errors_typed(func):
    """A database error reaches the caller as DatabaseUnavailable."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (db_exc.DBError, sa_exc.SQLAlchemyError,
                group_commit.BatchTimeout) as exc:
            LOG.warning('Database error in %s: %s', func.__name__, exc)
            raise exception.DatabaseUnavailable(
                reason=exc.__class__.__name__)
    return wrapper


class Manager(periodic_task.PeriodicTasks):
    """Keeps the pools of this manager's cluster filled and serves claims
    (through :class:`volume_pool.api_endpoint.PoolAPIEndpoint`)."""

    def __init__(self, cinder, conf=CONF, coordinator=None):
        super().__init__(conf)
        self.coordination = coordinator or coordination.Coordination(conf)
        self.conf = conf
        self.host = conf.host
        self.cluster = conf.cluster or None
        # This process; a restart under the same host is a new one.
        self.incarnation = uuidutils.generate_uuid()
        self.specs = pools.load_pools(conf)
        options = conf.volume_pool
        self.demand = demand.Estimator(options.auto_target_window)
        self.stats = stats.ClaimStats(on_claim=self.demand.record_claim)
        self.backoff = backoff.Backoff(
            options.backoff_initial, options.backoff_max,
            options.max_consecutive_errors)
        self.replenisher = replenish.Replenisher(
            cinder, self.host, concurrency=options.create_concurrency,
            poll_interval=options.create_poll_interval,
            creating_timeout=options.creating_timeout,
            backoff=self.backoff, target_of=self._target_now,
            demand=self.demand, max_total_gb=pools.max_total_gb(conf),
            incarnation=self.incarnation)
        self._cinder = cinder  # for the idle shrink, confirm and release
        self.reconciler = reconcile.Reconciler(
            cinder, self.host, self.replenisher.is_pending,
            creating_timeout=options.creating_timeout,
            claim_timeout=options.claim_timeout,
            incarnation=self.incarnation,
            service_down_time=options.service_down_time,
            # A claim's rename sent just before its deadline may still
            # land this long after it.
            late_request_grace=(conf.cinder.timeout or
                                cinder_conf.DEFAULT_TIMEOUT))
        self.claimer = claims.Claimer(
            cinder, self.stats, host=self.host,
            incarnation=self.incarnation, claim_lease=options.claim_lease,
            batch_wait=options.database_timeout + 5)
        self.lease_keeper = leases.LeaseKeeper(cinder, self.host,
                                               self.incarnation)
        self._shutting_down = threading.Event()
        self._peers_without_coordination = []
        self._inflight = 0
        self._inflight_cond = threading.Condition()

    # -- life cycle ----------------------------------------------------

    def init_host(self):
        """Register this process before it serves anything."""
        db_managers.register(self.host, self.cluster, self.incarnation,
                             pools=self._snapshots())
        LOG.info('Manager %(host)s registered as incarnation %(inc)s.',
                 {'host': self.host, 'inc': self.incarnation})

    def heartbeat(self):
        """Tell the other managers this process and its claims live."""
        if not db_managers.heartbeat(self.incarnation, self._snapshots()):
            # Forgotten after a long outage: claims it held were settled
            # by sync meanwhile, and can no longer finish.
            LOG.warning('Incarnation %s was forgotten; registering again.',
                        self.incarnation)
            db_managers.register(self.host, self.cluster, self.incarnation,
                                 pools=self._snapshots())

    def _snapshots(self):
        """``{pool: snapshot_id}``: what the other managers must agree on
        before the old volumes of a changed snapshot are deleted."""
        return {name: spec.snapshot_id for name, spec in self.specs.items()}

    def reset(self):
        """SIGHUP: re-read the pools (targets are mutable options)."""
        specs = pools.load_pools(self.conf)
        for name, spec in specs.items():
            old = self.specs.get(name)
            if old is not None and old.target != spec.target:
                LOG.info('Pool %(pool)s target %(old)d -> %(new)d',
                         {'pool': name, 'old': old.target,
                          'new': spec.target})
        self.specs = specs
        self.replenisher.max_total_gb = pools.max_total_gb(self.conf)
        self.backoff.reset()  # the operator's reload resumes paused pools

    def prepare_for_shutdown(self):
        """First step of a graceful stop: refuse new work."""
        self._shutting_down.set()

    def drain(self, timeout):
        """Wait, at most ``timeout`` seconds, for in-flight claims."""
        with self._inflight_cond:
            done = self._inflight_cond.wait_for(lambda: self._inflight == 0,
                                                timeout=timeout)
        if not done:
            LOG.warning('%d claims still running after %ss.', self._inflight,
                        timeout)
        return done

    def cleanup_host(self):
        self.replenisher.stop(wait=True)
        try:
            db_managers.stopped(self.incarnation)
        except (db_exc.DBError, sa_exc.SQLAlchemyError) as exc:
            LOG.warning('Could not record the stop of this manager (%s); '
                        'its claims are settled after service_down_time.',
                        exc)

    # -- RPC endpoint ------------------------------------------------------

    @messaging.expected_exceptions(exception.VolumePoolException)
    @_database_errors_typed
    def claim(self, context, snapshot_type, name=None, cluster=None,
              create_on_miss=True, project_id=None, claim_key=None,
              time_left=None, lease=True):
        """Hand a ready volume of pool ``snapshot_type`` to the caller.

        ``project_id`` (RPC 1.3): hand it to that project by a Cinder
        volume transfer.  ``claim_key`` (RPC 1.4): the caller's idempotency
        key, scoped to the cluster and the caller's project;
        ``time_left``: the seconds the caller still waits, after which the
        claim is undone, never finished; ``lease``: False when the key only
        makes retries safe (the client made it): the volume is then the
        caller's at once.
        """
        validation.check_claim_args(snapshot_type, name, cluster,
                                    create_on_miss)
        validation.check_project_arg(project_id)
        validation.check_claim_key(claim_key)
        validation.check_time_left(time_left)
        self._check_project_allowed(project_id)
        spec = self._spec(snapshot_type, cluster)
        hold = claim_request.hold_seconds(time_left,
                                   self.conf.volume_pool.claim_timeout)
        if hold <= 0:
            raise exception.ClaimTimedOut(claim_key=claim_key)
        request = claim_request.ClaimRequest(
            spec, name=name, create_on_miss=create_on_miss,
            project_id=project_id, claim_key=claim_key,
            caller_project=_project_of(context), hold=hold,
            lease=lease is not False)
        with self._claim_slot():
            return self.claimer.claim(request, context=context)

    @messaging.expected_exceptions(exception.VolumePoolException)
    @_database_errors_typed
    def confirm(self, context, claim_key, cluster=None):
        """The claimed volume is the caller's for good (RPC 1.4)."""
        validation.check_claim_key(claim_key, required=True)
        validation.check_cluster_arg(cluster)
        self._check_cluster(cluster)
        return leases.confirm(self._cinder, self.cluster,
                              _project_of(context), claim_key)

    @messaging.expected_exceptions(exception.VolumePoolException)
    @_database_errors_typed
    def release(self, context, claim_key, cluster=None):
        """The caller's undo: the volume goes back to its pool if it is
        still unused (RPC 1.4)."""
        validation.check_claim_key(claim_key, required=True)
        validation.check_cluster_arg(cluster)
        self._check_cluster(cluster)
        with self._claim_slot():
            return leases.release(self._cinder, self.cluster,
                                  _project_of(context), claim_key,
                                  self.host, self.incarnation)

    @messaging.expected_exceptions(exception.VolumePoolException)
    @_database_errors_typed
    def pool_status(self, context, cluster=None):
        """One dict per pool, configured or still draining."""
        validation.check_cluster_arg(cluster)
        self._check_cluster(cluster)
        counts = db_api.count_by_pool(self.cluster)
        names = sorted(set(self.specs) | set(counts))
        return [self._status_of(name, counts) for name in names]

    @messaging.expected_exceptions(exception.VolumePoolException)
    def get_usable_hosts(self, context, cluster=None):
        """Live managers of ``cluster`` (RPC 1.1).

        Without a coordination backend a manager knows only itself, so
        deployments of several clusters configure one.
        """
        validation.check_cluster_arg(cluster)
        if not self.coordination.enabled:
            return [self.host] if cluster in (None, self.cluster) else []
        return self.coordination.get_usable_hosts(cluster)

    @messaging.expected_exceptions(exception.VolumePoolException)
    @_database_errors_typed
    def refill(self, context, pool, cluster=None):
        """Replenish one pool now and resume it if paused (RPC 1.2).

        The operator's ``volume-pool-manage pool refill``.  The manager that
        receives it may not own the pool on the hash ring; the tooz lock of
        the pool still keeps two managers from replenishing it at once.
        Returns how many creates were queued.
        """
        validation.check_pool_arg(pool)
        spec = self._spec(pool, cluster)
        self.backoff.reset(pool)
        with self.coordination.pool_lock(pool) as may_run:
            if not may_run:
                LOG.info('Refill of pool %s skipped: another manager is '
                         'replenishing it now.', pool)
                return 0
            queued = self.replenisher.replenish_pool(spec)
        LOG.info('Refill of pool %(pool)s queued %(n)d volumes.',
                 {'pool': pool, 'n': queued})
        return queued

    def _status_of(self, name, counts):
        spec = self.specs.get(name)
        by_snapshot = counts.get(name, {})
        totals = dict.fromkeys(models.STATUSES, 0)
        for by_status in by_snapshot.values():
            for status, count in by_status.items():
                totals[status] = totals.get(status, 0) + count
        # A pool no longer configured: what it still holds is ready.
        ready, creating = ((totals[models.AVAILABLE],
                            totals[models.CREATING]) if spec is None else
                           replenish.pool_counts(counts, spec))
        sizing = self._sizing_of(spec, counts)
        return {
            'name': name,
            'cluster': self.cluster,
            'snapshot_id': spec.snapshot_id if spec else None,
            # The target of the moment (computed for auto, min_ready while
            # idle); configured_target is what the config says.
            'target': sizing['target'],
            'configured_target': spec.target_label if spec else None,
            'ready': ready,
            'creating': creating,
            'claiming': totals[models.CLAIMING],
            'uncertain': totals[models.UNCERTAIN],
            'deleting': totals[models.DELETING],
            'stale': (totals[models.AVAILABLE] + totals[models.CREATING] -
                      ready - creating),
            'configured': spec is not None,
            'reason': self._reason(name, spec, ready, creating, sizing),
            'backoff': self.backoff.state(name),
            'claims': self.stats.figures(name),
            'auto': sizing.get('auto'),
            'idle': sizing.get('idle'),
            'capped': sizing.get('capped'),
        }

    def _sizing_of(self, spec, counts):
        """Target of the moment, its inputs, and the cap that binds."""
        if spec is None:
            return {'target': 0}
        sizing = {'target': spec.target,
                  'capped': self.replenisher.plan(spec, counts).capped}
        if not (spec.auto or spec.idle_ttl):
            return sizing
        estimate, last_activity = self._demand_of(spec)
        sizing['target'] = self._target_now(spec, (estimate, last_activity))
        if spec.auto:
            sizing['auto'] = {
                'computed_target': demand.computed_target(
                    estimate, self.conf.volume_pool.auto_target_headroom,
                    spec.min_ready, spec.max_ready),
                'claim_rate_per_s': round(estimate.rate, 6),
                'refill_time_s': round(estimate.refill_time, 3),
                'refill_time_measured': estimate.refill_measured,
                'headroom': self.conf.volume_pool.auto_target_headroom,
                'min_ready': spec.min_ready, 'max_ready': spec.max_ready}
        if spec.idle_ttl:
            sizing['idle'] = {
                'idle': shrink.is_idle(spec, last_activity,
                                       self.demand.clock()),
                'idle_ttl': spec.idle_ttl, 'min_ready': spec.min_ready,
                'last_activity_at': _iso(last_activity)}
        return sizing

    def _demand_of(self, spec):
        """The pool's demand across managers, and its last activity: the
        latest claim, or when a manager first served the pool."""
        rows = db_api.get_demand(self.cluster).get(spec.name, [])
        others = [demand.State(score=row.score,
                               at=demand.epoch(row.score_at),
                               last_claim_at=demand.epoch(row.last_claim_at),
                               refill_time=row.refill_time)
                  for row in rows if row.host != self.host]
        estimate = self.demand.estimate(
            spec.name, others, self.conf.volume_pool.auto_target_refill_time)
        first_served = min((demand.epoch(row.created_at) for row in rows),
                           default=self.demand.clock())
        return estimate, max(first_served, estimate.last_claim_at or 0.0)

    def _target_now(self, spec, demand_of=None):
        """What replenish aims at: the fixed or computed target, or
        min_ready while the pool is idle."""
        if not (spec.auto or spec.idle_ttl):
            return spec.target
        estimate, last_activity = demand_of or self._demand_of(spec)
        target = spec.target
        if spec.auto:
            target = demand.computed_target(
                estimate, self.conf.volume_pool.auto_target_headroom,
                spec.min_ready, spec.max_ready)
        return shrink.idle_target(spec, target, last_activity,
                                  self.demand.clock())

    def _publish_demand(self):
        """Write this manager's demand figures for the other managers."""
        for name, spec in self.specs.items():
            if spec.auto or spec.idle_ttl:
                state = self.demand.state(name)
                db_api.publish_demand(
                    self.cluster, name, self.host, score=state.score,
                    score_at=demand.utc_datetime(state.at),
                    last_claim_at=demand.utc_datetime(state.last_claim_at),
                    refill_time=state.refill_time)

    def _reason(self, name, spec, ready, creating, sizing):
        """Why a pool is where it is, so nobody has to read the logs."""
        if spec is None:
            return ('not configured: volumes kept until "volume-pool-manage '
                    'pool drain %s"' % name)
        if spec.target == 0:
            return 'disabled: target is 0'
        if ready >= sizing['target']:
            if (sizing.get('idle') or {}).get('idle'):
                return 'idle: no claim for %ds, keeps min_ready=%d%s' % (
                    spec.idle_ttl, spec.min_ready,
                    ' (shrinking)' if ready > spec.min_ready else '')
            return 'full'
        held = self.backoff.state(name)
        if held and held['paused']:
            return 'paused after %d failed creates: %s' % (
                held['failures'], held['last_error'])
        if held:
            return 'backing off until %s: %s' % (_iso(held['until']),
                                                 held['last_error'])
        if sizing['capped']:
            return 'capped at %s' % sizing['capped']
        if creating >= spec.max_creating:
            return 'creating (capped at max_creating=%d)' % spec.max_creating
        if creating:
            return 'creating'
        if not self.coordination.owns(name):
            if self.coordination.degraded:
                return ('coordination backend unreachable: waiting for it '
                        'to share out the pools (claims go on)')
            return 'replenished by another manager'
        return 'waiting for the next replenish'

    def _owned_specs(self):
        return {name: spec for name, spec in self.specs.items()
                if self.coordination.owns(name)}

    def _spec(self, pool, cluster):
        self._check_cluster(cluster)
        if self._shutting_down.is_set():
            raise exception.ServiceShuttingDown(host=self.host)
        spec = self.specs.get(pool)
        if spec is None:
            raise exception.PoolNotFound(pool=pool,
                                         cluster=self.cluster or '(none)')
        return spec

    def _check_project_allowed(self, project_id):
        """Anyone on the bus may call claim: only the listed projects may
        receive volumes."""
        if project_id is None:
            return
        allowed = {validation.project_key(p)
                   for p in self.conf.volume_pool.claim_projects}
        if validation.project_key(project_id) not in allowed:
            raise exception.ProjectNotAllowed(project_id=project_id)

    def _check_cluster(self, cluster):
        if cluster is not None and cluster != self.cluster:
            raise exception.ClusterNotServed(cluster=cluster)

    @contextlib.contextmanager
    def _claim_slot(self):
        """Count a claim in flight, so a graceful stop can wait for it."""
        with self._inflight_cond:
            self._inflight += 1
        try:
            yield
        finally:
            with self._inflight_cond:
                self._inflight -= 1
                self._inflight_cond.notify_all()

    # -- periodic tasks ------------------------------------------------------

    @periodic_task.periodic_task(spacing=CONF.volume_pool.replenish_interval,
                                 run_immediately=True)
    def replenish(self, context):
        """Create the volumes each pool lacks (bounded concurrency)."""
        if self._shutting_down.is_set():
            return
        self._publish_demand()
        queued = {}
        # One read for every pool; a pool full by it is left alone without
        # taking its lock (a claim since is seen next run).  A pool short
        # by it reads its counts again under the lock.
        counts = db_api.count_by_pool(self.cluster)
        for name, spec in self._owned_specs().items():
            if not self.replenisher.plan(spec, counts).deficit:
                continue
            with self.coordination.pool_lock(name) as may_run:
                if may_run:
                    queued[name] = self.replenisher.replenish_pool(spec)
        if any(queued.values()):
            LOG.info('Replenish queued %(total)d volumes: %(pools)s',
                     {'total': sum(queued.values()),
                      'pools': ', '.join('%s=%d' % item
                                         for item in sorted(queued.items())
                                         if item[1])})

    @periodic_task.periodic_task(spacing=CONF.volume_pool.sync_interval,
                                 run_immediately=True)
    def sync(self, context):
        """Reconcile the pool table with Cinder."""
        if self._shutting_down.is_set():
            return
        report = self.reconciler.run(self.specs, self.cluster,
                                     owns=self.coordination.owns)
        try:
            leased = self.lease_keeper.run(self.cluster,
                                           owns=self.coordination.owns)
        except exception.CinderException as exc:
            LOG.warning('Lease pass skipped: %s', exc)
        else:
            report.released += leased['returned']
            report.errors += leased['errors']
        self._publish_demand()
        self._check_peers_without_coordination()
        for spec in self._owned_specs().values():
            if spec.idle_ttl:
                report.add(shrink.shrink_pool(
                    self._cinder, spec, self._demand_of(spec)[1],
                    self.demand.clock(), host=self.host))
            report.add(shrink.trim_pool(
                self._cinder, spec,
                spec.max_ready if spec.auto else spec.target,
                host=self.host))
        options = self.conf.volume_pool
        db_receipts.purge(self.cluster, options.claim_receipt_ttl)
        db_managers.purge(options.service_down_time,
                          options.claim_receipt_ttl)
        LOG.info('Sync: %s', ', '.join(
            '%s=%d' % item for item in report.as_dict().items()))

    def _check_peers_without_coordination(self):
        """Say so when other managers share the cluster and no backend
        shares the work out: the database keeps pools from overfilling,
        but every manager then syncs every pool."""
        if self.coordination.enabled:
            return
        peers = sorted({host for host, incarnation, _at in db_managers.live(
            self.cluster, self.conf.volume_pool.service_down_time)
            if incarnation != self.incarnation})
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

    @periodic_task.periodic_task(
        spacing=CONF.coordination.refresh_interval, run_immediately=True)
    def refresh_membership(self, context):
        """Rejoin the coordination group after an outage; stay listed."""
        self.coordination.refresh()
