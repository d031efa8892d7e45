"""The one way a ready or creating pool volume is deleted.

Sync, idle shrink, trim, an operator's drain and a cluster's drain all
mark the row ``deleting`` first, then ask Cinder: a failed delete leaves
the row for sync to retry, so nothing is leaked.
"""

from oslo_log import log as logging

from volume_pool import exception
from volume_pool import notifications
from volume_pool.db import api as db_api
from volume_pool.db import models

LOG = logging.getLogger(__name__)


def delete_pool_volume(cinder, row, report, why, reason=None, host=None):
    """Mark a ready or creating row ``deleting``, then delete its volume.

    A failed delete leaves the row ``deleting``; sync retries it until
    Cinder no longer has the volume, so nothing is leaked.  ``reason`` (one
    of ``notifications.EVICT_REASONS``) goes into the
    ``volume_pool.volume.evict`` event sent once the row is ``deleting``.
    """
    LOG.debug('Deleting pool volume %(id)s of pool %(pool)s: it %(why)s.',
              {'id': row.volume_id, 'pool': row.pool, 'why': why})
    if not db_api.mark_deleting(
            row.id, from_statuses=(models.AVAILABLE, models.CREATING)):
        return False  # claimed meanwhile
    notifications.volume_evicted(host, row, reason)
    try:
        cinder.delete_volume(row.volume_id)
        report.deleted += 1
    except exception.CinderException as exc:
        report.errors += 1
        LOG.warning('Deleting volume %(id)s failed, will retry: %(err)s',
                    {'id': row.volume_id, 'err': exc})
    return True
