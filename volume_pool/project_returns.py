"""Bring back the volume of a released claim into a project.

A release is the caller's undo: the volume goes back to its pool if it is
still unused.  For a claim into another project the volume is in that
project by then -- handed over with the answer, or by a transfer accept
that landed after the caller gave up and released its key (a request
Cinder applied late), when nobody there was told of it.  Either way the
pool takes it back with a transfer the other way, offered as the
receiving project and accepted as the pool's own, while it is still
available there.  A volume that someone in that project attached
meanwhile stays where it is.
"""

from oslo_log import log as logging

from volume_pool import exception
from volume_pool.db import models

LOG = logging.getLogger(__name__)

# The name of a transfer that brings a volume back, by claim id.
TRANSFER_NAME = 'volume-pool-return-%s'


def released_from(receipt, project_id):
    """True when ``receipt`` is a claim into ``project_id`` that its
    caller released: the volume comes back if still unused there."""
    return (receipt is not None and receipt.state == models.R_RELEASING and
            receipt.target_project == project_id)


def take_back(cinder, claim_id, volume_id, project_id):
    """Transfer ``volume_id`` from ``project_id`` back to the pool's own
    project.  Returns the volume as the pool reads it now, or None when
    it stays in that project (gone there, in use, or not available).

    Raises a CinderException when a step fails: the caller keeps its hold
    and asks again later.  A take-back that stopped between its offer and
    its accept is found ``awaiting-transfer`` and offered again (its auth
    key was lost with it).
    """
    giver = _as(cinder, project_id)
    try:
        seen = giver.get_volume(volume_id)
        if seen.status == 'awaiting-transfer':
            giver.cancel_transfers(volume_id)
            seen = giver.get_volume(volume_id)
    except exception.VolumeNotFound:
        return None
    if seen.status != 'available':
        LOG.info('Volume %(id)s of a released claim stays in project '
                 '%(project)s: it is %(status)s there.',
                 {'id': volume_id, 'project': project_id,
                  'status': seen.status})
        return None
    transfer_id, auth_key = giver.create_transfer(
        volume_id, name=TRANSFER_NAME % claim_id)
    cinder.accept_transfer(transfer_id, auth_key)
    LOG.info('Volume %(id)s, handed to project %(project)s by a claim its '
             'caller released, is back in the pool\'s project.',
             {'id': volume_id, 'project': project_id})
    return cinder.get_volume(volume_id)


def _as(cinder, project_id):
    try:
        return cinder.as_project(project_id)
    except exception.ConfigError as exc:
        # Cannot act as the project: keep the hold rather than guess.
        raise exception.CinderUnavailable(reason=str(exc))
