"""Adopt or drain the pool volumes of a cluster that lost its managers.

A manager syncs only the rows and volumes of its own ``[DEFAULT]
cluster``: after the name changes (unset to ``east``, ``east`` to
``west``) those of the old name are synced by nobody.  ``volume-pool-manage
cluster adopt OLD`` moves them into the manager's cluster, whose sync then
settles them; ``cluster drain OLD`` deletes them.  Both refuse while a
manager of the old cluster is alive, and both are safe to run again.

The cluster with no name is called ``default``
(:data:`volume_pool.cluster_names.NO_CLUSTER`), its volumes' cluster tag.
"""

import dataclasses
import time

from oslo_log import log as logging

from volume_pool import cinder as vp_cinder
from volume_pool import cluster_names
from volume_pool import exception
from volume_pool import notifications
from volume_pool import pool_deletes
from volume_pool import sync
from volume_pool.db import api as db_api
from volume_pool.db import clusters as db_clusters
from volume_pool.db import managers as db_managers
from volume_pool.db import models
from volume_pool.db import receipts as db_receipts

LOG = logging.getLogger(__name__)

# Rows a claim, a release or a lease return holds: only sync settles them.
HELD = (models.CLAIMING, models.UNCERTAIN)


class ClusterRefused(exception.VolumePoolException):
    """An adopt or drain that would race with a live manager, or that
    names the manager's own cluster; nothing was changed."""

    msg_fmt = "Cluster %(cluster)s: %(reason)s"
    code = 409


# -- reports ---------------------------------------------------------------

def stranded_warnings(current, down_time):
    """One sentence per cluster other than ``current`` that has rows and
    no live manager: nobody syncs its volumes."""
    stranded = db_clusters.stranded(cluster_names.key_of(current),
                                    down_time)
    return [_describe(cluster, counts) for cluster, counts in
            sorted(stranded.items())]


def _describe(cluster, counts):
    name = cluster_names.name_of(cluster)
    detail = ', '.join('%d %s' % (counts[status], status)
                       for status in models.STATUSES if counts.get(status))
    return ('cluster "%s" has %d volumes in the table (%s) and no live '
            'manager: "volume-pool-manage cluster adopt %s" or "cluster '
            'drain %s".' % (name, sum(counts.values()), detail, name, name))


def coordination_warning(conf):
    """A sentence when several live managers share this cluster with no
    coordination backend (each syncs every pool), else None."""
    if conf.coordination.backend_url:
        return None
    hosts = {host for host, _incarnation, _at in db_managers.live(
        cluster_names.key_of(conf.cluster) or None,
        conf.volume_pool.service_down_time)}
    if len(hosts) < 2:
        return None
    return ('%d managers share cluster %s without [coordination] '
            'backend_url: replenish is serialised by the database, but '
            'every manager syncs every pool; configure a coordination '
            'backend.' % (len(hosts), cluster_names.name_of(
                cluster_names.key_of(conf.cluster))))


def _refuse_if_served(cluster, down_time):
    hosts = sorted({host for host, _incarnation, _at in db_managers.live(
        cluster or None, down_time)})
    if hosts:
        raise ClusterRefused(
            cluster=cluster_names.name_of(cluster),
            reason='manager(s) %s are alive in it; stop them (they count '
                   'as gone service_down_time, %d s, after their last '
                   'heartbeat) and run the command again'
                   % (', '.join(hosts), down_time))


# -- adopt -----------------------------------------------------------------

@dataclasses.dataclass
class AdoptReport:
    rows: int = 0           # rows moved into the new cluster
    receipts: int = 0       # claim receipts moved with them
    receipts_kept: int = 0  # receipts whose key the new cluster uses
    retagged: int = 0       # Cinder volumes given the new cluster's tag
    failed: list = dataclasses.field(default_factory=list)  # (id, why)


def adopt(cinder, old, new, down_time):
    """Move the rows, claim receipts and Cinder tags of cluster ``old``
    into cluster ``new``; the sync of ``new`` settles them from then on.

    Rows move first, in one transaction, tags second: a volume whose row
    moved but whose tag did not (a crash, a failed request) is missing
    from the new cluster's listing, so its sync asks Cinder by id and
    tags it again.  Held rows move too: the sync of ``new`` settles the
    claims of the stopped managers.  A tagged volume with no row gets the
    new tag as well, to be adopted or deleted by that sync as an orphan.
    """
    old, new = cluster_names.key_of(old), cluster_names.key_of(new)
    if old == new:
        raise ClusterRefused(cluster=cluster_names.name_of(old),
                             reason='it is this manager\'s own cluster '
                                    '([DEFAULT] cluster)')
    _refuse_if_served(old, down_time)
    report = AdoptReport()
    report.rows, report.receipts, report.receipts_kept = db_clusters.move(
        old, new)
    for volume in cinder.list_volumes(
            {vp_cinder.TAG_CLUSTER: vp_cinder.cluster_tag(old)}):
        if volume.status != 'deleting':
            _retag(cinder, volume, vp_cinder.TAG_CLUSTER, new, report)
    # Leases are listed by their tag, valued with the receipt's cluster.
    leased = cinder.list_volumes(
        {vp_cinder.TAG_LEASE: vp_cinder.cluster_tag(old)})
    receipts = db_receipts.holding([v.id for v in leased],
                                   states=models.HELD)
    for volume in leased:
        receipt = receipts.get(volume.id)
        if receipt is not None and receipt.cluster == new:
            _retag(cinder, volume, vp_cinder.TAG_LEASE, new, report)
    return report


def _retag(cinder, volume, tag, cluster, report):
    # A merge of the one key: a claim that changes the volume's metadata
    # meanwhile keeps what it set.
    try:
        cinder.add_tags(volume.id, {tag: vp_cinder.cluster_tag(cluster)})
    except exception.VolumeNotFound:
        return  # deleted meanwhile
    except exception.CinderException as exc:
        report.failed.append((volume.id, exception.first_line(exc)))
        return
    report.retagged += 1


# -- drain -----------------------------------------------------------------

@dataclasses.dataclass
class DrainReport:
    deleted: int = 0   # Cinder deletes requested
    dropped: int = 0   # rows forgotten: volume gone or never created
    released: int = 0  # rows of volumes in use: pool tags dropped
    spared: int = 0    # tagged volumes without a row, in use or claimed
    held: int = 0      # rows held by claims of stopped managers
    failed: int = 0    # Cinder deletes that failed (logged)
    pending: int = 0   # volumes still in Cinder when the wait ended
    rows_left: int = 0  # rows of the cluster still in the table

    @property
    def complete(self):
        return not (self.failed or self.pending or self.rows_left)


def drain(cinder, old, current, down_time, timeout, poll_interval=2.0):
    """Delete the volumes of cluster ``old`` and, once Cinder no longer
    has them, their rows; wait at most ``timeout`` seconds for that.

    Never the operator's own cluster ``current``, even with its managers
    stopped for maintenance.  Rows held by a claim stay (only a sync may
    settle them: adopt the cluster for that); a volume without a row is
    deleted unless it is in use or a claim's.
    """
    old = cluster_names.key_of(old)
    if old == cluster_names.key_of(current):
        raise ClusterRefused(cluster=cluster_names.name_of(old),
                             reason='it is this manager\'s own cluster '
                                    '([DEFAULT] cluster); "pool drain" '
                                    'empties its pools')
    _refuse_if_served(old, down_time)
    report = DrainReport()
    tag = {vp_cinder.TAG_CLUSTER: vp_cinder.cluster_tag(old)}
    tagged = cinder.list_volumes(tag)
    by_id = {v.id: v for v in tagged}
    by_request = {v.request_id: v for v in tagged if v.request_id}
    waiting = {}  # volume id -> id of its row, or None
    for row in db_api.get_rows(old):
        volume_id = _drain_row(cinder, row, by_id, by_request, report)
        if volume_id is not None:
            waiting[volume_id] = row.id
    for volume_id in _delete_orphans(cinder, tagged, report):
        waiting[volume_id] = None
    _wait_until_gone(cinder, tag, waiting, timeout, poll_interval, report)
    report.rows_left = len(db_api.get_rows(old))
    return report


def _drain_row(cinder, row, by_id, by_request, report):
    """Delete one row's volume; returns its id to wait for, or None."""
    if row.status in HELD:
        report.held += 1
        return None
    if row.volume_id is None:
        volume = by_request.get(row.request_id)
        if volume is None:
            # The create never reached Cinder; one landing later is a
            # tagged volume without a row, deleted by the next drain.
            if db_api.delete_row(row.id, status=row.status):
                report.dropped += 1
            return None
        db_api.set_volume_id(row.id, volume.id)
        row.volume_id = volume.id
    volume = by_id.get(row.volume_id)
    if volume is not None and volume.in_use:
        # Taken behind the pool's back: not the pool's to delete.
        cinder.remove_pool_tags(volume)
        if db_api.delete_row(row.id, status=row.status):
            report.released += 1
        return None
    if volume is not None and volume.status == 'deleting':
        # Cinder deletes it already: only the row is left to forget.
        db_api.mark_deleting(row.id,
                             from_statuses=(models.AVAILABLE,
                                            models.CREATING))
        return row.volume_id
    if row.status == models.DELETING:
        return row.volume_id if _delete(cinder, row.volume_id,
                                        report) else None
    deletes = sync.SyncReport()
    if not pool_deletes.delete_pool_volume(
            cinder, row, deletes, 'is drained with its cluster',
            reason=notifications.EVICT_DRAIN):
        return None
    report.deleted += deletes.deleted
    report.failed += deletes.errors
    return None if deletes.errors else row.volume_id


def _delete_orphans(cinder, tagged, report):
    """Delete the tagged volumes no row of any cluster records, unless in
    use or a claim's; returns the ids to wait for."""
    volumes, requests = db_clusters.recorded(
        [v.id for v in tagged], [v.request_id for v in tagged
                                 if v.request_id])
    orphans = [v for v in tagged if v.id not in volumes and
               v.request_id not in requests]
    claimed = db_receipts.holding([v.id for v in orphans])
    deleting = []
    for volume in orphans:
        if volume.in_use or volume.id in claimed:
            report.spared += 1
        elif volume.status == 'deleting' or _delete(cinder, volume.id,
                                                    report):
            deleting.append(volume.id)
    return deleting


def _delete(cinder, volume_id, report):
    try:
        cinder.delete_volume(volume_id)
    except exception.CinderException as exc:
        report.failed += 1
        LOG.warning('Deleting volume %(id)s failed: %(err)s',
                    {'id': volume_id, 'err': exception.first_line(exc)})
        return False
    report.deleted += 1
    return True


def _wait_until_gone(cinder, tag, waiting, timeout, poll_interval, report):
    """Forget each row once Cinder no longer has its volume: one listing
    per round, a GET for each volume the listing misses."""
    deadline = time.monotonic() + timeout
    while waiting:
        listed = {v.id for v in cinder.list_volumes(tag)}
        for volume_id in [v for v in waiting if v not in listed]:
            if not _gone(cinder, volume_id):
                continue
            row_id = waiting.pop(volume_id)
            if row_id is not None and db_api.delete_row(
                    row_id, status=models.DELETING):
                report.dropped += 1
        left = deadline - time.monotonic()
        if not waiting or left <= 0:
            break
        time.sleep(min(poll_interval, left))
    report.pending = len(waiting)


def _gone(cinder, volume_id):
    try:
        cinder.get_volume(volume_id)
    except exception.VolumeNotFound:
        return True
    return False
