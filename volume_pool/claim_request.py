"""A claim's arguments, and what a retry with the same key must repeat.

A keyed claim is answered again from its receipt; the fingerprint of the
arguments tells a true retry from a different claim reusing the key.
"""

import hashlib
import json
import time

from oslo_log import log as logging
from oslo_utils import uuidutils

from volume_pool import exception
from volume_pool.db import claims as db_claims
from volume_pool.db import models
from volume_pool.db import receipts as db_receipts

LOG = logging.getLogger(__name__)

# Seconds kept back from the caller's remaining time: the answer still has
# to travel back before the caller stops waiting.
_REPLY_MARGIN = 1.0


def volume_view(volume, spec, source):
    """The dict a claim returns (the RPC contract)."""
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


def fingerprint(spec, name, create_on_miss, project_id):
    """What a retry with the same key must repeat exactly."""
    text = json.dumps([spec.name, name, bool(create_on_miss), project_id])
    return hashlib.sha256(text.encode('utf-8')).hexdigest()


def hold_seconds(time_left, claim_timeout):
    """How long a claim may run: the caller's time less the margin for
    the answer, never more than ``claim_timeout``."""
    if time_left is None:
        return float(claim_timeout)
    return min(float(claim_timeout),
               time_left - min(_REPLY_MARGIN, time_left / 10.0))


def start_budget(time_left, claim_timeout, claim_key, queued=0.0):
    """``(hold, since)``: how long the claim may run, counted from when
    its call reached this process ``queued`` seconds ago; ClaimTimedOut,
    before anything starts, if its caller's time is gone by now."""
    hold = hold_seconds(time_left, claim_timeout)
    if hold - queued <= 0:
        LOG.info('Claim %(key)s not started: it waited %(queued).1fs for a '
                 'worker, its caller only %(left)s s; time out.',
                 {'key': claim_key, 'queued': queued, 'left': time_left})
        raise exception.ClaimTimedOut(claim_key=claim_key)
    return hold, time.monotonic() - queued


def replay(receipt, claim_key, fingerprint_):
    """The answer of a claim already made with this key, or its error."""
    if db_receipts.released_unclaimed(receipt):
        raise exception.ClaimReleased(claim_key=claim_key)
    if receipt.fingerprint != fingerprint_:
        raise exception.ClaimKeyConflict(claim_key=claim_key)
    if receipt.state in models.HELD:
        return db_receipts.answer(receipt)
    if db_receipts.released_for_the_caller(receipt):
        raise exception.ClaimReleased(claim_key=claim_key)
    if receipt.state in (models.R_RETURNING, models.R_RETURNED):
        raise exception.ClaimLeaseExpired(claim_key=claim_key)
    raise exception.ClaimInProgress(claim_key=claim_key)


class ClaimRequest:
    """One claim's arguments, as the steps below need them."""

    def __init__(self, spec, name=None, create_on_miss=True, project_id=None,
                 claim_key=None, caller_project=None, hold=None, lease=True,
                 since=None):
        self.spec = spec
        self.name = name
        self.create_on_miss = create_on_miss
        self.project_id = project_id
        self.claim_key = claim_key
        self._lease = lease
        self.fingerprint = fingerprint(spec, name, create_on_miss,
                                       project_id)
        self.take = db_claims.Take(
            claim_id=uuidutils.generate_uuid(), hold=hold,
            fingerprint=self.fingerprint, claim_key=claim_key,
            project_id=caller_project or '', target_project=project_id,
            **({'since': since} if since is not None else {}))

    @property
    def claim_id(self):
        return self.take.claim_id

    @property
    def leased(self):
        """Keyed claims kept in this project are held under a lease,
        unless the caller asked for none; a claim into another project is
        used at once."""
        return (self.claim_key is not None and self.project_id is None and
                self._lease)

    def renew(self):
        """A fresh claim id for the next volume after a stale one."""
        self.take = db_claims.Take(**dict(
            self.take.__dict__, claim_id=uuidutils.generate_uuid()))
