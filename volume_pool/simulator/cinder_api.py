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

import ast
import collections
import datetime
import http.server
import json
import re
import threading
import time
from urllib import parse
import uuid

MIN_VERSION = '3.0'
MAX_VERSION = '3.71'
DEFAULT_PROJECT = 'a1b2c3d4e5f60718293a4b5c6d7e8f90'

_DELETABLE = frozenset(('available', 'error', 'error_restoring',
                        'error_extending', 'error_managing'))


def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def _iso(moment):
    return moment.strftime('%Y-%m-%dT%H:%M:%S.%f')


def _version_tuple(text):
    major, minor = text.split('.')
    return int(major), int(minor)


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


class _Fault:
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


class _Store:
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
            volume['updated_at'] = _iso(_now())
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
        stamp = _iso(_now())
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


def _public(volume):
    return {k: v for k, v in volume.items() if not k.startswith('_')}


class _Server(http.server.ThreadingHTTPServer):
    # The default backlog of 5 resets connections when a few dozen
    # clients (a manager's claim threads) connect at once.
    request_queue_size = 128


class CinderSimulator:
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
        self._store = _Store(self)
        self._faults = []
        self._held = []
        self._fail_creates = collections.deque()
        self._server = None
        self._thread = None

    # -- life cycle ------------------------------------------------------

    def start(self):
        handler = type('Handler', (_Handler,), {'sim': self})
        self._server = _Server((self.host, self.port), handler)
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
                'created_at': _iso(_now()), 'metadata': {},
                'description': None}
        return snapshot_id

    def set_snapshot_status(self, snapshot_id, status):
        with self._lock:
            self._store.snapshot(snapshot_id)['status'] = status

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
                return json.loads(json.dumps(_public(
                    self._store.volume(volume_id))))
            except ApiError:
                return None

    def list_volumes(self):
        with self._lock:
            return [json.loads(json.dumps(_public(v)))
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
        fault = _Fault(status, method, path, count, delay, hold)
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
        route, handler, args = _route(method, path)
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

    # Handlers run under the lock; they return (status, body).

    def _list_volumes(self, query, body, detailed=True):
        volumes = self._store.live_volumes()
        filters = dict(query)
        if filters.pop('all_tenants', '0') in ('0', 'false', 'False'):
            volumes = [v for v in volumes
                       if v['os-vol-tenant-attr:tenant_id'] ==
                       self._store.project]
        if 'metadata' in filters:
            try:
                wanted = ast.literal_eval(filters['metadata'])
            except (ValueError, SyntaxError):
                raise ApiError(400, 'Invalid metadata filter.')
            # Cinder on MariaDB compares without case, as here.
            volumes = [v for v in volumes
                       if all(str(v['metadata'].get(k)).lower() ==
                              str(val).lower()
                              for k, val in wanted.items())]
        for key in ('status', 'name'):
            if key in filters:
                volumes = [v for v in volumes if v[key] == filters[key]]
        # 3.45: the total that matches, whatever the page.
        with_count = filters.pop('with_count', 'false').lower() in (
            'true', '1', 'yes')
        total = len(volumes)
        volumes.sort(key=lambda v: (v['created_at'], v['id']), reverse=True)
        if 'marker' in filters:
            ids = [v['id'] for v in volumes]
            if filters['marker'] not in ids:
                raise ApiError(400, 'marker [%s] not found'
                               % filters['marker'])
            volumes = volumes[ids.index(filters['marker']) + 1:]
        limit = self.max_limit
        if 'limit' in filters:
            try:
                limit = min(int(filters['limit']), self.max_limit)
            except ValueError:
                raise ApiError(400, 'limit param must be an integer')
        page = volumes[:limit]
        result = {'volumes': [_public(v) if detailed else
                              {'id': v['id'], 'name': v['name']}
                              for v in page]}
        if with_count:
            result['count'] = total
        if len(page) == limit and len(volumes) > limit:
            next_query = dict(filters, marker=page[-1]['id'])
            result['volumes_links'] = [{
                'rel': 'next',
                'href': '%s/%s/volumes%s?%s' % (
                    self.endpoint, self._store.project,
                    '/detail' if detailed else '',
                    parse.urlencode(next_query))}]
        return 200, result

    def _create_volume(self, query, body):
        spec = (body or {}).get('volume')
        if not isinstance(spec, dict):
            raise ApiError(400, 'Missing required element volume in '
                                'request body.')
        snapshot_id = spec.get('snapshot_id')
        size = spec.get('size')
        if snapshot_id:
            snapshot = self._store.snapshot(snapshot_id)
            if snapshot['status'] != 'available':
                raise ApiError(400, 'Invalid snapshot: Originating snapshot '
                                    'status must be one of available.')
            if size is None:
                size = snapshot['size']
            if int(size) < snapshot['size']:
                raise ApiError(400, 'Invalid input received: Volume size '
                                    "'%s'GB cannot be smaller than the "
                                    "snapshot size %sGB." %
                               (size, snapshot['size']))
        if size is None or int(size) < 1:
            raise ApiError(400, 'Invalid input received: size must be a '
                                'positive integer.')
        self._store.check_quota(int(size))
        volume = self._store.new_volume(
            int(size), name=spec.get('name'),
            description=spec.get('description'), snapshot_id=snapshot_id,
            metadata=spec.get('metadata'),
            volume_type=spec.get('volume_type'),
            availability_zone=spec.get('availability_zone'),
            delay=self.creation_delay, project=self._store.project)
        if self._fail_creates:
            volume['_final_status'] = self._fail_creates.popleft()
        if self.creation_delay <= 0:
            self._store.refresh(volume)
        return 202, {'volume': _public(volume)}

    def _show_volume(self, query, body, volume_id):
        return 200, {'volume': _public(self._store.volume(volume_id))}

    def _update_volume(self, query, body, volume_id):
        volume = self._store.volume(volume_id)
        fields = (body or {}).get('volume') or {}
        for key in ('name', 'description'):
            if key in fields:
                volume[key] = fields[key]
        if 'metadata' in fields:
            # Cinder's volume_update replaces all user metadata.
            volume['metadata'] = dict(fields['metadata'] or {})
        volume['updated_at'] = _iso(_now())
        return 200, {'volume': _public(volume)}

    def _delete_volume(self, query, body, volume_id):
        volume = self._store.volume(volume_id)
        if volume['attachments'] or volume['status'] not in _DELETABLE:
            raise ApiError(400, 'Invalid volume: Volume status must be '
                                'available or error or error_restoring or '
                                'error_extending or error_managing and must '
                                'not be migrating, attached, belong to a '
                                'group, have snapshots, awaiting a transfer, '
                                'or be disassociated from snapshots after '
                                'volume transfer.')
        self._begin_delete(volume)
        return 202, None

    def _begin_delete(self, volume):
        volume['status'] = 'deleting'
        volume['_gone_at'] = self.clock() + self.deletion_delay
        self._store.refresh(volume)

    def _volume_action(self, query, body, volume_id):
        volume = self._store.volume(volume_id)
        body = body or {}
        if 'os-reset_status' in body:
            volume['status'] = body['os-reset_status'].get(
                'status', volume['status'])
            volume.pop('_final_status', None)
            return 202, None
        if 'os-force_delete' in body:
            self._begin_delete(volume)
            return 202, None
        raise ApiError(400, 'There is no such action: %s'
                       % ', '.join(body))

    def _metadata(self, query, body, volume_id):
        return 200, {'metadata': self._store.volume(volume_id)['metadata']}

    def _merge_metadata(self, query, body, volume_id):
        volume = self._store.volume(volume_id)
        volume['metadata'].update((body or {}).get('metadata') or {})
        return 200, {'metadata': volume['metadata']}

    def _replace_metadata(self, query, body, volume_id):
        volume = self._store.volume(volume_id)
        volume['metadata'] = dict((body or {}).get('metadata') or {})
        return 200, {'metadata': volume['metadata']}

    def _delete_metadata_key(self, query, body, volume_id, key):
        volume = self._store.volume(volume_id)
        if key not in volume['metadata']:
            raise ApiError(404, 'Metadata item was not found')
        del volume['metadata'][key]
        return 200, None

    # -- volume transfers (Cinder's os-volume-transfer API) --------------

    def _transfer(self, transfer_id):
        transfer = self._store.transfers.get(transfer_id)
        if transfer is None:
            raise ApiError(404, 'Transfer %s could not be found.'
                           % transfer_id)
        return transfer

    def _create_transfer(self, query, body):
        spec = (body or {}).get('transfer')
        if not isinstance(spec, dict) or not spec.get('volume_id'):
            raise ApiError(400, 'Incorrect request body format.')
        volume = self._store.volume(spec['volume_id'])
        if volume['status'] != 'available' or volume['attachments']:
            raise ApiError(400, 'Invalid volume: Status of volume must be '
                                'available')
        transfer_id = str(uuid.uuid4())
        transfer = {'id': transfer_id, 'volume_id': volume['id'],
                    'name': spec.get('name'), 'created_at': _iso(_now()),
                    'auth_key': uuid.uuid4().hex[:16],
                    '_project': volume['os-vol-tenant-attr:tenant_id']}
        self._store.transfers[transfer_id] = transfer
        volume['status'] = 'awaiting-transfer'
        return 202, {'transfer': _public(transfer)}

    def _accept_transfer(self, query, body, transfer_id):
        transfer = self._transfer(transfer_id)
        key = ((body or {}).get('accept') or {}).get('auth_key')
        if key != transfer['auth_key']:
            raise ApiError(400, 'Invalid auth key: Attempt to transfer %s '
                                'with invalid auth key.' % transfer_id)
        volume = self._store.volume(transfer['volume_id'])
        volume['os-vol-tenant-attr:tenant_id'] = self._store.project
        volume['status'] = 'available'
        volume['updated_at'] = _iso(_now())
        del self._store.transfers[transfer_id]
        return 202, {'transfer': {'id': transfer_id,
                                  'name': transfer['name'],
                                  'volume_id': volume['id']}}

    def _show_transfer(self, query, body, transfer_id):
        transfer = _public(self._transfer(transfer_id))
        transfer.pop('auth_key')
        return 200, {'transfer': transfer}

    def _list_transfers(self, query, body):
        mine = [t for t in self._store.transfers.values()
                if t['_project'] == self._store.project]
        return 200, {'transfers': [
            {k: v for k, v in _public(t).items() if k != 'auth_key'}
            for t in mine]}

    def _delete_transfer(self, query, body, transfer_id):
        transfer = self._transfer(transfer_id)
        del self._store.transfers[transfer_id]
        volume = self._store.volumes.get(transfer['volume_id'])
        if volume is not None and volume['status'] == 'awaiting-transfer':
            volume['status'] = 'available'
        return 202, None

    def _show_snapshot(self, query, body, snapshot_id):
        return 200, {'snapshot': dict(self._store.snapshot(snapshot_id))}

    def _list_snapshots(self, query, body):
        return 200, {'snapshots': [dict(s) for s in
                                   self._store.snapshots.values()]}


_ID = '([^/]+)'
# Project ids in URLs: Keystone's hex ids, or any id noauth is given.
_PROJECT_RE = re.compile(r'^[A-Za-z0-9_-]{1,64}$')
_ROUTES = [
    ('GET', '/volumes', r'^/volumes$',
     lambda s, q, b: CinderSimulator._list_volumes(s, q, b, False)),
    ('GET', '/volumes/detail', r'^/volumes/detail$',
     CinderSimulator._list_volumes),
    ('POST', '/volumes', r'^/volumes$', CinderSimulator._create_volume),
    ('GET', '/volumes/{id}', r'^/volumes/%s$' % _ID,
     CinderSimulator._show_volume),
    ('PUT', '/volumes/{id}', r'^/volumes/%s$' % _ID,
     CinderSimulator._update_volume),
    ('DELETE', '/volumes/{id}', r'^/volumes/%s$' % _ID,
     CinderSimulator._delete_volume),
    ('POST', '/volumes/{id}/action', r'^/volumes/%s/action$' % _ID,
     CinderSimulator._volume_action),
    ('GET', '/volumes/{id}/metadata', r'^/volumes/%s/metadata$' % _ID,
     CinderSimulator._metadata),
    ('POST', '/volumes/{id}/metadata', r'^/volumes/%s/metadata$' % _ID,
     CinderSimulator._merge_metadata),
    ('PUT', '/volumes/{id}/metadata', r'^/volumes/%s/metadata$' % _ID,
     CinderSimulator._replace_metadata),
    ('DELETE', '/volumes/{id}/metadata/{key}',
     r'^/volumes/%s/metadata/%s$' % (_ID, _ID),
     CinderSimulator._delete_metadata_key),
    ('GET', '/snapshots/detail', r'^/snapshots/detail$',
     CinderSimulator._list_snapshots),
    ('GET', '/snapshots/{id}', r'^/snapshots/%s$' % _ID,
     CinderSimulator._show_snapshot),
]
for _prefix in ('/os-volume-transfer', '/volume-transfers'):
    _ROUTES += [
        ('POST', _prefix, r'^%s$' % _prefix,
         CinderSimulator._create_transfer),
        ('GET', _prefix, r'^%s(?:/detail)?$' % _prefix,
         CinderSimulator._list_transfers),
        ('GET', _prefix + '/{id}', r'^%s/%s$' % (_prefix, _ID),
         CinderSimulator._show_transfer),
        ('DELETE', _prefix + '/{id}', r'^%s/%s$' % (_prefix, _ID),
         CinderSimulator._delete_transfer),
        ('POST', _prefix + '/{id}/accept', r'^%s/%s/accept$' % (_prefix, _ID),
         CinderSimulator._accept_transfer),
    ]
_COMPILED = [(m, name, re.compile(rx), fn) for m, name, rx, fn in _ROUTES]


def _route(method, path):
    for route_method, name, regex, handler in _COMPILED:
        if route_method == method:
            match = regex.match(path)
            if match:
                return name, handler, [parse.unquote(g)
                                       for g in match.groups()]
    return path, None, []


class _Handler(http.server.BaseHTTPRequestHandler):
    sim = None  # set on the subclass made per simulator
    protocol_version = 'HTTP/1.1'
    # Headers and body go out in two writes: with Nagle on, the body
    # waits for the client's delayed ACK (40 ms on Linux) on every request.
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        pass  # quiet: tests and the demo print what matters

    def setup(self):
        super().setup()
        with self.sim._lock:
            self.sim.connections += 1

    def _version(self):
        header = (self.headers.get('OpenStack-API-Version') or
                  self.headers.get('X-OpenStack-Volume-API-Version') or '')
        version = header.replace('volume', '').strip() or MIN_VERSION
        if version == 'latest':
            version = MAX_VERSION
        try:
            wanted = _version_tuple(version)
        except ValueError:
            raise ApiError(400, 'Invalid API version %s' % version)
        if not (_version_tuple(MIN_VERSION) <= wanted <=
                _version_tuple(MAX_VERSION)):
            raise ApiError(406, 'Version %s is not supported by the API. '
                                'Minimum is %s and maximum is %s.'
                           % (version, MIN_VERSION, MAX_VERSION))
        return version

    def _dispatch(self, method):
        version = MIN_VERSION
        try:
            url = parse.urlsplit(self.path)
            parts = url.path.rstrip('/').split('/', 3)
            version = self._version()
            if url.path.rstrip('/') in ('', '/v3'):
                return self._reply(200, _versions(self.sim.endpoint),
                                   version)
            if len(parts) < 4 or parts[1] != 'v3':
                raise ApiError(404, 'The resource could not be found.')
            if not _PROJECT_RE.match(parts[2]):
                raise ApiError(404, 'The resource could not be found.')
            query = dict(parse.parse_qsl(url.query))
            body = self._read_body()
            status, payload = self.sim.handle(method, '/' + parts[3], query,
                                              body, project=parts[2])
            self._reply(status, payload, version)
        except ApiError as exc:
            self._reply(exc.status, exc.body(), version, exc.headers)

    def _read_body(self):
        length = int(self.headers.get('Content-Length') or 0)
        if not length:
            return None
        try:
            return json.loads(self.rfile.read(length))
        except ValueError:
            raise ApiError(400, 'Malformed request body')

    def _reply(self, status, payload, version, headers=None):
        data = b'' if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.send_header('OpenStack-API-Version', 'volume %s' % version)
        self.send_header('Vary', 'OpenStack-API-Version')
        self.send_header('x-openstack-request-id',
                         'req-%s' % uuid.uuid4())
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self._dispatch('GET')

    def do_POST(self):  # noqa: N802
        self._dispatch('POST')

    def do_PUT(self):  # noqa: N802
        self._dispatch('PUT')

    def do_DELETE(self):  # noqa: N802
        self._dispatch('DELETE')


def _versions(endpoint):
    return {'versions': [{
        'id': 'v3.0', 'status': 'CURRENT', 'version': MAX_VERSION,
        'min_version': MIN_VERSION, 'updated': '2023-08-31T00:00:00Z',
        'links': [{'rel': 'self', 'href': endpoint + '/'}]}]}
