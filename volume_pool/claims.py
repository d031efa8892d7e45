"""The claim: hand one ready volume to one caller, or create one on a miss.

Three steps, each undone if a later one fails (the seeds/001 revert idea):

1. take a row atomically in the database (``available`` -> ``claiming``);
2. in Cinder, rename the volume and drop the pool tags in one request;
3. delete the row.

If step 2 fails, the row goes back to ``available`` (when Cinder surely did
not apply the change) or stays ``claiming`` for sync to settle (when the
answer was lost and Cinder may have applied it).  A crash between 2 and 3
leaves a ``claiming`` row that sync resolves after ``claim_timeout``.
"""

import time

from oslo_log import log as logging
from oslo_utils import uuidutils

from volume_pool import cinder as vp_cinder
from volume_pool import exception
from volume_pool.db import api as db_api

LOG = logging.getLogger(__name__)

# Volumes that vanished or were taken behind the pool's back are skipped;
# this bounds how many such volumes one claim walks past.
_MAX_STALE_SKIPS = 5


def volume_view(volume, spec, source):
    """The dict a claim returns (DESIGN.md, the RPC contract)."""
    return {
        'volume_id': volume.id,
        'name': volume.name,
        'snapshot_type': spec.name,
        'snapshot_id': volume.snapshot_id or spec.snapshot_id,
        'size': volume.size,
        'status': volume.status,
        'cluster': spec.cluster,
        'source': source,
    }


class Claimer:
    """Runs claims for the pools of one manager."""

    def __init__(self, cinder, stats):
        self._cinder = cinder
        self._stats = stats

    def claim(self, spec, name=None, create_on_miss=True):
        started = time.monotonic()
        try:
            result = self._from_pool(spec, name)
            if result is None:
                if not create_on_miss:
                    raise exception.PoolEmpty(pool=spec.name)
                result = self._create(spec, name)
        except Exception:
            self._stats.record(spec.name, 'error',
                               time.monotonic() - started)
            raise
        duration = time.monotonic() - started
        self._stats.record(spec.name, result['source'], duration)
        LOG.info('Claimed volume %(volume)s from pool %(pool)s '
                 '(source=%(source)s, %(ms).1f ms)',
                 {'volume': result['volume_id'], 'pool': spec.name,
                  'source': result['source'], 'ms': duration * 1000.0})
        return result

    def _from_pool(self, spec, name):
        claim_id = uuidutils.generate_uuid()
        for _skip in range(_MAX_STALE_SKIPS):
            row = db_api.claim_available(spec.name, spec.cluster, claim_id,
                                         snapshot_id=spec.snapshot_id)
            if row is None:
                return None
            volume = self._hand_over(row, claim_id, name)
            if volume is None:
                continue
            if not db_api.finish_claim(row.id, claim_id):
                # Sync settled this claim as abandoned meanwhile; the
                # volume is untagged and ours to hand out all the same.
                LOG.warning('Claim %(claim)s of volume %(volume)s finished '
                            'after its row was settled by sync.',
                            {'claim': claim_id, 'volume': row.volume_id})
            return volume_view(volume, spec, 'pool')
        return None

    def _hand_over(self, row, claim_id, name):
        """Step 2; returns the volume, or None to try the next one."""
        try:
            volume = self._cinder.update_volume(row.volume_id, name=name,
                                                metadata={})
        except exception.VolumeNotFound:
            LOG.info('Pool volume %s vanished from Cinder; forgetting it.',
                     row.volume_id)
            db_api.delete_row(row.id)
            return None
        except exception.CinderRequestRejected:
            db_api.release_claim(row.id, claim_id)
            raise
        except exception.CinderException:
            self._undo_uncertain(row, claim_id)
            raise
        if volume.status != 'available' or volume.attached:
            # Taken behind the pool's back: it is somebody else's now.
            LOG.warning('Pool volume %(id)s was %(status)s in Cinder; '
                        'dropping it from the pool.',
                        {'id': volume.id, 'status': volume.status})
            db_api.finish_claim(row.id, claim_id)
            return None
        return volume

    def _undo_uncertain(self, row, claim_id):
        """Cinder may have applied the hand-over: put the tags back first."""
        tags = vp_cinder.pool_tags(row.pool, row.cluster, row.request_id)
        try:
            self._cinder.update_volume(row.volume_id, name=row.name,
                                       metadata=tags)
        except exception.CinderException:
            LOG.warning('Could not restore pool volume %s after a failed '
                        'claim; sync will settle it after claim_timeout.',
                        row.volume_id)
            return
        db_api.release_claim(row.id, claim_id)

    def _create(self, spec, name):
        """A miss: create a volume for the caller; it is never the pool's."""
        volume = self._cinder.create_volume(
            snapshot_id=spec.snapshot_id,
            name=name or '%sclaimed-%s' % (spec.volume_name_prefix,
                                           uuidutils.generate_uuid()[:8]),
            metadata={}, size=spec.size, volume_type=spec.volume_type,
            availability_zone=spec.availability_zone)
        return volume_view(volume, spec, 'created')
