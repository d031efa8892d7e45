"""The simulator's state: volumes, snapshots, transfers, injected faults.

Status changes (``creating`` -> ``available``, ``deleting`` -> gone) are
evaluated lazily, by timestamp, on each read: no timer thread.
"""

import collections
import datetime
import re
import threading
import time
import uuid

DELETABLE = frozenset(('available', 'error', 'error_restoring',
                       'error_extending', 'error_managing'))


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def iso(moment):
    return moment.strftime('%Y-%m-%dT%H:%M:%S.%f')


class ApiError(Exception):
    """An HTTP error answer in Cinder's shape."""

    KINDS = {400: 'badRequest', 403: 'forbidden', 404: 'itemNotFound',
             406: 'notAcceptable', 409: 'conflict', 413: 'overLimit',
             500: 'computeFault', 503: 'serviceUnavailable'}

    def __init__(self, status, message, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}

    def body(self):
        kind = self.KINDS.get(self.status, 'computeFault')
        error = {'code': self.status, 'message': self.message}
        if self.status == 413:
            error['retryAfter'] = '0'
        return {kind: error}


# Seconds a held request waits at most, so a test that forgets to
# release it still ends.
HOLD_LIMIT = 60


class Fault:
    """An injected fault; with ``hold``, the requests it takes wait for
    :meth:`release`, and a test can wait for them to be there."""

    def __init__(self, status, method, path, count, delay, hold=False):
        self.status = status
        self.method = method
        self.path = re.compile(path) if path else None
        self.remaining = count
        self.delay = delay
        self.hold = hold
        self._released = threading.Event()
        self._arrived = 0
        self._cond = threading.Condition()

    def take(self):
        """Called by a request the fault applies to."""
        with self._cond:
            self._arrived += 1
            self._cond.notify_all()
        if self.delay:
            time.sleep(self.delay)
        if self.hold and not self._released.wait(HOLD_LIMIT):
            raise ApiError(500, 'Held request never released')

    def wait_arrived(self, count=1, timeout=HOLD_LIMIT):
        """Wait until ``count`` requests are held (or were delayed)."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._arrived >= count,
                                       timeout):
                raise AssertionError('%d of %d requests arrived'
                                     % (self._arrived, count))

    def release(self):
        self._released.set()

    def matches(self, method, path):
        return ((self.method is None or self.method == method) and
                (self.path is None or self.path.search(path) is not None))


class Store:
    """Volumes and snapshots; every method runs under the one lock."""

    def __init__(self, sim):
        self.sim = sim
        self.volumes = collections.OrderedDict()
        self.snapshots = {}
        self.transfers = collections.OrderedDict()
        # The project in the URL of the request being handled.
        self.project = sim.project_id

    # Status transitions are evaluated lazily, by timestamp, on each read.
    def refresh(self, volume):
        now = self.sim.clock()
        if volume['status'] == 'creating' and now >= volume['_ready_at']:
            volume['status'] = volume.pop('_final_status', 'available')
            volume['updated_at'] = iso(utcnow())
        if volume['status'] == 'deleting' and now >= volume['_gone_at']:
            self.volumes.pop(volume['id'], None)
            return None
        return volume

    def live_volumes(self):
        return [v for v in (self.refresh(v) for v in list(
            self.volumes.values())) if v is not None]

    def volume(self, volume_id):
        volume = self.volumes.get(volume_id)
        if volume is None or self.refresh(volume) is None:
            raise ApiError(404, 'Volume %s could not be found.' % volume_id)
        return volume

    def snapshot(self, snapshot_id):
        snapshot = self.snapshots.get(snapshot_id)
        if snapshot is None:
            raise ApiError(404, 'Snapshot %s could not be found.'
                           % snapshot_id)
        return snapshot

    def new_volume(self, size, name=None, description=None,
                   snapshot_id=None, metadata=None, volume_type=None,
                   availability_zone=None, status='creating', delay=0.0,
                   project=None):
        volume_id = str(uuid.uuid4())
        stamp = iso(utcnow())
        volume = {
            'id': volume_id, 'name': name, 'description': description,
            'status': status, 'size': size, 'snapshot_id': snapshot_id,
            'source_volid': None, 'metadata': dict(metadata or {}),
            'attachments': [], 'availability_zone': availability_zone or
            'nova', 'volume_type': volume_type or '__DEFAULT__',
            'bootable': 'false', 'encrypted': False, 'multiattach': False,
            'created_at': stamp, 'updated_at': stamp,
            'user_id': 'simulator', 'os-vol-tenant-attr:tenant_id':
            project or self.sim.project_id,
            '_ready_at': self.sim.clock() + delay,
        }
        self.volumes[volume_id] = volume
        return volume

    def check_quota(self, size):
        sim = self.sim
        live = [v for v in self.live_volumes() if v['status'] != 'deleting'
                and v['os-vol-tenant-attr:tenant_id'] == self.project]
        if (sim.quota_volumes is not None and
                len(live) + 1 > sim.quota_volumes):
            raise ApiError(
                413, "VolumeLimitExceeded: Maximum number of volumes "
                     "allowed (%d) exceeded for quota 'volumes'."
                     % sim.quota_volumes, {'Retry-After': '0'})
        used = sum(v['size'] for v in live)
        if (sim.quota_gigabytes is not None and
                used + size > sim.quota_gigabytes):
            raise ApiError(
                413, 'VolumeSizeExceedsAvailableQuota: Requested volume or '
                     'snapshot exceeds allowed gigabytes quota. Requested '
                     '%dG, quota is %dG and %dG has been consumed.'
                     % (size, sim.quota_gigabytes, used),
                {'Retry-After': '0'})


def public(volume):
    return {k: v for k, v in volume.items() if not k.startswith('_')}
