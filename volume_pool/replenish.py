"""Replenish: create the volumes each pool lacks, a bounded number at once.

For every new volume the row is written first (status ``creating``, no
volume id yet, a request id), then Cinder is asked to create a volume
tagged with that request id, then the row gets the volume id.  A crash at
any point leaves a row, a tagged volume, or both, and sync reunites or
cleans them: no volume is lost or leaked.
"""

import collections
import dataclasses
import datetime
import threading

import futurist
from oslo_log import log as logging
from oslo_utils import timeutils
from oslo_utils import uuidutils

from volume_pool import cinder as vp_cinder
from volume_pool import exception
from volume_pool import notifications
from volume_pool.db import api as db_api
from volume_pool.db import models

LOG = logging.getLogger(__name__)


def pool_counts(counts, spec, with_uncertain=False):
    """Ready and creating volumes of a pool's current snapshot.

    ``with_uncertain`` counts as ready the volumes of failed claims whose
    undo failed: sync most likely gives them back, and creating their
    replacements now would overfill the pool.
    """
    by_status = counts.get(spec.name, {}).get(spec.snapshot_id, {})
    ready = by_status.get(models.AVAILABLE, 0)
    if with_uncertain:
        ready += by_status.get(models.UNCERTAIN, 0)
    return ready, by_status.get(models.CREATING, 0)


def volume_gb(spec, usage):
    """GiB of one new volume of the pool, or None while not known.

    Every volume of a pool comes from one snapshot, so the largest size
    recorded is the size of the next one.
    """
    return spec.size or usage.get(spec.name, (0, 0, None))[2]


def held_gb(usage, pool, size=None):
    """GiB of a pool's ready and creating rows; a row without a size yet
    counts as ``size``, else the pool's largest, else 1 GiB."""
    known, unknown, largest = usage.get(pool, (0, 0, None))
    return known + unknown * (size or largest or 1)


@dataclasses.dataclass(frozen=True)
class Plan:
    """What one replenish run of a pool creates, and the cap that binds."""

    deficit: int
    capped: str | None = None   # e.g. 'max_ready=3'


def plan(spec, target, ready, creating, usage, max_total_gb=None):
    """Creates needed to reach ``target`` within max_creating and caps."""
    want = target - ready - creating
    caps = []
    if spec.max_ready is not None:
        caps.append((spec.max_ready - ready - creating,
                     'max_ready=%d' % spec.max_ready))
    rooms = []
    size = volume_gb(spec, usage)
    if spec.max_ready_gb is not None:
        rooms.append((spec.max_ready_gb - held_gb(usage, spec.name, size),
                      'max_ready_gb=%d' % spec.max_ready_gb))
    if max_total_gb is not None:
        total = sum(held_gb(usage, pool, size if pool == spec.name else None)
                    for pool in set(usage) | {spec.name})
        rooms.append((max_total_gb - total, 'max_total_gb=%d' % max_total_gb))
    for room, label in rooms:
        if size is None:
            # Size not known yet: one volume first, to learn it.
            caps.append((1 if room >= 1 and not creating else 0, label))
        else:
            caps.append((int(room // size), label))
    deficit = max(0, min([want, spec.max_creating - creating] +
                         [limit for limit, _label in caps]))
    binding = min(caps, default=None, key=lambda cap: cap[0])
    if binding is not None and binding[0] < want:
        return Plan(deficit, binding[1])
    return Plan(deficit)


class Replenisher:
    """Owns the create workers and the requests still in flight."""

    def __init__(self, cinder, host, concurrency, poll_interval,
                 creating_timeout, backoff, target_of=None, demand=None,
                 max_total_gb=None, incarnation=None):
        self._cinder = cinder
        self._incarnation = incarnation
        self.backoff = backoff
        # The target of the moment (auto, idle) and the cluster's GiB cap.
        self.target_of = target_of or (lambda spec: spec.target)
        self.max_total_gb = max_total_gb
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

    def replenish_pool(self, spec):
        """Queue creates for one pool; never two runs for a pool at once.

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
            rows = self._reserve(spec)
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

    def plan(self, spec, counts=None):
        """The pool's plan now (also what pool_status explains)."""
        if counts is None:
            counts = db_api.count_by_pool(spec.cluster)
        return self._plan_of(spec, self.target_of(spec), counts,
                             lambda: db_api.gb_by_pool(spec.cluster))

    def _plan_of(self, spec, target, counts, usage_of):
        ready, creating = pool_counts(counts, spec, with_uncertain=True)
        capped = spec.max_ready_gb is not None or self.max_total_gb is not None
        return plan(spec, target, ready, creating,
                    usage_of() if capped else {}, self.max_total_gb)

    def _reserve(self, spec):
        """The rows of the creates the pool lacks, written under its lock.

        Their request ids are pending before the rows exist, so sync never
        mistakes a row for the leftover of a crash.
        """
        target = self.target_of(spec)  # may read the database: not locked
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
                return
            if timeutils.utcnow() > deadline:
                return  # the stuck-creating reaper in sync takes over

    # -- shutdown ------------------------------------------------------

    def stop(self, wait=True):
        """Stop polling; creates already sent finish as ``creating`` rows."""
        self._stopping.set()
        self._executor.shutdown(wait=wait)
