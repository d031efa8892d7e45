"""The claim: hand one ready volume to one caller, or create one on a miss.

Three steps, each undone if a later one fails (the seeds/001 revert idea):

1. take a row atomically in the database (``available`` -> ``claiming``);
2. in Cinder, rename the volume and drop the pool tags in one request;
3. delete the row.

If step 2 fails, the row goes back to ``available`` (when Cinder surely did
not apply the change) or stays ``claiming`` for sync to settle (when the
answer was lost and Cinder may have applied it).  A crash between 2 and 3
leaves a ``claiming`` row that sync resolves after ``claim_timeout``.
Claims that arrive together share the transactions of steps 1 and 3
(group commit), so the database work per claim shrinks under load.

A claim into another project (``project_id``, RPC 1.3) adds, between 2
and 3, a Cinder volume transfer: created by the pool's project, accepted
as the receiving project.  If either fails, the transfer is withdrawn, the
volume is tagged again and its row released: it stays in the pool and the
caller gets VolumeTransferFailed.  A miss creates the volume directly as
the receiving project.
"""

import threading
import time

from oslo_log import log as logging
from oslo_utils import uuidutils

from volume_pool import cinder as vp_cinder
from volume_pool import exception
from volume_pool import group_commit
from volume_pool import notifications
from volume_pool.db import api as db_api

LOG = logging.getLogger(__name__)

# Volumes that vanished or were taken behind the pool's back are skipped;
# this bounds how many such volumes one claim walks past.
_MAX_STALE_SKIPS = 5

# Claim steps that arrive together share a database transaction (see
# volume_pool.group_commit); at most this many per transaction.
_MAX_STEPS_PER_TRANSACTION = 32
_TAKE, _FINISH = 'take', 'finish'


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

    def __init__(self, cinder, stats, host=None):
        self._cinder = cinder
        self._stats = stats
        self._host = host
        self._transactions = {}
        self._transactions_lock = threading.Lock()

    def claim(self, spec, name=None, create_on_miss=True, project_id=None,
              context=None):
        started = time.monotonic()
        row = None
        try:
            receiver = self._receiver(project_id)
            result, row = self._from_pool(spec, name, project_id, receiver)
            if result is None:
                if not create_on_miss:
                    notifications.claim_miss(
                        self._host, spec, time.monotonic() - started,
                        create_on_miss, context=context)
                    raise exception.PoolEmpty(pool=spec.name)
                result = self._create(spec, name, project_id, receiver)
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
        if row is not None:
            notifications.claim_hit(self._host, spec, result, duration,
                                    ready_at=row.ready_at, context=context)
        else:
            notifications.claim_miss(self._host, spec, duration,
                                     create_on_miss, result=result,
                                     context=context)
        return result

    def _receiver(self, project_id):
        """The Cinder handle of the receiving project, checked up front so
        an unusable ``[cinder]`` auth fails before any volume is touched."""
        if project_id is None:
            return None
        try:
            return self._cinder.as_project(project_id)
        except exception.ConfigError as exc:
            raise exception.VolumeTransferFailed(
                volume_id='(none)', project_id=project_id, reason=str(exc))

    def _from_pool(self, spec, name, project_id=None, receiver=None):
        """Returns (claim result, row), or (None, None) when empty."""
        claim_id = uuidutils.generate_uuid()
        for _skip in range(_MAX_STALE_SKIPS):
            steps = self._steps(spec)
            row = steps.take(claim_id)
            if row is None:
                return None, None
            volume = self._hand_over(row, claim_id, name)
            if volume is None:
                continue
            if receiver is not None:
                self._transfer(row, claim_id, project_id, receiver)
            if not steps.finish(row.id, claim_id):
                # Sync settled this claim as abandoned meanwhile; the
                # volume is untagged and ours to hand out all the same.
                LOG.warning('Claim %(claim)s of volume %(volume)s finished '
                            'after its row was settled by sync.',
                            {'claim': claim_id, 'volume': row.volume_id})
            result = volume_view(volume, spec, 'pool')
            if project_id is not None:
                result['project_id'] = project_id
            return result, row
        return None, None

    def _steps(self, spec):
        """Steps 1 and 3 for the claims of ``spec``'s pool, batched."""
        key = (spec.name, spec.cluster)
        with self._transactions_lock:
            steps = self._transactions.get(key)
            if steps is None or steps.snapshot_id != spec.snapshot_id:
                # New, or the snapshot rotated: claims still running on
                # the old one keep their own reference.
                steps = self._transactions[key] = _PoolSteps(spec)
            return steps

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

    def _transfer(self, row, claim_id, project_id, receiver):
        """Step 2b: hand the volume to ``project_id``, or undo and raise.

        After a failure the volume may still have changed hands (an accept
        whose answer was lost): its owner, read back, decides.
        """
        transfer_id = None
        try:
            transfer_id, auth_key = self._cinder.create_transfer(
                row.volume_id, name='volume-pool-claim-%s' % claim_id)
            receiver.accept_transfer(transfer_id, auth_key)
            return
        except exception.CinderException as exc:
            failure = exc
        LOG.warning('Transfer of volume %(volume)s to project %(project)s '
                    'failed: %(err)s', {'volume': row.volume_id,
                                        'project': project_id,
                                        'err': failure})
        try:
            if transfer_id is not None:
                self._cinder.delete_transfer(transfer_id)
            owner = self._cinder.get_volume(row.volume_id).project_id
        except exception.CinderException as exc:
            LOG.warning('Could not withdraw the transfer of volume %(id)s: '
                        '%(err)s; sync settles it after claim_timeout.',
                        {'id': row.volume_id, 'err': exc})
            raise exception.VolumeTransferFailed(
                volume_id=row.volume_id, project_id=project_id,
                reason=str(failure))
        if owner == project_id:
            LOG.info('Transfer of volume %s was accepted after all.',
                     row.volume_id)
            return
        self._undo_uncertain(row, claim_id)
        raise exception.VolumeTransferFailed(
            volume_id=row.volume_id, project_id=project_id,
            reason=str(failure))

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

    def _create(self, spec, name, project_id=None, receiver=None):
        """A miss: create a volume for the caller; it is never the pool's.

        Into another project, the receiving project creates it itself.
        """
        volume = (receiver or self._cinder).create_volume(
            snapshot_id=spec.snapshot_id,
            name=name or '%sclaimed-%s' % (spec.volume_name_prefix,
                                           uuidutils.generate_uuid()[:8]),
            metadata={}, size=spec.size, volume_type=spec.volume_type,
            availability_zone=spec.availability_zone)
        result = volume_view(volume, spec, 'created')
        if project_id is not None:
            result['project_id'] = project_id
        return result


class _PoolSteps:
    """Steps 1 and 3 of the concurrent claims of one pool: each transaction
    takes rows for the claims waiting to start and deletes the rows of the
    claims waiting to finish."""

    def __init__(self, spec):
        self._pool = spec.name
        self._cluster = spec.cluster
        self.snapshot_id = spec.snapshot_id
        self._committer = group_commit.GroupCommitter(
            self._run, _MAX_STEPS_PER_TRANSACTION)

    def take(self, claim_id):
        """A row moved to ``claiming`` for ``claim_id``, or None if empty."""
        return self._committer.submit((_TAKE, claim_id))

    def finish(self, row_id, claim_id):
        """Delete the claimed row; False if sync settled it meanwhile."""
        return self._committer.submit((_FINISH, (row_id, claim_id)))

    def _run(self, steps):
        rows, done = db_api.settle_claims(
            self._pool, self._cluster,
            [arg for kind, arg in steps if kind == _TAKE],
            [arg for kind, arg in steps if kind == _FINISH],
            snapshot_id=self.snapshot_id)
        rows, done = iter(rows), iter(done)
        return [next(rows) if kind == _TAKE else next(done)
                for kind, _arg in steps]
