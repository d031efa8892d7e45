"""Replenish: create the volumes each pool lacks, a bounded number at once.

For every new volume the row is written first (status ``creating``, no
volume id yet, a request id), then Cinder is asked to create a volume
tagged with that request id, then the row gets the volume id.  A crash at
any point leaves a row, a tagged volume, or both, and sync reunites or
cleans them: no volume is lost or leaked.
"""

import collections
import datetime
import threading

import futurist
from oslo_log import log as logging
from oslo_utils import timeutils
from oslo_utils import uuidutils

from volume_pool import cinder as vp_cinder
from volume_pool import exception
from volume_pool import metrics
from volume_pool import notifications
from volume_pool import sizing
from volume_pool.db import api as db_api
from volume_pool.db import models

LOG = logging.getLogger(__name__)


class Replenisher:
    """Owns the create workers and the requests still in flight."""

    def __init__(self, cinder, host, concurrency, poll_interval,
                 creating_timeout, backoff, demand=None,
                 max_total_gb=None, incarnation=None):
        self._cinder = cinder
        self._incarnation = incarnation
        self.backoff = backoff
        self.max_total_gb = max_total_gb  # the cluster's GiB cap
        self._demand = demand  # measures create-to-available times
        self._host = host
        self._poll_interval = poll_interval
        self._creating_timeout = creating_timeout
        self._executor = futurist.ThreadPoolExecutor(max_workers=concurrency)
        self._pool_locks = collections.defaultdict(threading.Lock)
        self._pending = set()
        self._pending_lock = threading.Lock()
        self._stopping = threading.Event()

    # -- what sync needs to know ----------------------------------------

    def is_pending(self, request_id):
        """True while this process is still working on that create."""
        with self._pending_lock:
            return request_id in self._pending

    # -- the periodic run -----------------------------------------------

    def replenish_pool(self, spec, target):
        """Queue the creates that bring one pool up to ``target`` (its
        target of the moment, :func:`volume_pool.sizing.target_now`); never
        two runs for a pool at once.

        The count and the rows of the creates are one transaction under
        the pool's lock in the database, so managers that share it never
        overfill the pool, with or without a coordination backend.
        """
        lock = self._pool_locks[spec.name]
        if not lock.acquire(blocking=False):
            LOG.debug('Replenish of pool %s is already running.', spec.name)
            return 0
        try:
            if not self.backoff.allowed(spec.name):
                LOG.debug('Pool %s is backing off; no create now.',
                          spec.name)
                return 0
            rows = self._reserve(spec, target)
            started = self._now()
            for index, row in enumerate(rows):
                try:
                    self._executor.submit(self._create_one, spec, row,
                                          started)
                except RuntimeError:  # stopping: sync drops unbound rows
                    for left in rows[index:]:
                        self._forget(left.request_id)
                    raise
            return len(rows)
        finally:
            lock.release()

    def plan(self, spec, target, counts, usage_of=None):
        """The pool's :class:`~volume_pool.sizing.Plan` by ``counts``
        (``db_api.count_by_pool``'s); also what pool_status explains.

        ``usage_of()``: the cluster's ``db_api.gb_by_pool``, which a run
        over many pools reads once (read now without).
        """
        return self._plan_of(spec, target, counts, usage_of or (
            lambda: db_api.gb_by_pool(spec.cluster)))

    def _plan_of(self, spec, target, counts, usage_of):
        ready, creating = sizing.pool_counts(counts, spec,
                                             with_uncertain=True)
        usage = usage_of() if sizing.gb_capped(spec, self.max_total_gb) else {}
        return sizing.plan(spec, target, ready, creating, usage,
                           self.max_total_gb)

    def _reserve(self, spec, target):
        """The rows of the creates the pool lacks, written under its lock.

        Their request ids are pending before the rows exist, so sync never
        mistakes a row for the leftover of a crash.
        """
        tried = []

        def rows_for(counts, usage_of):
            rows = []
            for _ in range(self._plan_of(spec, target, counts,
                                         usage_of).deficit):
                request_id = uuidutils.generate_uuid()
                with self._pending_lock:
                    self._pending.add(request_id)
                tried.append(request_id)
                rows.append(db_api.new_volume_row(
                    request_id=request_id, pool=spec.name,
                    cluster=spec.cluster, snapshot_id=spec.snapshot_id,
                    size=spec.size,
                    name=spec.volume_name_prefix + request_id[:8],
                    host=self._host, incarnation=self._incarnation))
            return rows

        rows = []
        try:
            rows = db_api.reserve_creates(spec.cluster, spec.name,
                                          self._host, rows_for)
        finally:
            kept = {row.request_id for row in rows}
            for request_id in tried:
                if request_id not in kept:
                    self._forget(request_id)  # a failed or retried attempt
        return rows

    def _forget(self, request_id):
        with self._pending_lock:
            self._pending.discard(request_id)

    # -- one create, in a worker ------------------------------------------

    def _now(self):
        return self._demand.clock() if self._demand else None

    def _create_one(self, spec, row, started=None):
        if self._stopping.is_set() or not self.backoff.allowed(spec.name):
            # Queued but never started: nothing exists in Cinder.
            db_api.delete_row(row.id, status=models.CREATING)
            self._forget(row.request_id)
            return
        try:
            volume = self._start_create(spec, row)
            if volume is not None:
                self._wait_available(row, volume.id, started)
        except Exception:
            # Any failure leaves a row and/or a tagged volume: sync settles.
            LOG.exception('Creating a volume for pool %s failed; sync will '
                          'settle what is left.', spec.name)
        finally:
            self._forget(row.request_id)

    def _start_create(self, spec, row):
        tags = vp_cinder.pool_tags(spec.name, spec.cluster, row.request_id)
        try:
            volume = self._cinder.create_volume(
                snapshot_id=spec.snapshot_id, name=row.name, metadata=tags,
                size=spec.size, volume_type=spec.volume_type,
                availability_zone=spec.availability_zone)
        except exception.CinderException as exc:
            self.backoff.failure(spec.name, exc)
            metrics.create_failed(spec.cluster, spec.name)
            if not isinstance(exc, exception.CinderUnavailable):
                # Surely not created: forget the row now.  After a 5xx or a
                # timeout Cinder may have created it: sync decides.
                db_api.delete_row(row.id, status=models.CREATING)
            return None
        db_api.set_volume_id(row.id, volume.id)
        return volume

    def _wait_available(self, row, volume_id, started=None):
        deadline = (timeutils.normalize_time(row.created_at) +
                    datetime.timedelta(seconds=self._creating_timeout))
        while not self._stopping.wait(self._poll_interval):
            try:
                volume = self._cinder.get_volume(volume_id)
            except exception.VolumeNotFound:
                db_api.delete_row(row.id, status=models.CREATING)
                return
            except exception.CinderException:
                volume = None
            if volume is not None and volume.status == 'available':
                self.backoff.success(row.pool)
                if started is not None:
                    self._demand.record_refill(row.pool,
                                               self._now() - started)
                if db_api.mark_available(row.id, size=volume.size):
                    LOG.debug('Volume %s is ready.', volume_id)
                    notifications.volume_created(self._host, row, volume_id,
                                                 size=volume.size)
                return
            if volume is not None and volume.status != 'creating':
                # error, or taken: sync deletes or drops it.
                if volume.in_error:
                    self.backoff.failure(
                        row.pool, 'volume %s ended in %s'
                        % (volume_id, volume.status))
                    metrics.create_failed(row.cluster, row.pool)
                return
            if timeutils.utcnow() > deadline:
                return  # the stuck-creating reaper in sync takes over

    # -- shutdown ------------------------------------------------------

    def stop(self, wait=True):
        """Stop polling; creates already sent finish as ``creating`` rows."""
        self._stopping.set()
        self._executor.shutdown(wait=wait)
