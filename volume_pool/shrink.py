"""Idle shrink: a quiet pool gives back the storage it does not need.

A pool with ``idle_ttl`` is idle once nobody has claimed from it for
``idle_ttl`` seconds (a pool never claimed counts from when a manager first
served it; :func:`volume_pool.sizing.is_idle`).  While idle its target is
``min_ready`` (:func:`volume_pool.sizing.target_now`), so replenish does not
recreate what the shrink deletes, and sync deletes the ready volumes above
``min_ready`` that have been ready at least ``idle_ttl``, oldest first.  The
first claim ends the idle time and restores the target.

The delete is the drain's: row ``deleting`` first, then Cinder, and sync
drops the row once Cinder no longer has the volume, so a crash at any
point leaks nothing.
"""

from volume_pool import demand
from volume_pool import notifications
from volume_pool import pool_deletes
from volume_pool import sizing
from volume_pool import sync
from volume_pool.db import api as db_api
from volume_pool.db import models


def shrink_pool(cinder, spec, last_activity, now, host=None):
    """Delete the idle pool's ready volumes above ``min_ready``."""
    report = sync.SyncReport()
    if not sizing.is_idle(spec, last_activity, now):
        return report
    rows = [row for row in db_api.get_rows(spec.cluster, pool=spec.name,
                                           status=models.AVAILABLE)
            if row.snapshot_id == spec.snapshot_id]
    excess = len(rows) - spec.min_ready
    ready_before = demand.utc_datetime(now - spec.idle_ttl)
    why = 'was not claimed for %ds (idle_ttl)' % spec.idle_ttl
    for row in rows:  # oldest first
        if excess <= 0:
            break
        if row.ready_at is None or row.ready_at > ready_before:
            continue
        if pool_deletes.delete_pool_volume(cinder, row, report, why,
                                        reason=notifications.EVICT_IDLE,
                                        host=host):
            excess -= 1
    return report


def trim_pool(cinder, spec, limit, host=None):
    """Delete the ready volumes above ``limit``, oldest first.

    A surplus comes from volumes given back (released claims, leases that
    ran out, claims settled by sync) while replenish had already replaced
    them; it never goes below ``limit``, the configured target (or
    ``max_ready`` for target = auto).
    """
    report = sync.SyncReport()
    rows = [row for row in db_api.get_rows(spec.cluster, pool=spec.name,
                                           status=models.AVAILABLE)
            if row.snapshot_id == spec.snapshot_id]
    excess = len(rows) - limit
    why = 'is above the pool\'s target of %d' % limit
    for row in rows:  # oldest first
        if excess <= 0:
            break
        # A row claimed since the read left the pool all the same: count
        # it, or the trim would go below the target.
        excess -= 1
        pool_deletes.delete_pool_volume(cinder, row, report, why,
                                     reason=notifications.EVICT_SURPLUS,
                                     host=host)
    return report


def drain_pool(cinder, pool, cluster):
    """Delete every ready volume of a pool (operator's ``pool drain``)."""
    report = sync.SyncReport()
    for row in db_api.get_rows(cluster, pool=pool, status=models.AVAILABLE):
        pool_deletes.delete_pool_volume(
            cinder, row, report, 'is drained by the operator',
            reason=notifications.EVICT_DRAIN)
    return report
