"""The simulator's HTTP side: Cinder's URLs, microversions and errors."""

import http.server
import json
import re
from urllib import parse
import uuid

from volume_pool.simulator.store import ApiError

MIN_VERSION = '3.0'
MAX_VERSION = '3.71'
# Project ids in URLs: Keystone's hex ids, or any id noauth is given.
_PROJECT_RE = re.compile(r'^[A-Za-z0-9_-]{1,64}$')


def _version_tuple(text):
    major, minor = text.split('.')
    return int(major), int(minor)


class Server(http.server.ThreadingHTTPServer):
    # The default backlog of 5 resets connections when a few dozen
    # clients (a manager's claim threads) connect at once.
    request_queue_size = 128


class Handler(http.server.BaseHTTPRequestHandler):
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
