"""After the claim: confirm, release, and leases that run out.

A keyed claim leaves its volume under a lease: the caller confirms it (the
volume is the caller's for good), releases it (its boot failed: the volume
goes back to its pool if it is still unused), or does neither, and then
sync returns the volume once ``claim_lease`` has run out and it is still
available and unattached.  Sync seeing the volume attached latches the
claim as used.  Giving a volume back holds it with a pool row first (see
:mod:`volume_pool.db.receipts`), so a crash half-way is settled by sync.
"""

import time

from oslo_log import log as logging

from volume_pool import cinder as vp_cinder
from volume_pool import exception
from volume_pool import handback
from volume_pool import metrics
from volume_pool import notifications
from volume_pool.db import clock
from volume_pool.db import models
from volume_pool.db import receipts as db_receipts

LOG = logging.getLogger(__name__)

# Seconds a release or a lease return holds the volume's row; past it,
# sync finishes the return if this manager could not.
RETURN_HOLD = 60.0


def confirm(cinder, cluster, project_id, claim_key):
    """The volume is the caller's for good; idempotent."""
    receipt = db_receipts.confirm(cluster, project_id, claim_key)
    _check_held(receipt, claim_key)
    if receipt.volume_id and not receipt.target_project:
        try:
            cinder.remove_lease_tag(receipt.volume_id)
        except exception.CinderException as exc:
            # Sync drops the tag of a used claim at its next run.
            LOG.info('Could not drop the lease tag of volume %(id)s: '
                     '%(err)s', {'id': receipt.volume_id, 'err': exc})
    return db_receipts.view(receipt)


def _check_held(receipt, claim_key):
    if receipt is None:
        raise exception.ClaimNotFound(claim_key=claim_key)
    if receipt.state in (models.R_RELEASING, models.R_RELEASED):
        raise exception.ClaimReleased(claim_key=claim_key)
    if receipt.state in (models.R_RETURNING, models.R_RETURNED):
        raise exception.ClaimLeaseExpired(claim_key=claim_key)
    if receipt.state == models.R_CLAIMING:
        raise exception.ClaimInProgress(claim_key=claim_key)


def release(cinder, cluster, project_id, claim_key, host, incarnation):
    """The caller's undo: the volume goes back to its pool if unused.  A
    claim into a project is refused once its answer reached the caller
    in time; otherwise its volume comes back from that project (see
    :mod:`volume_pool.project_returns`).

    Idempotent: a claim already released (or returned) answers as it is.
    """
    receipt, row = db_receipts.begin_release(
        cluster, project_id, claim_key, host, incarnation, RETURN_HOLD)
    if receipt is None:
        raise exception.ClaimNotFound(claim_key=claim_key)
    if row is None:
        if receipt.state in models.GIVEN_BACK or _stopped(receipt):
            LOG.info('Claim %(key)s released: %(what)s.',
                     {'key': claim_key, 'what': _what_release_did(receipt)})
            return db_receipts.view(receipt)
        if receipt.state in (models.R_CLAIMING, models.R_RELEASING,
                             models.R_RETURNING):
            # Still running, or its Cinder step failed: sync finishes it.
            raise exception.ClaimInProgress(claim_key=claim_key)
        if receipt.target_project:
            raise exception.ClaimNotReleasable(
                claim_key=claim_key,
                reason='it was claimed into project %s, which owns the '
                       'volume now' % receipt.target_project)
        return db_receipts.view(receipt)  # released or returned already
    outcome = handback.settle(cinder, row, row.claim_id)
    if outcome.action == handback.NOT_HELD:
        # Sync took the release over (it ran past its hold): it finishes.
        raise exception.ClaimInProgress(claim_key=claim_key)
    if outcome.action == handback.LET_GO:
        raise exception.ClaimNotReleasable(claim_key=claim_key,
                                           reason=outcome.reason)
    LOG.info('Claim %(key)s released: volume %(id)s is back in pool '
             '%(pool)s.', {'key': claim_key, 'id': receipt.volume_id,
                           'pool': receipt.pool})
    notifications.claim_returned(host, receipt, notifications.RETURN_RELEASE)
    metrics.claim_returned(receipt.cluster, receipt.pool,
                           notifications.RETURN_RELEASE)
    return db_receipts.view(db_receipts.get(cluster, project_id, claim_key))


def _stopped(receipt):
    """A claim released before it answered, still giving its volume
    back: the release is done as far as the caller is concerned (but for
    a claim into a project, see ``released_for_the_caller``)."""
    return (receipt.state == models.R_RELEASING and receipt.result is None
            and db_receipts.released_for_the_caller(receipt))


def _what_release_did(receipt):
    if db_receipts.released_unclaimed(receipt):
        return 'recorded before any claim; a claim with the key takes nothing'
    if _stopped(receipt) or receipt.result is None:
        return 'its claim had not answered and is undone'
    return 'already %s' % receipt.state


# A pass with more receipts to look at than this lists the cluster's
# lease-tagged volumes in one request instead of reading each volume.
READ_LIMIT = 100
# A pass looks for receipts that became used since the last pass began,
# less this margin: a transaction that took its time before the last pass
# read the table, and committed after, is still seen.
USED_MARGIN = 60.0


class LeaseKeeper:
    """Sync's pass over the claimed volumes of a cluster.

    Listing the volumes by their lease tag makes Cinder's database look at
    every volume of the project, claimed ones included, however few carry
    the tag.  So the pass lists only when it must know every tag: the
    first pass of the process, after a pass that could not read a volume
    or drop a tag, when the manager gained a pool (its tags are the dead
    peer's leftovers), once per ``full_interval``, or when there are more
    than ``READ_LIMIT`` volumes to read.  Otherwise it reads, one by one,
    the volumes of the receipts it can act on: the leased ones, and those
    that became used since the last pass began (a tag a confirm could not
    drop).  A tag with no such receipt behind it is one this pass would
    pass over anyway.  Either way the receipts are read again after the
    volumes, so that a volume is judged by the claim that holds it now,
    never by one that gave it back meanwhile.
    """

    def __init__(self, cinder, host, incarnation, full_interval=0,
                 clock=time.monotonic):
        """``full_interval``: seconds between two listings of every lease
        tag (0: every pass lists)."""
        self._cinder = cinder
        self._host = host
        self._incarnation = incarnation
        self._full_interval = full_interval
        self._clock = clock
        # Receipts used since then may still carry a lease tag; None: the
        # next pass lists every tag.
        self._used_since = None
        self._listed_at = None
        self._owned = frozenset()

    def run(self, cluster, owns=None, pools=()):
        """Latch attached volumes, drop stale lease tags, return volumes
        whose lease ran out.  ``pools``: the pools of the cluster, of
        which ``owns`` says this manager's.  Returns ``{'returned': n,
        'latched': n, 'errors': n}``."""
        report = {'returned': 0, 'latched': 0, 'errors': 0}
        owned = frozenset(p for p in pools if not owns or owns(p))
        started, tagged, errors = self._tagged(cluster, owns,
                                               gained=owned - self._owned)
        report['errors'] += errors
        held = db_receipts.holding({volume.id for volume in tagged},
                                   states=models.HELD)
        for volume in tagged:
            receipt = held.get(volume.id)
            if receipt is None or (owns and not owns(receipt.pool)):
                continue
            if receipt.state == models.R_LEASED and volume.in_use:
                if db_receipts.latch_used(receipt.claim_id):
                    report['latched'] += 1
            elif receipt.state != models.R_USED:
                continue
            try:
                self._cinder.remove_lease_tag(volume.id)
            except exception.CinderException as exc:
                report['errors'] += 1
                LOG.info('Could not drop the lease tag of %(id)s: %(err)s',
                         {'id': volume.id, 'err': exc})
        # A volume not read or a tag left in place: the next pass lists.
        if report['errors']:
            self._used_since = None
        else:
            self._used_since = clock.later(started, -USED_MARGIN)
            self._owned = owned
        for receipt in db_receipts.expired_leases(cluster):
            if owns and not owns(receipt.pool):
                continue
            try:
                if self._return(receipt):
                    report['returned'] += 1
            except exception.CinderException as exc:
                report['errors'] += 1
                LOG.warning('Returning volume %(id)s of an expired lease '
                            'failed, will retry: %(err)s',
                            {'id': receipt.volume_id, 'err': exc})
        return report

    def _tagged(self, cluster, owns, gained):
        """``(started, volumes, errors)``: the database's time before the
        receipts were read, the lease-tagged volumes of the cluster to act
        on, and how many could not be read."""
        tag = vp_cinder.cluster_tag(cluster)
        started, receipts = db_receipts.lease_pass(cluster, self._used_since)
        receipts = [r for r in receipts if not owns or owns(r.pool)]
        if gained or self._must_list(len(receipts)):
            tagged = self._cinder.list_volumes({vp_cinder.TAG_LEASE: tag})
            self._listed_at = self._clock()
            return started, tagged, 0
        tagged, errors = [], 0
        for receipt in receipts:
            try:
                volume = self._cinder.get_volume(receipt.volume_id)
            except exception.VolumeNotFound:
                continue
            except exception.CinderException as exc:
                errors += 1
                LOG.info('Could not read volume %(id)s of claim %(claim)s '
                         'for the lease pass: %(err)s',
                         {'id': receipt.volume_id,
                          'claim': receipt.claim_id, 'err': exc})
                continue
            if volume.metadata.get(vp_cinder.TAG_LEASE) == tag:
                tagged.append(volume)
        return started, tagged, errors

    def _must_list(self, to_read):
        return (self._used_since is None or to_read > READ_LIMIT or
                self._full_interval <= 0 or
                self._clock() - self._listed_at >= self._full_interval)

    def _return(self, receipt):
        _receipt, row = db_receipts.begin_lease_return(
            receipt.claim_id, self._host, self._incarnation, RETURN_HOLD)
        if row is None:
            return False  # confirmed or released meanwhile
        outcome = handback.settle(self._cinder, row, row.claim_id)
        if outcome.action != handback.RETURNED:
            LOG.info('Lease of claim %(claim)s ran out but volume %(id)s '
                     'stays with its caller: %(why)s.',
                     {'claim': receipt.claim_key, 'id': receipt.volume_id,
                      'why': outcome.reason})
            return False
        LOG.info('Lease of claim %(claim)s ran out unconfirmed: volume '
                 '%(id)s is back in pool %(pool)s.',
                 {'claim': receipt.claim_key, 'id': receipt.volume_id,
                  'pool': receipt.pool})
        notifications.claim_returned(self._host, receipt,
                                     notifications.RETURN_LEASE)
        metrics.claim_returned(receipt.cluster, receipt.pool,
                               notifications.RETURN_LEASE)
        return True
