"""Settle a held volume from Cinder's truth: back to its pool, or let go.

Every path that has to decide what became of a volume it holds (a claim
undoing itself, a caller's release, a lease that ran out, sync taking over
an abandoned claim) asks Cinder for the volume by id, never trusting a
listing or an earlier answer: a request that Cinder applied late may have
renamed or untagged it.  An unused volume gets its pool name and tags back
before its row is released; a volume in use, moved to another project or
gone is let go -- but for an unused one that a claim into another
project handed over after its caller gave it up, which comes back (see
:mod:`volume_pool.project_returns`).
"""

import collections

from oslo_log import log as logging

from volume_pool import cinder as vp_cinder
from volume_pool import exception
from volume_pool import project_returns
from volume_pool.db import claims as db_claims
from volume_pool.db import holds as db_holds
from volume_pool.db import models
from volume_pool.db import receipts as db_receipts

LOG = logging.getLogger(__name__)

RETURNED = 'returned'
LET_GO = 'let_go'
HANDED_OUT = 'handed_out'
NOT_HELD = 'not_held'

Outcome = collections.namedtuple('Outcome', 'action reason receipt_state')


def settle(cinder, row, claim_id, volume_id=None, volume=None,
           answered_lease=None):
    """Decide the held ``row`` (held under ``claim_id``) from Cinder.

    ``volume``, when given, must have been read by id just now.
    ``answered_lease``: not None when the hold is a claim that may have
    answered (sync took it over from a claimer that did not end it): if
    its hand-over landed, the volume is its caller's, leased for that
    many seconds if it carries the lease tag.  Raises a CinderException
    if Cinder cannot tell or cannot be changed: the row stays held and is
    settled again later.
    """
    volume_id = volume_id or row.volume_id
    try:
        current = volume or cinder.get_volume(volume_id)
    except exception.VolumeNotFound:
        receiver = _receiving_project(cinder, claim_id, volume_id)
        if receiver is None:
            return _let_go(row, claim_id, 'the volume is gone')
        current, outcome = _from_project(cinder, row, claim_id, volume_id,
                                         receiver)
        if outcome is not None:
            return outcome
    if current.status == 'awaiting-transfer' and _in_own_project(cinder,
                                                                 current):
        # A claim into a project stopped between creating and accepting
        # its transfer: withdraw it, the volume is ours (unless the accept
        # landed meanwhile: read again).
        cinder.cancel_transfers(volume_id)
        current = cinder.get_volume(volume_id)
    if not _in_own_project(cinder, current):
        current, outcome = _from_project(cinder, row, claim_id, volume_id,
                                         current.project_id)
        if outcome is not None:
            return outcome
    if answered_lease is not None and vp_cinder.TAG_POOL not in (
            current.metadata):
        handed_out = _hand_out(row, claim_id, current, answered_lease)
        if handed_out is not None:
            return handed_out
    if current.in_use or current.status in ('deleting', 'error_deleting'):
        return _let_go(row, claim_id, 'it is %s' % (
            'attached' if current.attached else current.status))
    if current.in_error:
        # Not worth a place in the pool: delete it (retried by sync).
        state = db_holds.give_back(row.id, claim_id,
                                    status=models.DELETING)
        if state is False:
            return Outcome(NOT_HELD, 'the row is no longer held', None)
        cinder.delete_volume(volume_id)
        return Outcome(LET_GO, 'it is in %s' % current.status, state)
    if not vp_cinder.is_pool_volume_of(current, row.pool, row.cluster,
                                       row.name, cinder.deployment):
        cinder.update_volume(volume_id, name=row.name,
                             metadata=vp_cinder.pool_tags(
                                 row.pool, row.cluster, row.request_id))
    status = (models.CREATING if current.status == 'creating'
              else models.AVAILABLE)
    state = db_holds.give_back(row.id, claim_id, status=status,
                                size=current.size)
    if state is False:
        return Outcome(NOT_HELD, 'the row is no longer held', None)
    LOG.debug('Volume %(id)s is back in pool %(pool)s.',
              {'id': volume_id, 'pool': row.pool})
    return Outcome(RETURNED, None, state)


def _hand_out(row, claim_id, current, lease):
    """A keyed claim in the pool's project whose hand-over landed (the
    pool tag is gone): it answered, or its caller's retry with the key
    gets the volume.  None if the claim is not such a claim."""
    receipt = db_receipts.get_by_claim(claim_id)
    if (receipt is None or receipt.state != models.R_CLAIMING or
            receipt.claim_key is None or receipt.target_project):
        return None
    leased = vp_cinder.TAG_LEASE in current.metadata and not current.in_use
    answer = db_holds.hand_out(row.id, claim_id, {
        'volume_id': current.id, 'name': current.name,
        'snapshot_type': receipt.pool, 'snapshot_id': receipt.snapshot_id,
        'size': current.size, 'status': current.status,
        'cluster': receipt.cluster or None, 'source': receipt.source,
        'claim_key': receipt.claim_key}, lease=lease if leased else 0.0)
    if answer is None:
        return Outcome(NOT_HELD, 'the row is no longer held', None)
    LOG.info('Volume %(id)s of pool %(pool)s was handed to the caller of '
             'claim %(key)s before its claim ended; recorded as %(state)s.',
             {'id': current.id, 'pool': row.pool, 'key': receipt.claim_key,
              'state': models.R_LEASED if answer['lease_expires_at']
              else models.R_USED})
    return Outcome(HANDED_OUT, 'its claim had handed it over',
                   models.R_CLAIMING)


def _in_own_project(cinder, volume):
    return volume.project_id in (None, cinder.own_project_id())


def _from_project(cinder, row, claim_id, volume_id, project_id):
    """The volume is in ``project_id``: ``(volume, None)`` once it came
    back, as the pool's project reads it, when its claim's caller gave it
    up; else ``(None, outcome)``: it stays there, and the row goes."""
    given_up = project_returns.given_up_in(
        db_receipts.get_by_claim(claim_id), project_id)
    if given_up:
        try:
            current = project_returns.take_back(
                cinder, volume_id, project_id,
                lambda: db_holds.still_holds(row.id, claim_id))
        except project_returns.HoldLost:
            return None, Outcome(NOT_HELD, 'the row is no longer held', None)
        if current is not None:
            return current, None
    return None, _let_go(row, claim_id, 'it was transferred to project %s'
                         % project_id, owner=project_id, given_up=given_up)


def _receiving_project(cinder, claim_id, volume_id):
    """The project a claim into a project handed ``volume_id`` to, when
    the pool's own Cinder user cannot see it (a member, not an admin, of
    the pool's project): asked as that project.  None when the claim was
    not into a project, or that project does not have the volume either.
    """
    receipt = db_receipts.get_by_claim(claim_id)
    project_id = receipt.target_project if receipt is not None else None
    if not project_id:
        return None
    try:
        seen = project_returns.acting_as(cinder, project_id).get_volume(
            volume_id)
    except exception.VolumeNotFound:
        return None
    if seen.project_id not in (None, project_id):
        return None
    return project_id


def _let_go(row, claim_id, reason, owner=None, given_up=False):
    state = db_holds.let_go(row.id, claim_id, owner=owner, given_up=given_up)
    if state is False:
        return Outcome(NOT_HELD, 'the row is no longer held', None)
    if state == db_holds.RELEASED_MEANWHILE:
        return Outcome(NOT_HELD, 'a release stopped its claim meanwhile; it '
                       'is settled again', None)
    LOG.info('Volume %(id)s leaves pool %(pool)s: %(why)s.',
             {'id': row.volume_id, 'pool': row.pool, 'why': reason})
    return Outcome(LET_GO, reason, state)


# Who held a row sync takes over, by the state of its receipt.
_HOLDERS = {models.R_CLAIMING: 'a claim',
            models.R_RELEASING: 'a release',
            models.R_RETURNING: 'a lease return'}


def settle_taken(cinder, pool, taken, by_request, find_untagged, report,
                 claim_lease=0.0):
    """Settle the holds sync took over (``db_holds.take_over``) from
    Cinder's truth; ``find_untagged(row)`` looks up a create an earlier
    release did not tag with the cluster.  A claim that held its row to
    the end may have answered: its volume is its caller's if the
    hand-over landed, leased for ``claim_lease`` seconds.  Returns the
    rows settled."""
    for row, receipt_state in taken:
        if row.volume_id is None:
            volume = (by_request.get(row.request_id) or
                      find_untagged(row))
            if volume is None:
                # The create never reached Cinder (or lands later and
                # is then an orphan like any other).
                db_holds.let_go(row.id, row.claim_id)
                report.removed += 1
                continue
            db_claims.bind_volume(row.id, row.claim_id, volume.id)
            row.volume_id = volume.id
        may_have_answered = (receipt_state == models.R_CLAIMING and
                             row.status == models.CLAIMING)
        try:
            outcome = settle(cinder, row, row.claim_id,
                             answered_lease=claim_lease if may_have_answered
                             else None)
        except exception.CinderException as exc:
            report.errors += 1
            LOG.warning('Settling volume %(id)s of an abandoned claim '
                        'failed, will retry: %(err)s',
                        {'id': row.volume_id, 'err': exc})
            continue
        if outcome.action == RETURNED:
            report.released += 1
        elif outcome.action in (LET_GO, HANDED_OUT):
            report.removed += 1
        LOG.info('Settled volume %(id)s of pool %(pool)s left by '
                 '%(what)s: %(action)s%(why)s.',
                 {'id': row.volume_id, 'pool': pool,
                  'what': _HOLDERS.get(receipt_state, 'a claim'),
                  'action': outcome.action,
                  'why': ' (%s)' % outcome.reason if outcome.reason
                  else ''})
    return [row for row, _state in taken]
