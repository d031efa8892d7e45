"""Sync: make the pool table agree with Cinder, Cinder being the truth.

Per cluster, one read of the pool table; then Cinder is listed with its
server-side metadata filter, paged (never one GET per volume): by the
cluster tag, in one listing however many pools there are, or pool by
pool when the pools to settle are few (a listing of the cluster carries
every pool volume of it, other managers' pools included).  Then every row
and every tagged volume of each pool is settled:

=========================================  ==================================
Cinder says                                 the pool does
=========================================  ==================================
available, row ``creating``                 row -> ``available``
gone, or being deleted by someone           row removed
error                                       volume deleted, row removed
in use / attached                           pool tags removed, row removed
``creating`` past ``creating_timeout``      volume deleted (replenish
                                            replaces it)
older snapshot than the pool's              volume drained (deleted) once
                                            every live manager has the
                                            pool's new snapshot
tagged, no row (crash before the insert)    adopted up to the target,
                                            otherwise deleted
=========================================  ==================================

Rows are read before Cinder is listed, so a volume created meanwhile is
never mistaken for a vanished one.  The pools a run settled whole (listed,
rows and orphans settled) are marked reconciled
(:mod:`volume_pool.reconciled`): replenish refills only those.
"""

import dataclasses

from oslo_log import log as logging
from oslo_utils import timeutils
import tenacity

from volume_pool import cinder as vp_cinder
from volume_pool import claims
from volume_pool import exception
from volume_pool import handback
from volume_pool import late_requests
from volume_pool import notifications
from volume_pool import orphans
from volume_pool import peers
from volume_pool import pool_deletes
from volume_pool import retag
from volume_pool.db import api as db_api
from volume_pool.db import models

LOG = logging.getLogger(__name__)

# Up to this many pools to settle, a sync lists each pool alone; above,
# it lists the whole cluster (paged), whatever the number of pools.
PER_POOL_LISTINGS = 10

# A listing of the cluster is started again from its first page once when
# Cinder refuses a page (its marker, a volume, was deleted midway through
# many pages).  Not after a timeout or a 5xx: the sync would wait twice.
_retry_listing = tenacity.retry(
    retry=tenacity.retry_if_exception_type(
        exception.CinderRequestRejected),
    stop=tenacity.stop_after_attempt(2), reraise=True)


@dataclasses.dataclass
class SyncReport:
    """What one sync did, summed into the run's summary log line."""

    ready: int = 0
    adopted: int = 0
    removed: int = 0
    deleted: int = 0
    released: int = 0
    retagged: int = 0
    errors: int = 0

    def add(self, other):
        for field in dataclasses.fields(self):
            setattr(self, field.name,
                    getattr(self, field.name) + getattr(other, field.name))

    def as_dict(self):
        return dataclasses.asdict(self)


def _age(moment):
    return (timeutils.utcnow() -
            timeutils.normalize_time(moment)).total_seconds()


class Sync:
    """Settles rows and Cinder volumes of the pools of one cluster."""

    def __init__(self, cinder, host, is_pending, creating_timeout,
                 claim_timeout, incarnation=None, service_down_time=60,
                 late_window=None, reconciled=None):
        """``late_window``: the :class:`volume_pool.late_requests.LateWindow`
        the claimer shares (none: requests never land late);
        ``reconciled``: the manager's
        :class:`volume_pool.reconciled.ReconciledPools`, told of every pool
        a run settled whole."""
        self._cinder = cinder
        self._host = host
        self._is_pending = is_pending
        self._creating_timeout = creating_timeout
        self._claim_timeout = claim_timeout
        self._incarnation = incarnation
        self._service_down_time = service_down_time
        self._late_window = late_window or late_requests.LateWindow(
            0.0, margin=0.0)
        self._peers = peers.LiveManagers(incarnation, service_down_time)
        self._orphans = orphans.Orphans(cinder, host, creating_timeout,
                                        self._peers)
        self._reconciled = reconciled

    def run(self, specs, cluster, owns=None):
        """Sync the configured pools and the ones that still have rows.

        One read of the cluster's rows and one paged listing of its
        volumes (by the cluster tag), however many pools it has; a second
        read only for the pools where the listing shows volumes no row
        records.  A pool that has rows but is no longer configured keeps
        them (an operator drains it) and is still kept in step with
        Cinder.  With ``owns``, only the pools it accepts (this manager's
        share).
        """
        self._peers.new_run()
        rows = _by_pool(db_api.get_rows(cluster), lambda row: row.pool)
        total = SyncReport()
        names = set(specs) | set(rows)
        if owns is not None:
            names = {name for name in names if owns(name)}
        if not names:
            return total  # nothing of this cluster is ours to settle
        if self._lists_per_pool(names, rows):
            volumes_of = self._list_pool
        else:
            try:
                volumes = _by_pool(self._list_cluster(cluster),
                                   lambda volume: volume.pool)
            except exception.CinderException as exc:
                total.errors += 1
                LOG.warning('Sync skipped: listing the volumes of cluster '
                            '%(cluster)s failed: %(err)s',
                            {'cluster': cluster or '(none)', 'err': exc})
                return total

            def volumes_of(name, _cluster):
                return volumes.get(name, [])
        unrecorded, settled = {}, set()
        for name in sorted(names):
            try:
                found = self._settle_rows(name, specs.get(name), cluster,
                                          rows.get(name, []),
                                          volumes_of(name, cluster), total)
            except exception.CinderException as exc:
                total.errors += 1
                LOG.warning('Sync of pool %(pool)s skipped: %(err)s',
                            {'pool': name, 'err': exc})
                continue
            settled.add(name)
            if found:
                unrecorded[name] = found
        if unrecorded:
            settled -= self._orphans.settle(unrecorded, specs, cluster,
                                            total)
        self._mark_reconciled(cluster, settled)
        return total

    def sync_pool(self, pool, spec, cluster):
        """Sync one pool alone: a read of its rows, a listing of its
        volumes (``run`` does every pool of a cluster for the price of
        one)."""
        report = SyncReport()
        rows = db_api.get_rows(cluster, pool=pool)
        volumes = self._list_pool(pool, cluster)
        unrecorded = self._settle_rows(pool, spec, cluster, rows, volumes,
                                       report)
        skipped = set()
        if unrecorded:
            skipped = self._orphans.settle({pool: unrecorded}, {pool: spec},
                                           cluster, report)
        if not skipped:
            self._mark_reconciled(cluster, {pool})
        return report

    def _mark_reconciled(self, cluster, pools):
        if self._reconciled is not None and pools:
            self._reconciled.mark(cluster, pools)

    def _lists_per_pool(self, names, rows):
        """True to list each pool alone: when the pools to settle are few
        (``PER_POOL_LISTINGS``), or no more than the pages a listing of the
        whole cluster takes.  A listing of the cluster carries every pool
        volume of it, other managers' pools and pools nobody configures
        any more included; Cinder builds each one it answers."""
        pages = -(-sum(len(found) for found in rows.values()) //
                  self._cinder.page_size)
        return len(names) <= max(PER_POOL_LISTINGS, pages)

    def _list_pool(self, pool, cluster):
        return self._cinder.list_volumes({
            vp_cinder.TAG_POOL: pool,
            vp_cinder.TAG_CLUSTER: vp_cinder.cluster_tag(cluster)})

    @_retry_listing
    def _list_cluster(self, cluster):
        """Every pool volume of the cluster.

        They carry the cluster tag in every mode; one made by a release
        that tagged none is a listed row's, re-tagged by
        :func:`volume_pool.retag.confirm_gone`.
        """
        return self._cinder.list_volumes({
            vp_cinder.TAG_CLUSTER: vp_cinder.cluster_tag(cluster)})

    def _settle_rows(self, pool, spec, cluster, rows, volumes, report):
        """Settle every row of a pool by its listed ``volumes``; returns
        the listed volumes that no row owns (candidate orphans)."""
        by_id = {v.id: v for v in volumes}
        by_request = {v.request_id: v for v in volumes if v.request_id}
        owned = set()
        if any(r.status in (models.CLAIMING, models.UNCERTAIN)
               for r in rows):
            taken = self._late_window.take_over(
                cluster, pool, self._incarnation, claims.UNDO_HOLD,
                self._service_down_time, self._claim_timeout)
            for row in handback.settle_taken(
                    self._cinder, pool, taken, by_request,
                    self._find_untagged_create, report):
                owned.add(row.volume_id)
        for row in rows:
            if row.status not in models.STATUSES:
                # A newer release's state (a rolling upgrade): not ours.
                owned.add(row.volume_id)
                continue
            if row.status in (models.CLAIMING, models.UNCERTAIN):
                # Held by a claim, a release or a lease return that still
                # runs, or settled just above.
                owned.add(row.volume_id)
                continue
            volume = self._sync_row(row, spec, by_id, by_request, report)
            if volume is not None:
                owned.add(volume.id)
            elif row.volume_id:
                owned.add(row.volume_id)
        return [v for v in volumes if v.id not in owned]

    # -- rows --------------------------------------------------------------

    def _sync_row(self, row, spec, by_id, by_request, report):
        """Settle one row; returns the Cinder volume it owns, if any."""
        if row.volume_id is None:
            volume = by_request.get(row.request_id)
            if volume is None and self._abandoned(row):
                volume = self._find_untagged_create(row)
                if volume is None and db_api.delete_row(
                        row.id, status=models.CREATING):
                    report.removed += 1
            if volume is None:
                return None
            # Created just before a crash: reunite row and volume.
            db_api.set_volume_id(row.id, volume.id)
            row.volume_id = volume.id
        volume = by_id.get(row.volume_id)
        if volume is None and row.status != models.DELETING:
            volume = retag.confirm_gone(self._cinder, row, report)
        if row.status == models.DELETING:
            self._retry_delete(row, volume, report)
            return volume
        if volume is None or volume.status == 'deleting':
            LOG.debug('Pool volume %s is gone from Cinder; forgetting it.',
                      row.volume_id)
            if db_api.delete_row(row.id, status=row.status):
                notifications.volume_evicted(self._host, row,
                                             notifications.EVICT_GONE)
            report.removed += 1
            return None
        if volume.in_use:
            LOG.info('Pool volume %s is in use behind the pool\'s back; '
                     'releasing it.', volume.id)
            self._cinder.remove_pool_tags(volume)
            if db_api.delete_row(row.id, status=row.status):
                notifications.volume_evicted(self._host, row,
                                             notifications.EVICT_TAKEN)
            report.removed += 1
            return volume
        if volume.in_error:
            if (row.status == models.CREATING and
                    self._is_pending(row.request_id)):
                # Its create worker is still polling: let it see the error
                # first, so the pool's backoff counts the failure; the next
                # sync deletes the volume.
                return volume
            self._delete(row, volume, report, 'is in %s' % volume.status,
                         notifications.EVICT_ERROR)
            return volume
        if spec is None:
            # Not in enabled_pools (removed, or a typo): its volumes stay
            # until an operator drains the pool.  Nothing is deleted for
            # what the configuration no longer says.
            if volume.status == 'available' and row.status == models.CREATING:
                db_api.mark_available(row.id, size=volume.size)
            return volume
        if volume.status == 'creating':
            if _age(row.created_at) > self._creating_timeout:
                self._delete(row, volume, report,
                             'is still creating after %ss'
                             % self._creating_timeout,
                             notifications.EVICT_STUCK)
            return volume
        if row.snapshot_id != spec.snapshot_id:
            if self._peers.rotation_waits(spec):
                return volume
            if row.status == models.AVAILABLE or volume.status == 'available':
                self._delete(row, volume, report,
                             'was made from the old snapshot %s'
                             % row.snapshot_id,
                             notifications.EVICT_ROTATION)
            return volume
        if volume.status == 'available' and row.status == models.CREATING:
            if db_api.mark_available(row.id, size=volume.size):
                report.ready += 1
                notifications.volume_created(self._host, row,
                                             size=volume.size)
        return volume

    def _abandoned(self, row):
        """A row with no Cinder volume whose create nobody works on: this
        process made it and is done with it, the process that made it is
        gone, or creating_timeout has passed.  Its create never reached
        Cinder (one that lands later is a tagged orphan, adopted or
        deleted), so the row can go.
        """
        if self._is_pending(row.request_id):
            return False
        mine = row.host == self._host
        gone = (row.incarnation is not None and
                row.incarnation not in self._peers.incarnations(row.cluster))
        return mine or gone or _age(row.created_at) > self._creating_timeout

    def _retry_delete(self, row, volume, report):
        if volume is None:
            db_api.delete_row(row.id, status=models.DELETING)
            report.removed += 1
            return
        if volume.status == 'deleting':
            return
        try:
            self._cinder.delete_volume(volume.id)
        except exception.CinderException as exc:
            report.errors += 1
            LOG.warning('Deleting volume %(id)s failed again, will retry: '
                        '%(err)s', {'id': volume.id, 'err': exc})

    def _delete(self, row, volume, report, why, reason):
        pool_deletes.delete_pool_volume(self._cinder, row, report, why,
                                        reason=reason, host=self._host)

    def _find_untagged_create(self, row):
        return retag.find_untagged_create(self._cinder, row)


def _by_pool(items, pool_of):
    """``{pool: [items]}`` in the order given; items of no pool left out."""
    grouped = {}
    for item in items:
        pool = pool_of(item)
        if pool is not None:
            grouped.setdefault(pool, []).append(item)
    return grouped
