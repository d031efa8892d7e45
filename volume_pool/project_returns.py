"""Bring back the volume of a claim into a project that its caller gave up.

A caller that gives up releases its key.  A claim into another project may
hand its volume over all the same: its transfer accept lands after the
release stopped the claim, or Cinder answers the accept after the
caller's time has run out (a request Cinder applied late).  Either way the
volume is in the receiving project and nobody there was told of it: left
there, it would be lost to the pool and to the caller alike.  So the pool
takes it back with a transfer the other way, offered as the receiving
project and accepted as the pool's own, while it is still available
there.  A claim whose answer reached its caller in time is not taken
back: the volume is that project's, perhaps written to, and its release
is refused.
"""

from oslo_log import log as logging

from volume_pool import exception
from volume_pool.db import models

LOG = logging.getLogger(__name__)

# The name of a transfer that brings a volume back: a pending one left by
# a take-back that stopped between its offer and its accept is withdrawn
# by the next (its auth key was lost with it); any other pending transfer
# is someone else's, in that project, and the volume stays.
TRANSFER_PREFIX = 'volume-pool-return-'


class HoldLost(Exception):
    """The row that holds the volume is no longer the settler's (its
    deadline passed, sync took it over): whoever holds it now goes on."""


def given_up_in(receipt, project_id):
    """True when ``receipt`` is a claim into ``project_id`` released by
    a caller that never got its volume: stopped before it answered, or
    answered after its time ran out (the receipt keeps that deadline)."""
    return (receipt is not None and receipt.state == models.R_RELEASING and
            receipt.target_project == project_id and
            (receipt.result is None or receipt.deadline is not None))


def take_back(cinder, volume_id, project_id, still_held):
    """Transfer ``volume_id`` from ``project_id`` back to the pool's own
    project.  Returns the volume as the pool reads it now, or None when
    it stays in that project (gone there, not available, or offered on
    by someone there).  ``still_held()`` is asked before each step that
    moves the volume; HoldLost when it says no.

    Raises a CinderException when a step fails: the caller keeps its hold
    and asks again later.
    """
    giver = acting_as(cinder, project_id)
    try:
        seen = giver.get_volume(volume_id)
        if seen.status == 'awaiting-transfer':
            if not _withdraw_own_offers(giver, volume_id):
                return _stays(volume_id, project_id, 'offered on there')
            seen = giver.get_volume(volume_id)
    except exception.VolumeNotFound:
        return None
    if seen.status != 'available':
        return _stays(volume_id, project_id, seen.status)
    _check(still_held)
    transfer_id, auth_key = giver.create_transfer(
        volume_id, name=TRANSFER_PREFIX + volume_id)
    _check(still_held)
    cinder.accept_transfer(transfer_id, auth_key)
    LOG.info('Volume %(id)s, handed to project %(project)s by a claim its '
             'caller gave up, is back in the pool\'s project.',
             {'id': volume_id, 'project': project_id})
    return cinder.get_volume(volume_id)


def _withdraw_own_offers(giver, volume_id):
    """Withdraw the pending take-back offers of the volume; False (and
    nothing withdrawn) if another pending transfer is there."""
    pending = giver.pending_transfers(volume_id)
    if any(not (name or '').startswith(TRANSFER_PREFIX)
           for _id, name in pending):
        return False
    for transfer_id, _name in pending:
        giver.delete_transfer(transfer_id)
    return True


def _stays(volume_id, project_id, why):
    LOG.info('Volume %(id)s of a given-up claim stays in project '
             '%(project)s: it is %(why)s there.',
             {'id': volume_id, 'project': project_id, 'why': why})
    return None


def _check(still_held):
    if not still_held():
        raise HoldLost()


def acting_as(cinder, project_id):
    """A handle on Cinder as ``project_id``, for a holder settling a
    volume: CinderUnavailable when ``[cinder]`` cannot be scoped to it,
    so the hold (and the receipt) stay rather than guess."""
    try:
        return cinder.as_project(project_id)
    except exception.ConfigError as exc:
        raise exception.CinderUnavailable(reason=str(exc))
