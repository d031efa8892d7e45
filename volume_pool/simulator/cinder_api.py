"""A Cinder v3 API simulator over real HTTP, for tests, the demo and benches.

python-cinderclient talks to it exactly as to Cinder: same URLs, bodies,
microversion header, error bodies and codes.  It mirrors what the pool can
observe of real Cinder -- ``creating`` then ``available`` after a delay,
server-side metadata filters (the ``metadata`` query is a Python dict
literal, parsed with :func:`ast.literal_eval` as Cinder does; values
compared without case, as Cinder on MariaDB does),
``limit``/``marker`` paging with ``volumes_links``, newest first, 404 once
deleted, 413 ``overLimit`` with ``Retry-After: 0`` over quota, a volume
update whose ``metadata`` replaces all user metadata (Cinder's
``volume_update``), volumes owned by the project in the URL (listed per
project unless ``all_tenants``; every caller is admin, as with noauth) and
volume transfers (``os-volume-transfer`` and ``volume-transfers``: create
answers the ``auth_key`` and holds the volume ``awaiting-transfer``, accept
with that key gives the volume to the accepting project, a wrong key is a
400) -- and it can inject faults: HTTP errors, slow answers,
volumes that end in ``error``.  It is not a replacement for a real Cinder:
the functional suite runs against one.
"""

import collections
import json
import threading
import time
import uuid

from volume_pool.simulator import handlers
from volume_pool.simulator import server
from volume_pool.simulator import store as sim_store
from volume_pool.simulator.store import ApiError

DEFAULT_PROJECT = 'a1b2c3d4e5f60718293a4b5c6d7e8f90'


class CinderSimulator(handlers.VolumeAPI):
    """Serve a Cinder v3 API subset on loopback, in a daemon thread."""

    def __init__(self, host='127.0.0.1', port=0, project_id=DEFAULT_PROJECT,
                 creation_delay=0.0, deletion_delay=0.0, max_limit=1000,
                 quota_volumes=None, quota_gigabytes=None,
                 clock=time.monotonic):
        self.host = host
        # Seconds, for the creation and deletion delays: a test may move it.
        self.clock = clock
        self.port = port
        self.project_id = project_id
        self.creation_delay = creation_delay
        self.deletion_delay = deletion_delay
        self.max_limit = max_limit
        self.quota_volumes = quota_volumes
        self.quota_gigabytes = quota_gigabytes
        self.request_counts = collections.Counter()
        self.connections = 0  # TCP connections accepted
        self._lock = threading.Lock()
        self._store = sim_store.Store(self)
        self._faults = []
        self._held = []
        self._fail_creates = collections.deque()
        self._server = None
        self._thread = None

    # -- life cycle ------------------------------------------------------

    def start(self):
        handler = type('Handler', (server.Handler,), {'sim': self})
        self._server = server.Server((self.host, self.port), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        # A short poll: stop() waits for it, and every test stops one.
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={'poll_interval': 0.02},
                                        name='cinder-simulator', daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self.clear_faults()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def endpoint(self):
        """Base URL for cinderclient's noauth plugin (it adds the project)."""
        return 'http://%s:%d/v3' % (self.host, self.port)

    # -- helpers for tests and the demo (no HTTP) --------------------------

    def add_snapshot(self, size=1, name=None, status='available',
                     volume_id=None):
        snapshot_id = str(uuid.uuid4())
        with self._lock:
            self._store.snapshots[snapshot_id] = {
                'id': snapshot_id, 'name': name, 'size': size,
                'status': status, 'volume_id': volume_id or str(uuid.uuid4()),
                'created_at': sim_store.iso(sim_store.utcnow()),
                'metadata': {}, 'description': None}
        return snapshot_id

    def delete_snapshot(self, snapshot_id):
        with self._lock:
            self._store.snapshots.pop(snapshot_id, None)

    def add_volume(self, size=1, name=None, snapshot_id=None, metadata=None,
                   status='available'):
        with self._lock:
            return self._store.new_volume(size, name=name,
                                          snapshot_id=snapshot_id,
                                          metadata=metadata,
                                          status=status)['id']

    def get_volume(self, volume_id):
        with self._lock:
            try:
                return json.loads(json.dumps(sim_store.public(
                    self._store.volume(volume_id))))
            except ApiError:
                return None

    def list_volumes(self):
        with self._lock:
            return [json.loads(json.dumps(sim_store.public(v)))
                    for v in self._store.live_volumes()]

    def set_volume_status(self, volume_id, status):
        with self._lock:
            self._store.volume(volume_id)['status'] = status

    def attach_volume(self, volume_id):
        with self._lock:
            volume = self._store.volume(volume_id)
            volume['status'] = 'in-use'
            volume['attachments'] = [{
                'id': str(uuid.uuid4()), 'attachment_id': str(uuid.uuid4()),
                'volume_id': volume_id, 'server_id': str(uuid.uuid4())}]

    def remove_volume(self, volume_id):
        with self._lock:
            self._store.volumes.pop(volume_id, None)

    def fail_next_creates(self, n, status='error'):
        with self._lock:
            self._fail_creates.extend([status] * n)

    def inject_fault(self, status=500, method=None, path=None, count=1,
                     delay=0.0, hold=False):
        """The next ``count`` matching requests get ``status`` (or, with
        ``status=None``, are only delayed by ``delay`` seconds, or held
        until the returned fault's ``release()`` with ``hold=True``)."""
        fault = sim_store.Fault(status, method, path, count, delay, hold)
        with self._lock:
            self._faults.append(fault)
            if hold:
                self._held.append(fault)  # released by clear_faults()
        return fault

    def clear_faults(self):
        """Forget injected faults (releasing held requests) and pending
        fail_next_creates."""
        with self._lock:
            for fault in self._faults + self._held:
                fault.release()
            self._faults.clear()
            self._held.clear()
            self._fail_creates.clear()

    def reset_counts(self):
        with self._lock:
            self.request_counts.clear()

    # -- request handling --------------------------------------------------

    def _take_fault(self, method, path):
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and fault.matches(method, path):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def handle(self, method, path, query, body, project=None):
        """Route one request; returns (status, body dict or None, headers)."""
        route, handler, args = handlers.route(method, path)
        with self._lock:
            self.request_counts[(method, route)] += 1
        fault = self._take_fault(method, path)
        if fault is not None:
            fault.take()
            if fault.status is not None:
                headers = {'Retry-After': '0'} if fault.status == 413 else {}
                raise ApiError(fault.status, 'Injected fault', headers)
        if handler is None:
            raise ApiError(404, 'The resource could not be found.')
        with self._lock:
            self._store.project = project or self.project_id
            return handler(self, query, body, *args)
