"""A fault-injecting HTTP reverse proxy in front of Cinder.

The managers reach Cinder through it, so the soak can make Cinder slow,
failing, over quota, lose a request or its answer, or land a request
after its client gave up on it, without touching Cinder.  Stdlib only;
every wait is bounded.  The path is forwarded unchanged (the Cinder
endpoint carries the API version and the project id); only the host and
port change.
"""

import collections
import http.client
import http.server
import json
import random
import select
import socket
import sys
import threading
import time
import urllib.parse

# What the proxy can do to one request, besides forwarding it.
DELAY = 'delay'              # wait, then forward
ERROR = 'error'              # answer 500 or 503, Cinder never sees it
QUOTA = 'quota'              # answer 413 with Retry-After: 0
DROP_BEFORE = 'drop_before'  # close the connection, Cinder never sees it
DROP_AFTER = 'drop_after'    # forward, then close: the answer is lost
LATE = 'late'                # hold until the client gave up, then forward
ACTIONS = (DELAY, ERROR, QUOTA, DROP_BEFORE, DROP_AFTER, LATE)
# Requests that change something: only these are worth landing late.
CHANGING = frozenset(('POST', 'PUT', 'DELETE', 'PATCH'))

# Headers that belong to one connection, never forwarded (RFC 9110 7.6.1).
HOP_BY_HOP = frozenset(('connection', 'keep-alive', 'proxy-connection',
                        'te', 'trailer', 'transfer-encoding', 'upgrade',
                        'proxy-authenticate', 'proxy-authorization'))


class Faults:
    """Which fault the next request gets: thread-safe, seeded.

    Explicit commands (:meth:`inject`, :meth:`stall`) come before the
    random ones, so the soak can aim a fault at the next requests.
    """

    def __init__(self, seed=None, delay=1.0, late_delay=0.5):
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._queued = collections.deque()
        self._resume = threading.Event()
        self._resume.set()
        self.delay = delay
        # Seconds a late request lands after its client gave up on it.
        self.late_delay = late_delay
        self.probabilities = dict.fromkeys(ACTIONS, 0.0)
        self.counts = collections.Counter()
        self.stalled = 0  # requests waiting on a stall right now

    def set_probabilities(self, **probabilities):
        """Chance per request of each action; unnamed actions keep theirs.

        The late fault's is a chance per request that changes something,
        drawn before the others.
        """
        unknown = set(probabilities) - set(ACTIONS)
        if unknown:
            raise ValueError('unknown fault(s): %s' % ', '.join(unknown))
        with self._lock:
            wanted = dict(self.probabilities, **probabilities)
            if (sum(wanted.values()) - wanted[LATE] > 1.0
                    or wanted[LATE] > 1.0):
                raise ValueError('fault probabilities add up to more than 1')
            self.probabilities = wanted

    def clear(self):
        """No more faults: probabilities to 0, commands dropped, resumed."""
        with self._lock:
            self.probabilities = dict.fromkeys(ACTIONS, 0.0)
            self._queued.clear()
        self.resume()

    def inject(self, action, count=1):
        """The next ``count`` requests get ``action``."""
        if action not in ACTIONS:
            raise ValueError('unknown fault: %s' % action)
        with self._lock:
            self._queued.extend([action] * count)

    def stall(self):
        """Hold every request until :meth:`resume` (or the hold bound)."""
        self._resume.clear()

    def resume(self):
        self._resume.set()

    def wait_if_stalled(self, bound):
        """Block while stalled, ``bound`` seconds at most; True if held."""
        if self._resume.is_set():
            return False
        with self._lock:
            self.stalled += 1
            self.counts['stalled'] += 1
        try:
            self._resume.wait(bound)
        finally:
            with self._lock:
                self.stalled -= 1
        return True

    def choose(self, method=None):
        """The action for one request, or None to forward it untouched.

        A late fault is for requests that change something (any, when
        ``method`` is None): a queued one waits for the next such request.
        """
        changes = method is None or method in CHANGING
        with self._lock:
            if self._queued and (changes or self._queued[0] != LATE):
                action = self._queued.popleft()
            else:
                action = self._draw(changes)
            if action:
                self.counts[action] += 1
            return action

    def _draw(self, changes):
        if changes and self._rng.random() < self.probabilities[LATE]:
            return LATE
        roll = self._rng.random()
        for name in ACTIONS[:-1]:  # all but LATE
            roll -= self.probabilities[name]
            if roll < 0:
                return name
        return None

    def count(self, what):
        with self._lock:
            self.counts[what] += 1

    def error_status(self):
        with self._lock:
            return self._rng.choice((500, 503))


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'  # keep-alive, as the Cinder client does

    def log_message(self, format, *args):
        pass  # the soak reports counts, not lines

    def _any(self):
        proxy = self.server
        body = self._read_body()
        if body is None:
            return
        proxy.faults.wait_if_stalled(proxy.hold_bound)
        action = proxy.faults.choose(self.command)
        if action == LATE:
            return self._land_late(body)
        if action == DELAY:
            proxy.stopping.wait(proxy.faults.delay)
        elif action == ERROR:
            status = proxy.faults.error_status()
            return self._answer(status, {'computeFault': {
                'code': status, 'message': 'injected by the chaos proxy'}})
        elif action == QUOTA:
            return self._answer(413, {'overLimit': {
                'code': 413, 'message': 'injected by the chaos proxy',
                'retryAfter': '0'}}, {'Retry-After': '0'})
        elif action == DROP_BEFORE:
            return self._drop()
        try:
            status, headers, payload = self._forward(body)
        except (OSError, http.client.HTTPException) as exc:
            # Cinder down or too slow: what a load balancer would say.
            status = 504 if isinstance(exc, TimeoutError) else 502
            return self._answer(status, {'proxyError': {
                'code': status, 'message': str(exc)}})
        if action == DROP_AFTER:
            return self._drop()
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header('Content-Length', str(len(payload)))
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(payload)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = _any

    def _land_late(self, body):
        """Forward only once the client gave up waiting (its timeout
        closed the connection): the request lands, nobody hears of it."""
        proxy = self.server
        gave_up = self._wait_client_gone(proxy.hold_bound)
        proxy.faults.count('late_landed' if gave_up else 'late_client_stayed')
        proxy.stopping.wait(proxy.faults.late_delay)
        try:
            self._forward(body)
        except (OSError, http.client.HTTPException):
            pass  # Cinder down meanwhile: the request never landed
        self._drop()

    def _wait_client_gone(self, bound):
        """True once the client closed its side, False after ``bound``
        seconds (or a stop) with the client still there."""
        deadline = time.monotonic() + bound
        while (not self.server.stopping.is_set()
               and time.monotonic() < deadline):
            readable, _, _ = select.select([self.connection], [], [], 0.1)
            if not readable:
                continue
            try:
                if not self.connection.recv(1, socket.MSG_PEEK):
                    return True
            except OSError:
                return True
            self.server.stopping.wait(0.1)  # more bytes: still there
        return False

    def _read_body(self):
        if 'chunked' in self.headers.get('Transfer-Encoding', '').lower():
            self._answer(411, {'proxyError': {
                'code': 411, 'message': 'chunked bodies are not proxied'}})
            return None
        length = int(self.headers.get('Content-Length') or 0)
        return self.rfile.read(length) if length else b''

    def _forward(self, body):
        proxy = self.server
        conn = http.client.HTTPConnection(proxy.upstream_host,
                                          proxy.upstream_port,
                                          timeout=proxy.upstream_timeout)
        try:
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in HOP_BY_HOP and k.lower() != 'host'}
            headers['Host'] = '%s:%d' % (proxy.upstream_host,
                                         proxy.upstream_port)
            conn.request(self.command, self.path, body=body or None,
                         headers=headers)
            response = conn.getresponse()
            payload = response.read()
            kept = [(k, v) for k, v in response.getheaders()
                    if k.lower() not in HOP_BY_HOP
                    and k.lower() != 'content-length']
            return response.status, kept, payload
        finally:
            conn.close()

    def _answer(self, status, document, headers=None):
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header('Content-Length', str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _drop(self):
        """Close without a byte of answer: the caller cannot tell whether
        Cinder acted."""
        self.close_connection = True


class FaultProxy(http.server.ThreadingHTTPServer):
    """Listens on 127.0.0.1 and forwards to ``upstream`` (a URL; only its
    host and port are used)."""

    daemon_threads = True

    def __init__(self, upstream, faults=None, port=0, upstream_timeout=30.0,
                 hold_bound=30.0):
        parsed = urllib.parse.urlsplit(upstream)
        if parsed.scheme != 'http' or not parsed.hostname:
            raise ValueError('need an http:// upstream, got %r' % upstream)
        self.upstream_host = parsed.hostname
        self.upstream_port = parsed.port or 80
        self.upstream_timeout = upstream_timeout
        self.hold_bound = hold_bound
        self.faults = faults or Faults()
        self.stopping = threading.Event()
        self._thread = None
        super().__init__(('127.0.0.1', port), _Handler)

    @property
    def port(self):
        return self.server_address[1]

    def handle_error(self, request, client_address):
        # A manager killed mid-request is a fault the soak made: quiet.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def url_for(self, url):
        """``url`` (an upstream URL) as seen through the proxy."""
        parsed = urllib.parse.urlsplit(url)
        return parsed._replace(netloc='127.0.0.1:%d' % self.port).geturl()

    def start(self):
        self._thread = threading.Thread(target=self.serve_forever,
                                        kwargs={'poll_interval': 0.1},
                                        name='faultproxy', daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stop serving; requests held in a delay or stall end now."""
        self.stopping.set()
        self.faults.resume()
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(10)

