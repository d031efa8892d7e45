"""Volumes of rows that the cluster's listing misses: found, then retagged.

Sync lists a cluster's volumes by their cluster tag (and a deployment's
handle by its deployment tag).  A volume an earlier release made carries
neither, and one a late request untagged carries no pool tags at all:
the listing misses both, though a row names them.  Before such a row is
dropped, its volume is looked up here and, when it is still the pool's,
given the tags it lacks.
"""

import dataclasses

from oslo_log import log as logging

from volume_pool import cinder as vp_cinder
from volume_pool import exception
from volume_pool.db import receipts as db_receipts

LOG = logging.getLogger(__name__)

# The pool tags an earlier release did not set.
_LATER_TAGS = (vp_cinder.TAG_CLUSTER, vp_cinder.TAG_DEPLOYMENT)


def find_untagged_create(cinder, row):
    """The volume of a row never bound, looked up by its request tag
    alone: an earlier release set no cluster or deployment tag, so the
    cluster's listing misses it.  Asked only before the row is
    dropped; the row names the request, so the volume is ours."""
    found = cinder.list_volumes({
        vp_cinder.TAG_POOL: row.pool,
        vp_cinder.TAG_REQUEST: row.request_id}, any_deployment=True)
    return found[0] if found else None


def confirm_gone(cinder, row, report):
    """The listing misses the volume of a row: ask Cinder by id before
    forgetting it, since a late request may only have untagged it.

    Returns the volume, tagged again, or None to forget the row (gone,
    being deleted, in use, or a caller's).
    """
    try:
        volume = cinder.get_volume(row.volume_id)
    except exception.VolumeNotFound:
        return None
    if (volume.status == 'deleting' or volume.in_use or
            db_receipts.holding([volume.id])):
        # Gone, a caller's, or a claim's that runs since the read.
        return None
    tags = vp_cinder.pool_tags(row.pool, row.cluster, row.request_id,
                               cinder.deployment)
    missing = _earlier_form(volume, tags)
    if missing:
        # Made by a release that tagged no cluster or no deployment:
        # the row names it, so it is this deployment's.  Add those
        # tags alone, by a merge, so a claim that drops the tags
        # meanwhile wins.
        LOG.info('Pool volume %(id)s of pool %(pool)s gets the tags '
                 '%(keys)s that its release did not set.',
                 {'id': volume.id, 'pool': row.pool,
                  'keys': ', '.join(sorted(missing))})
        cinder.add_tags(volume.id, missing)
        report.retagged += 1
        return dataclasses.replace(volume, metadata=dict(
            volume.metadata, **tags))
    LOG.warning('Pool volume %(id)s of pool %(pool)s lost its pool '
                'tags; putting them back.',
                {'id': volume.id, 'pool': row.pool})
    cinder.update_volume(volume.id, name=row.name, metadata=tags)
    report.retagged += 1
    return dataclasses.replace(volume, metadata=tags)


def _earlier_form(volume, tags):
    """The tags to add to a volume tagged as an earlier release did (every
    pool tag but the cluster's or the deployment's, or both), or ``{}``
    when it is not in such a form."""
    missing = {key: value for key, value in tags.items()
               if key in _LATER_TAGS and key not in volume.metadata}
    if missing and all(volume.metadata.get(key) == value
                       for key, value in tags.items()
                       if key not in missing):
        return missing
    return {}
