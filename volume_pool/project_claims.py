"""A claim into another project: the volume is the pool's until Cinder
accepts its transfer, and the caller's from that moment on.

The volume, from the pool or made for a miss, is in the pool's own
project and carries the pool's tags until the claim hands it over, so
sync can always find it.  The transfer's two steps start only while the
claim holds its row in time.  Once Cinder accepted the transfer, the
receipt says ``used`` before anything else happens: a retry with the
claim's key must get this volume, never a second one.  Only a claim its
caller gave up (released before the accept landed, or answered after its
deadline) gives the volume back: the pool transfers it home
(:mod:`volume_pool.project_returns`).

When a step fails, whether Cinder accepted the transfer all the same is
asked of the receiving project (the pool's Cinder user may not see
another project's volumes).  If not, the claim gives the volume back at
once when every request was answered, or leaves it to wait out the late
window of the request that was not (:mod:`volume_pool.late_requests`).
"""

import time

from oslo_log import log as logging

from volume_pool import exception
from volume_pool.db import claims as db_claims
from volume_pool.db import holds as db_holds
from volume_pool.db import models
from volume_pool.db import receipts as db_receipts

LOG = logging.getLogger(__name__)


def check_hold(row, request):
    """Raise ClaimTimedOut unless the claim still holds its row in time:
    checked before each Cinder step that moves the volume out of reach."""
    if not db_holds.still_holds(row.id, request.claim_id):
        raise exception.ClaimTimedOut(claim_key=request.claim_key)


def committed_answer(claim_id):
    """The answer a claim's receipt holds, if the claim ended with one
    (a commit whose reply was lost)."""
    receipt = db_receipts.get_by_claim(claim_id)
    if receipt is not None and receipt.state in models.HELD:
        return db_receipts.answer(receipt)
    return None


class ProjectHandover:
    """Transfers of one manager's claims into other projects."""

    def __init__(self, cinder, late_window, undo, poll_interval=0.5):
        """``undo(row, claim_id, volume_id=None, failure=None)``: the
        claimer's undo, which gives a volume back to its pool."""
        self._cinder = cinder
        self._late = late_window
        self._undo = undo
        self._poll_interval = poll_interval

    def wait_available(self, row, request, volume):
        """A miss's new volume, once Cinder has made it (a transfer needs
        an ``available`` volume); polled while the claim holds its row."""
        while volume.status == 'creating':
            check_hold(row, request)
            time.sleep(self._poll_interval)
            volume = self._cinder.get_volume(volume.id)
        if volume.status != 'available':
            raise exception.VolumeTransferFailed(
                volume_id=volume.id, project_id=request.project_id,
                reason='the new volume is %s' % volume.status)
        return volume

    def hand_over(self, row, request, receiver, result):
        """Transfer the held volume to ``request.project_id`` and record
        the claim ``used``; returns the answer, or raises (the volume is
        then back in its pool, or waits out a late window)."""
        volume_id = result['volume_id']
        transfer_id = None
        try:
            check_hold(row, request)
            transfer_id, auth_key = self._cinder.create_transfer(
                volume_id, name='volume-pool-claim-%s' % request.claim_id)
            check_hold(row, request)
            receiver.accept_transfer(transfer_id, auth_key)
        except (exception.CinderException, exception.ClaimTimedOut) as exc:
            self._withdraw(row, request, receiver, volume_id, transfer_id,
                           exc)
            LOG.info('Transfer of volume %s was accepted after all.',
                     volume_id)
        return self._record(row, request, result)

    def _record(self, row, request, result):
        """Accepted: the receipt says ``used`` first, then the answer."""
        answer = (db_claims.record_handed_over(row.id, request.claim_id,
                                               result) or
                  committed_answer(request.claim_id))
        if answer is None:
            # Its caller released the key meanwhile: the volume comes
            # back from the project now (or, if sync took the row over,
            # when sync settles it).
            self._undo(row, request.claim_id, volume_id=result['volume_id'])
            raise exception.ClaimTimedOut(claim_key=request.claim_key)
        if request.claim_key is None:
            answer.pop('lease_expires_at', None)
        return answer

    def _withdraw(self, row, request, receiver, volume_id, transfer_id,
                  failure):
        """After a failed step: returns if Cinder accepted the transfer
        all the same; otherwise gives the volume back or leaves it to
        wait out the late window, and raises."""
        project_id = request.project_id
        LOG.warning('Transfer of volume %(volume)s to project %(project)s '
                    'failed: %(err)s', {'volume': volume_id,
                                        'project': project_id,
                                        'err': failure})
        try:
            if transfer_id is not None:
                self._cinder.delete_transfer(transfer_id)
            if _owned_by(receiver, volume_id, project_id):
                return
        except exception.CinderException as exc:
            self._late.wait_out(row.id, request.claim_id, volume_id,
                                why='withdrawing its transfer: %s'
                                % exception.first_line(exc))
            raise _failed(volume_id, project_id, failure)
        self._undo(row, request.claim_id, volume_id=volume_id,
                   failure=failure)
        raise _failed(volume_id, project_id, failure)


def _owned_by(receiver, volume_id, project_id):
    """True when the receiving project has the volume: asked as that
    project, which sees its own volumes whatever the pool's user sees."""
    try:
        seen = receiver.get_volume(volume_id)
    except exception.VolumeNotFound:
        return False
    # An admin sees every project's volumes, with their owner.
    return seen.project_id in (None, project_id)


def _failed(volume_id, project_id, failure):
    if isinstance(failure, exception.ClaimTimedOut):
        return failure
    return exception.VolumeTransferFailed(
        volume_id=volume_id, project_id=project_id, reason=str(failure))
