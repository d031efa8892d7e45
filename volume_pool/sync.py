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

Full listings and listings of the changes
-----------------------------------------

A full listing (every pool volume of the cluster) costs Cinder what the
cluster holds.  Between two full listings (``full_sync_interval``), a sync
lists only the pool volumes Cinder changed since the last listing: one
request ``updated_at=gte:<time>`` (microversion 3.60), where the time is
the latest ``updated_at`` Cinder returned so far, less
``CURSOR_MARGIN`` -- Cinder's clock, never the manager's.  Such a listing
settles the rows of the volumes it shows, and the orphans among them,
exactly as a full one does; a volume it does not show tells nothing (a
deleted volume is never listed), so no row is dropped for its absence.
The rows that need Cinder's word whether or not their volume changed are
read by id: a ``deleting`` row (is the volume gone yet?), a ``creating``
row past ``creating_timeout``, a row with no volume yet (looked up by its
request).  What only a full listing finds -- a pool volume deleted behind
the pool's back, one whose tags were removed -- waits for the next one;
meanwhile a claim that picks such a row finds the volume gone at its
hand-over (``volume_pool.claims``) and takes the next.

A sync lists in full when: it is the first of the process (reconcile
before refilling needs one), ``full_sync_interval`` has passed, a pool to
settle was not settled by the last full listing (a new pool, a pool the
ring gave this manager), a pool's snapshot changed and old volumes wait
to be drained, Cinder is older than 3.60, or the cursor is not trusted: the
last sync had an error, or Cinder's clock is behind the changes it listed
before.
"""

import dataclasses
import datetime
import time

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

# A change is stamped by the Cinder host that makes it (API, scheduler,
# volume service, each on its own clock) when it is made, and committed a
# little later: a listing of the changes starts this long before the
# latest ``updated_at`` already listed.
CURSOR_MARGIN = datetime.timedelta(seconds=60)

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


@dataclasses.dataclass
class _Cursor:
    """Where the next listing of a cluster's changes starts."""

    since: datetime.datetime  # latest updated_at listed (Cinder's clock)
    full_at: float  # the Sync's clock when the last full listing ran
    pools: frozenset  # the pools that full listing settled


def _cursor_time(listings):
    """The latest ``updated_at`` of ``listings``, capped by the time of
    Cinder's answer to the first page (a change made while the pages were
    read may carry an earlier stamp than the last page's); None when
    nothing was listed."""
    stamps = [stamp for stamp in (lst.last_change() for lst in listings)
              if stamp is not None]
    if not stamps:
        return None
    latest = max(stamps)
    first = listings[0].server_time
    return min(latest, first) if first is not None else latest


def _age(moment):
    return (timeutils.utcnow() -
            timeutils.normalize_time(moment)).total_seconds()


class Sync:
    """Settles rows and Cinder volumes of the pools of one cluster."""

    def __init__(self, cinder, host, is_pending, creating_timeout,
                 claim_timeout, incarnation=None, service_down_time=60,
                 late_window=None, reconciled=None, full_sync_interval=0,
                 clock=time.monotonic, claim_lease=0.0):
        """``late_window``: the :class:`volume_pool.late_requests.LateWindow`
        the claimer shares (none: requests never land late);
        ``reconciled``: the manager's
        :class:`volume_pool.reconciled.ReconciledPools`, told of every pool
        a run settled whole; ``full_sync_interval``: seconds between two
        full listings of a cluster (0: every run lists in full), measured
        on ``clock``; ``claim_lease``: the lease of a claim this sync
        finds handed out before it ended."""
        self._cinder = cinder
        self._host = host
        self._is_pending = is_pending
        self._creating_timeout = creating_timeout
        self._claim_timeout = claim_timeout
        self._claim_lease = claim_lease
        self._incarnation = incarnation
        self._service_down_time = service_down_time
        self._late_window = late_window or late_requests.LateWindow(
            0.0, margin=0.0)
        self._peers = peers.LiveManagers(incarnation, service_down_time)
        self._orphans = orphans.Orphans(cinder, host, creating_timeout,
                                        self._peers)
        self._reconciled = reconciled
        self._full_sync_interval = full_sync_interval
        self._clock = clock
        self._cursors = {}  # cluster -> _Cursor

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
        since, why = self._changes_since(specs, cluster, names, rows)
        if since is not None:
            return self._run_changes(specs, cluster, names, rows, since,
                                     total)
        if self._full_sync_interval > 0:
            LOG.info('Sync of cluster %(cluster)s lists every volume: '
                     '%(why)s.', {'cluster': cluster or '(none)',
                                  'why': why})
        # A full listing: the cursor is trusted again only if it settles
        # without an error.
        self._cursors.pop(cluster, None)
        started = self._clock()
        listings = []
        if self._lists_per_pool(names, rows):
            def volumes_of(name, cluster):
                listing = self._list_pool(name, cluster)
                listings.append(listing)
                return listing
        else:
            try:
                listing = self._list_cluster(cluster)
            except exception.CinderException as exc:
                total.errors += 1
                LOG.warning('Sync skipped: listing the volumes of cluster '
                            '%(cluster)s failed: %(err)s',
                            {'cluster': cluster or '(none)', 'err': exc})
                return total
            listings.append(listing)
            volumes = _by_pool(listing, lambda volume: volume.pool)

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
        since = _cursor_time(listings)
        if not total.errors and since is not None:
            self._cursors[cluster] = _Cursor(since, started,
                                             frozenset(settled))
        return total

    def _changes_since(self, specs, cluster, names, rows):
        """``(where a listing of the changes starts, None)``, or ``(None,
        why)`` to list in full (see the module's docstring for when)."""
        if self._full_sync_interval <= 0:
            return None, 'full_sync_interval is 0'
        cursor = self._cursors.get(cluster)
        if cursor is None:
            return None, ('the first sync of the process, or the last '
                          'one had an error or listed nothing')
        if self._clock() - cursor.full_at >= self._full_sync_interval:
            return None, 'full_sync_interval has passed'
        if not names <= cursor.pools:
            return None, ('pools the last full listing did not settle: %s'
                          % ', '.join(sorted(names - cursor.pools)))
        if _rotation_waits(specs, names, rows):
            return None, 'volumes of an older snapshot wait to be drained'
        try:
            if not self._cinder.lists_changes():
                return None, 'Cinder is older than microversion 3.60'
        except exception.CinderException as exc:
            return None, ('Cinder could not say which microversions it '
                          'serves (%s)' % exception.first_line(exc))
        return cursor.since - CURSOR_MARGIN, None

    def _run_changes(self, specs, cluster, names, rows, since, total):
        """Settle what the listing of the changes since ``since`` shows;
        what it does not show is left as it is."""
        cursor = self._cursors.pop(cluster)
        try:
            listing = self._list_changes(cluster, since)
        except exception.CinderException as exc:
            total.errors += 1
            LOG.warning('Sync skipped: listing the volumes of cluster '
                        '%(cluster)s changed since %(since)s failed: '
                        '%(err)s; the next sync lists every volume.',
                        {'cluster': cluster or '(none)',
                         'since': since.isoformat(), 'err': exc})
            return total
        trusted = True
        if (listing.server_time is not None and
                listing.server_time < cursor.since - CURSOR_MARGIN):
            LOG.warning('Cinder\'s clock (%(now)s) is behind the changes '
                        'it listed before (%(since)s); the next sync lists '
                        'every volume.',
                        {'now': listing.server_time.isoformat(),
                         'since': cursor.since.isoformat()})
            trusted = False
        LOG.info('Sync of cluster %(cluster)s lists the changes: '
                 '%(count)d volumes changed since %(since)s.',
                 {'cluster': cluster or '(none)', 'count': len(listing),
                  'since': since.isoformat()})
        volumes = _by_pool(listing, lambda volume: volume.pool)
        unrecorded = {}
        for name in sorted(names):
            try:
                found = self._settle_rows(
                    name, specs.get(name), cluster, rows.get(name, []),
                    volumes.get(name, []), total, changes_only=True)
            except exception.CinderException as exc:
                total.errors += 1
                LOG.warning('Sync of pool %(pool)s skipped: %(err)s',
                            {'pool': name, 'err': exc})
                continue
            if found:
                unrecorded[name] = found
        if unrecorded:
            self._orphans.settle(unrecorded, specs, cluster, total)
        if trusted and not total.errors:
            latest = _cursor_time([listing])
            if latest is not None and latest > cursor.since:
                cursor.since = latest
            # A pool settled elsewhere meanwhile (the ring moved it) had
            # changes this run did not settle: it needs a full listing.
            cursor.pools &= names
            self._cursors[cluster] = cursor
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

    @_retry_listing
    def _list_changes(self, cluster, since):
        """The pool volumes of the cluster Cinder changed at or after
        ``since`` (Cinder's clock)."""
        return self._cinder.list_volumes({
            vp_cinder.TAG_CLUSTER: vp_cinder.cluster_tag(cluster)},
            changed_since=since)

    def _settle_rows(self, pool, spec, cluster, rows, volumes, report,
                     changes_only=False):
        """Settle every row of a pool by its listed ``volumes``; returns
        the listed volumes that no row owns (candidate orphans).

        ``changes_only``: ``volumes`` are the ones Cinder changed lately,
        not all: a row whose volume is not among them is settled only if
        it needs Cinder's word anyway, read by id (:meth:`_due`)."""
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
                    self._find_untagged_create, report,
                    claim_lease=self._claim_lease):
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
            if changes_only and not self._due(row, by_id):
                # Not listed: unchanged, or gone (the next full listing
                # tells). Nothing is decided on an absence.
                owned.add(row.volume_id)
                continue
            volume = self._sync_row(row, spec, by_id, by_request, report)
            if volume is not None:
                owned.add(volume.id)
            elif row.volume_id:
                owned.add(row.volume_id)
        return [v for v in volumes if v.id not in owned]

    # -- rows --------------------------------------------------------------

    def _due(self, row, by_id):
        """For a listing of the changes: True to settle ``row`` now.

        Its volume was listed; or it has none yet (looked up by its
        request, as a full sync does); or it is past ``creating_timeout``
        (read by id, :func:`volume_pool.retag.confirm_gone`); or it is
        ``deleting``: its volume is read by id here (gone: the row goes).
        """
        if row.volume_id is None or row.volume_id in by_id:
            return True
        if row.status == models.CREATING:
            return _age(row.created_at) > self._creating_timeout
        if row.status == models.DELETING:
            try:
                by_id[row.volume_id] = self._cinder.get_volume(row.volume_id)
            except exception.VolumeNotFound:
                pass
            return True
        return False

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
        gone, or the late window has passed since the row was written (a
        live peer's create request has had its answer or given up by
        then: no volume was bound to the row).  Its create never reached
        Cinder (one that lands later, or that a peer's busy workers send
        later, is a tagged orphan, adopted or deleted), so the row can go.
        """
        if self._is_pending(row.request_id):
            return False
        mine = row.host == self._host
        gone = (row.incarnation is not None and
                row.incarnation not in self._peers.incarnations(row.cluster))
        return mine or gone or _age(row.created_at) > min(
            self._late_window.seconds, self._creating_timeout)

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


def _rotation_waits(specs, names, rows):
    """True while a pool to settle has ready or creating rows of another
    snapshot than its own: draining them needs every volume listed."""
    for name in names:
        spec = specs.get(name)
        if spec is not None and any(
                row.snapshot_id != spec.snapshot_id and
                row.status in (models.AVAILABLE, models.CREATING)
                for row in rows.get(name, ())):
            return True
    return False


def _by_pool(items, pool_of):
    """``{pool: [items]}`` in the order given; items of no pool left out."""
    grouped = {}
    for item in items:
        pool = pool_of(item)
        if pool is not None:
            grouped.setdefault(pool, []).append(item)
    return grouped
