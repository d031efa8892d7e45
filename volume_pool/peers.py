"""The other live managers of a cluster, as one sync run sees them.

Sync reads the managers table once per run: which incarnations are alive
(a hold of a gone one is abandoned) and which snapshot each has for a
pool (the old snapshot's volumes are deleted only once all agree).
"""

from oslo_log import log as logging

from volume_pool.db import managers as db_managers

LOG = logging.getLogger(__name__)


class LiveManagers:
    """The live managers of the cluster, read once per sync run."""

    def __init__(self, incarnation, down_time):
        self._incarnation = incarnation
        self._down_time = down_time
        self._live = None
        self._views = None
        self._disagreements = {}  # pool -> who disagreed, last logged

    def new_run(self):
        """Forget what the last run read: each run reads it again."""
        self._live = None
        self._views = None

    def incarnations(self, cluster):
        """The live manager processes, read once per sync run."""
        if self._live is None:
            self._live = {incarnation for _host, incarnation, _at in
                          db_managers.live(cluster or None,
                                           self._down_time)}
        return self._live

    def rotation_waits(self, spec):
        """True while a live manager of the cluster has another snapshot
        for the pool (or does not say which): a manager never deletes the
        volumes of a snapshot another one may still serve, so a rolling
        change of snapshot deletes the old volumes only once all agree."""
        if self._views is None:
            self._views = db_managers.pool_views(spec.cluster,
                                                 self._down_time)
        others = sorted(
            '%s (%s)' % (host, 'does not say' if pools is None
                         else 'snapshot %s' % pools[spec.name])
            for host, incarnation, pools in self._views
            if incarnation != self._incarnation and (
                pools is None or pools.get(spec.name, spec.snapshot_id)
                != spec.snapshot_id))
        if others and self._disagreements.get(spec.name) != others:
            LOG.warning('The live managers do not agree on the snapshot of '
                        'pool %(pool)s (this one has %(snap)s; %(others)s): '
                        'no volume of another snapshot is deleted until '
                        'they do.',
                        {'pool': spec.name, 'snap': spec.snapshot_id,
                         'others': ', '.join(others)})
        self._disagreements[spec.name] = others
        return bool(others)
