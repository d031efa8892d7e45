"""Tagged volumes that no row records: adopted up to the target, or deleted.

Sync hands over the listed volumes of its pools that no row names, once
the rows are settled.  One is adopted while its pool is short of the
target (a pool no longer configured keeps them all), otherwise deleted;
one that a claim holds (a late request put the pool's tags back) only
loses those tags again.
"""

from oslo_db import exception as db_exc
from oslo_log import log as logging
from oslo_utils import timeutils
from oslo_utils import uuidutils

from volume_pool import cinder as vp_cinder
from volume_pool import exception
from volume_pool.db import api as db_api
from volume_pool.db import models
from volume_pool.db import receipts as db_receipts

LOG = logging.getLogger(__name__)


class Orphans:
    """Adopts or deletes the orphans of one cluster's pools."""

    def __init__(self, cinder, host, creating_timeout, peers):
        """``peers``: the :class:`volume_pool.peers.LiveManagers` of the
        sync run, which says when a snapshot's rotation still waits."""
        self._cinder = cinder
        self._host = host
        self._creating_timeout = creating_timeout
        self._peers = peers

    def settle(self, orphans, specs, cluster, report):
        """Adopt or delete the listed volumes no row owns, ``{pool:
        volumes}``, after one more read of those pools' rows; returns the
        pools skipped for a Cinder error (orphans may be left unsettled)."""
        # Read the table again, after the listing: a claim or a create
        # that started since the first read holds a row by now (written
        # before Cinder is asked), or a receipt once it finished.
        fresh = db_api.get_rows(cluster, pools=sorted(orphans))
        requests = {r.request_id for r in fresh}
        recorded = {r.volume_id for r in fresh}
        left = {pool: [v for v in volumes if v.id not in recorded and
                       v.request_id not in requests]
                for pool, volumes in orphans.items()}
        held = db_receipts.holding(
            [v.id for volumes in left.values() for v in volumes])
        rows_of = {}
        for row in fresh:
            rows_of.setdefault(row.pool, []).append(row)
        skipped = set()
        for pool, volumes in sorted(left.items()):
            for volume in volumes:
                receipt = held.get(volume.id)
                if receipt is not None and receipt.state in models.HELD:
                    # A caller's: a late request put the pool's tags back.
                    self._restore_claimed(volume, receipt)
            spec = specs.get(pool)
            # Count what is left once the rows are settled: an orphan may
            # fill the place of a volume this very sync dropped.
            live = sum(1 for r in rows_of.get(pool, ())
                       if r.status in (models.AVAILABLE, models.CREATING)
                       and (spec is None or
                            r.snapshot_id == spec.snapshot_id))
            try:
                for volume in volumes:
                    if volume.id not in held:
                        live += self._settle_one(volume, spec, cluster,
                                                 live, report)
            except exception.CinderException as exc:
                report.errors += 1
                skipped.add(pool)
                LOG.warning('Sync of pool %(pool)s skipped: %(err)s',
                            {'pool': pool, 'err': exc})
        return skipped

    def _restore_claimed(self, volume, receipt):
        """Drop the pool tags a late request put back on a caller's
        volume, if it still carries them: the listing may be older than
        the claim that took the volume since."""
        metadata = (vp_cinder.lease_tags(receipt.cluster)
                    if receipt.state == models.R_LEASED else {})
        try:
            if vp_cinder.TAG_POOL not in self._cinder.get_volume(
                    volume.id).metadata:
                return
            LOG.warning('Volume %(id)s carries pool tags but belongs to '
                        'claim %(claim)s; dropping the tags.',
                        {'id': volume.id, 'claim': receipt.claim_id})
            self._cinder.update_volume(volume.id, metadata=metadata)
        except exception.VolumeNotFound:
            return
        except exception.CinderException as exc:
            LOG.warning('Could not drop the pool tags of %(id)s: %(err)s',
                        {'id': volume.id, 'err': exc})


    def _settle_one(self, volume, spec, cluster, live, report):
        """Adopt (returns 1) or delete a tagged volume nobody records."""
        if volume.status == 'deleting':
            return 0
        if volume.in_use:
            self._cinder.remove_pool_tags(volume)
            return 0
        if spec is None:
            # A pool no longer configured keeps its volumes: recorded, so
            # that "pool list" shows them and "pool drain" finds them.
            adoptable = (not volume.in_error and
                         volume.status in ('available', 'creating'))
        else:
            adoptable = (not volume.in_error and
                         volume.status in ('available', 'creating') and
                         volume.snapshot_id == spec.snapshot_id and
                         live < spec.target)
        if spec is None and not adoptable:
            return 0
        if (not adoptable and volume.snapshot_id != spec.snapshot_id and
                self._peers.rotation_waits(spec)):
            return 0  # another live manager may still serve that snapshot
        if adoptable:
            status = (models.AVAILABLE if volume.status == 'available'
                      else models.CREATING)
            try:
                db_api.create_volume_row(
                    request_id=(volume.request_id or
                                uuidutils.generate_uuid()),
                    volume_id=volume.id, pool=volume.pool, cluster=cluster,
                    snapshot_id=volume.snapshot_id or spec.snapshot_id,
                    size=volume.size,
                    name=volume.name or volume.id, host=self._host,
                    status=status)
            except db_exc.DBDuplicateEntry:
                # Its row came after this sync read the pool's rows: it
                # fills a place all the same.
                LOG.debug('Volume %s was adopted by another sync first.',
                          volume.id)
                return 1
            LOG.debug('Adopted tagged volume %(id)s into pool %(pool)s.',
                      {'id': volume.id, 'pool': volume.pool})
            report.adopted += 1
            return 1
        if volume.status == 'creating' and (
                _age(volume) < self._creating_timeout):
            return 0  # decide once it has finished
        LOG.debug('Deleting tagged volume %(id)s that no pool needs.',
                  {'id': volume.id})
        try:
            self._cinder.delete_volume(volume.id)
            report.deleted += 1
        except exception.CinderException as exc:
            report.errors += 1
            LOG.warning('Deleting volume %(id)s failed, will retry: %(err)s',
                        {'id': volume.id, 'err': exc})
        return 0



def _age(volume):
    """Seconds since Cinder created ``volume`` (0 if it does not say)."""
    if volume.created_at is None:
        return 0.0
    return (timeutils.utcnow() -
            timeutils.normalize_time(volume.created_at)).total_seconds()
