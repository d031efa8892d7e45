"""One rule for Cinder requests that may land after we gave up on them.

A request that changes a volume (a create, a rename, a metadata PUT, a
transfer's create, accept or delete) and got no answer -- a timeout, a
lost connection, a gateway's 502 or 504 -- may still be applied by Cinder
for as long as the Cinder timeout, and a little more: the request may
have waited in a queue on its way.  That is the *late window*.

Whoever gave up on such a request does not decide the volume's fate
itself: it leaves the row held, ``uncertain``, with its deadline now.
Sync takes an ``uncertain`` row (or a ``claiming`` row whose deadline
passed) over only once the late window has passed since, and then reads
the volume by id before it gives it back to the pool or lets it go
(:func:`volume_pool.handback.settle`).  The claimer's undo and sync's
take-over both go through :class:`LateWindow`, so no volume goes back to
a pool, or to another caller, while a request on it may still land.
"""

from oslo_log import log as logging

from volume_pool import exception
from volume_pool.db import holds as db_holds

LOG = logging.getLogger(__name__)

# Seconds past the Cinder timeout that a request given up on may still
# take to land: time queued in a proxy or in cinder-api's backlog.
MARGIN = 5.0

may_land_late = exception.may_land_late


class LateWindow:
    """The late window of one manager's Cinder requests."""

    def __init__(self, cinder_timeout, margin=MARGIN):
        self.seconds = float(cinder_timeout) + margin

    def wait_out(self, row_id, claim_id, volume_id=None, why=None):
        """Leave a held row to sync, which settles it once the window has
        passed: a request of the holder may still land.  True if the row
        was still held by ``claim_id``."""
        held = db_holds.mark_uncertain(row_id, claim_id)
        if held:
            LOG.warning('Volume %(id)s waits out the late window '
                        '(%(seconds).0f s) of a request Cinder did not '
                        'answer%(why)s; sync settles it after.',
                        {'id': volume_id or '(being created)',
                         'seconds': self.seconds,
                         'why': ' (%s)' % why if why else ''})
        return held

    def take_over(self, cluster, pool, incarnation, hold, down_time,
                  legacy_timeout):
        """Sync's take-over of the holds of ``pool`` that are abandoned
        and whose requests can no longer land."""
        return db_holds.take_over(cluster, pool, incarnation, hold,
                                  down_time, legacy_timeout,
                                  grace=self.seconds)
