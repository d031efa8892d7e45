"""The manager's API methods, apart from its periodic tasks and life cycle.

:class:`ManagerAPI` is mixed into :class:`volume_pool.manager.Manager`:
the RPC endpoint (:mod:`volume_pool.api_endpoint`) hands each call to
one of these methods, which check the arguments and hand the work to
the parts the manager composes (``claimer``, ``replenisher``,
``backoff``, ``stats``, ``coordination``...), sizing a pool as its
periodic tasks do (``_target_of``, ``_demand_figures``, ``_usage_once``).
"""

from oslo_log import log as logging
import oslo_messaging as messaging

from volume_pool import api_endpoint
from volume_pool import arrival
from volume_pool import claim_failures
from volume_pool import claim_request
from volume_pool import exception
from volume_pool import health
from volume_pool import leases
from volume_pool import pool_status
from volume_pool import validation
from volume_pool.db import api as db_api

LOG = logging.getLogger(__name__)

# Seconds a confirm or a release waits for this process to record the
# claim it answered just before (a group commit's turn, as a rule).
ANSWER_RECORD_WAIT = 2.0


def _project_of(context):
    """The caller's project: claim keys are unique per project."""
    return getattr(context, 'project_id', None) or ''


class ManagerAPI:
    """``claim``, ``confirm``, ``release``, ``pool_status``, ``refill``,
    ``get_usable_hosts`` and ``ping`` of the manager."""

    @api_endpoint.api_method
    @claim_failures.told
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
        validation.check_project_allowed(
            project_id, self.conf.volume_pool.claim_projects)
        spec = self._spec(snapshot_type, cluster)
        # The time the call waited for a worker counts against its hold.
        hold, since = claim_request.start_budget(
            time_left, self.conf.volume_pool.claim_timeout, claim_key,
            queued=arrival.queued_seconds())
        request = claim_request.ClaimRequest(
            spec, name=name, create_on_miss=create_on_miss,
            project_id=project_id, claim_key=claim_key,
            caller_project=_project_of(context), hold=hold,
            lease=lease is not False, since=since)
        with self._stop.claim_running():
            return self.claimer.claim(request, context=context)

    @api_endpoint.api_method
    def confirm(self, context, claim_key, cluster=None):
        """The claimed volume is the caller's for good (RPC 1.4)."""
        validation.check_claim_key(claim_key, required=True)
        validation.check_cluster_arg(cluster)
        self._check_cluster(cluster)
        self._answered_recorded(context, claim_key)
        return leases.confirm(self._cinder, self.cluster,
                              _project_of(context), claim_key)

    @api_endpoint.api_method
    def release(self, context, claim_key, cluster=None):
        """The caller's undo: the volume goes back to its pool if it is
        still unused (RPC 1.4)."""
        validation.check_claim_key(claim_key, required=True)
        validation.check_cluster_arg(cluster)
        self._check_cluster(cluster)
        self._answered_recorded(context, claim_key)
        with self._stop.claim_running():
            return leases.release(self._cinder, self.cluster,
                                  _project_of(context), claim_key,
                                  self.host, self.incarnation)

    def _answered_recorded(self, context, claim_key):
        """A confirm or release that follows its claim's answer at once
        acts as after the claim's finish: this process's finish of the
        key is written first (elsewhere, the receipt says in progress and
        the client asks again)."""
        self.claimer.wait_answered(ANSWER_RECORD_WAIT, self.cluster,
                                   _project_of(context), claim_key)

    def ping(self, context):
        """This manager's health record (RPC 1.5); answering at all
        means its RPC server runs."""
        return self.health()

    def health(self):
        """See :mod:`volume_pool.health`."""
        options = self.conf.volume_pool
        return health.check(
            host=self.host, cluster=self.cluster,
            rpc_serving=self.rpc_serving, coordination=self.coordination,
            last_runs=dict(self.last_runs),
            intervals={'replenish': options.replenish_interval,
                       'sync': options.sync_interval},
            started_at=self.started_at)

    @api_endpoint.api_method
    def pool_status(self, context, cluster=None):
        """One dict per pool, configured or still draining."""
        validation.check_cluster_arg(cluster)
        self._check_cluster(cluster)
        counts = db_api.count_by_pool(self.cluster)
        names = sorted(set(self.specs) | set(counts))
        figures = self._demand_figures(self.specs)
        usage_of = self._usage_once()
        return [self._status_of(name, self.specs.get(name), counts,
                                figures, usage_of)
                for name in names]

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

    @api_endpoint.api_method
    def refill(self, context, pool, cluster=None):
        """Replenish one pool now and resume it if paused (RPC 1.2).

        The operator's ``volume-pool-manage pool refill``.  The manager that
        receives it may not own the pool on the hash ring; the tooz lock of
        the pool still keeps two managers from replenishing it at once.  A
        pool no sync of this manager has reconciled yet is synced first
        (:mod:`volume_pool.reconciled`).  Returns how many creates were
        queued.
        """
        validation.check_pool_arg(pool)
        spec = self._spec(pool, cluster)
        self.backoff.reset(pool)
        if not self.reconciled.done(spec.cluster, pool):
            # No sync of this process has listed the pool yet: reconcile it
            # first, or a table that lacks rows would overfill it.
            report = self.syncer.sync_pool(pool, spec, self.cluster)
            LOG.info('Refill of pool %(pool)s synced it with Cinder first: '
                     '%(report)s',
                     {'pool': pool, 'report': ', '.join(
                         '%s=%d' % item for item in report.as_dict().items())})
            if not self.reconciled.done(spec.cluster, pool):
                LOG.warning('Refill of pool %s skipped: its sync with Cinder '
                            'did not finish.', pool)
                return 0
        with self.coordination.pool_lock(pool) as may_run:
            if not may_run:
                LOG.info('Refill of pool %s skipped: another manager is '
                         'replenishing it now.', pool)
                return 0
            queued = self.replenisher.replenish_pool(
                spec, self._target_of(spec).value)
        LOG.info('Refill of pool %(pool)s queued %(n)d volumes.',
                 {'pool': pool, 'n': queued})
        return queued

    def _status_of(self, name, spec, counts, figures, usage_of):
        target = self._target_of(spec, figures)
        return pool_status.record(
            name, self.cluster, spec, counts, target,
            capped=(self.replenisher.plan(spec, target.value, counts,
                                          usage_of).capped
                    if spec else None),
            held=self.backoff.state(name), claims=self.stats.figures(name),
            coordination=self.coordination,
            reconciled=self.reconciled.done(self.cluster, name))

    def _spec(self, pool, cluster):
        self._check_cluster(cluster)
        if self._stop.stopping:
            raise exception.ServiceShuttingDown(host=self.host)
        spec = self.specs.get(pool)
        if spec is None:
            raise exception.PoolNotFound(pool=pool,
                                         cluster=self.cluster or '(none)')
        return spec

    def _check_cluster(self, cluster):
        if cluster is not None and cluster != self.cluster:
            raise exception.ClusterNotServed(cluster=cluster)

