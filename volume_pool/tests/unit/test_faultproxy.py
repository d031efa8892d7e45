"""The chaos soak's fault proxy, against a small local HTTP server."""

import http.client
import http.server
import json
import threading
import time

import pytest

from volume_pool.fixtures import waiting
from volume_pool.tests.chaos import faultproxy

PROJECT_PATH = '/v3/a1b2c3d4e5f60718293a4b5c6d7e8f90'
AUTH = 'admin:a1b2c3d4e5f60718293a4b5c6d7e8f90'  # noauth's X-Auth-Token


class Upstream(http.server.ThreadingHTTPServer):
    """Echoes each request as JSON and records it; ``/hang`` waits."""

    daemon_threads = True

    def __init__(self):
        self.seen = []
        self.release = threading.Event()
        super().__init__(('127.0.0.1', 0), _EchoHandler)
        self.thread = threading.Thread(target=self.serve_forever,
                                       kwargs={'poll_interval': 0.05},
                                       daemon=True)
        self.thread.start()

    @property
    def url(self):
        return 'http://127.0.0.1:%d%s' % (self.server_address[1],
                                          PROJECT_PATH)

    def handle_error(self, request, client_address):
        pass  # /hang answers after the proxy gave up: a broken pipe

    def stop(self):
        self.release.set()
        self.shutdown()
        self.server_close()


class _EchoHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, format, *args):
        pass

    def _any(self):
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length).decode()
        record = {'method': self.command, 'path': self.path, 'body': body,
                  'host': self.headers['Host'],
                  'auth': self.headers.get('X-Auth-Token')}
        self.server.seen.append(record)
        if self.path.endswith('/hang'):
            self.server.release.wait(10)
        status = 404 if self.path.endswith('/missing') else 202
        payload = json.dumps(record).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('X-Openstack-Request-Id', 'req-upstream')
        self.send_header('Content-Length', str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _any


@pytest.fixture
def upstream():
    server = Upstream()
    yield server
    server.stop()


@pytest.fixture
def make_proxy(upstream):
    started = []

    def _make(**kwargs):
        proxy = faultproxy.FaultProxy(upstream.url, **kwargs).start()
        started.append(proxy)
        return proxy

    yield _make
    for proxy in started:
        proxy.stop()


@pytest.fixture
def proxy(make_proxy):
    return make_proxy(faults=faultproxy.Faults(seed=7, delay=0.3))


def request(proxy, method='GET', path=PROJECT_PATH + '/volumes/detail',
            body=None, conn=None):
    """One request; a connection made here is closed after the answer."""
    if conn is not None:
        return _exchange(conn, method, path, body)
    conn = http.client.HTTPConnection('127.0.0.1', proxy.port, timeout=10)
    try:
        return _exchange(conn, method, path, body)
    finally:
        conn.close()


def _exchange(conn, method, path, body):
    headers = {'X-Auth-Token': AUTH}
    if body is not None:
        body = json.dumps(body)
        headers['Content-Type'] = 'application/json'
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    return response, response.read()


def wait_stalled(faults, count):
    waiting.wait_for(lambda: faults.stalled >= count, timeout=10,
                     interval=0.01, what='%d request(s) stalled' % count)


def test_forwards_path_method_body_and_headers(proxy, upstream):
    path = PROJECT_PATH + '/volumes?limit=5&marker=abc'
    response, payload = request(proxy, 'POST', path,
                                body={'volume': {'size': 1}})
    assert response.status == 202
    assert response.getheader('X-Openstack-Request-Id') == 'req-upstream'
    echoed = json.loads(payload)
    assert echoed == upstream.seen[0]
    assert echoed['method'] == 'POST'
    assert echoed['path'] == path  # unchanged, project id and query kept
    assert json.loads(echoed['body']) == {'volume': {'size': 1}}
    assert echoed['auth'] == AUTH
    assert echoed['host'] == '127.0.0.1:%d' % upstream.server_address[1]


def test_upstream_errors_pass_through_on_a_kept_connection(proxy, upstream):
    conn = http.client.HTTPConnection('127.0.0.1', proxy.port, timeout=10)
    try:
        first, _ = request(proxy, path=PROJECT_PATH + '/volumes/missing',
                           conn=conn)
        second, _ = request(proxy, 'DELETE', PROJECT_PATH + '/volumes/x',
                            conn=conn)
    finally:
        conn.close()
    assert (first.status, second.status) == (404, 202)
    assert [r['method'] for r in upstream.seen] == ['GET', 'DELETE']


def test_url_for_changes_only_host_and_port(proxy):
    assert (proxy.url_for('http://127.0.0.1:8776' + PROJECT_PATH) ==
            'http://127.0.0.1:%d%s' % (proxy.port, PROJECT_PATH))


def test_error_answers_5xx_and_forwards_nothing(proxy, upstream):
    proxy.faults.inject(faultproxy.ERROR)
    response, payload = request(proxy)
    assert response.status in (500, 503)
    assert json.loads(payload)['computeFault']['code'] == response.status
    assert upstream.seen == []
    assert request(proxy)[0].status == 202  # one request only
    assert proxy.faults.counts[faultproxy.ERROR] == 1


def test_quota_answers_413_retry_after_zero(proxy, upstream):
    proxy.faults.inject(faultproxy.QUOTA)
    response, payload = request(proxy, 'POST', body={'volume': {}})
    assert response.status == 413
    assert response.getheader('Retry-After') == '0'
    assert json.loads(payload)['overLimit']['retryAfter'] == '0'
    assert upstream.seen == []


def test_drop_before_closes_and_forwards_nothing(proxy, upstream):
    proxy.faults.inject(faultproxy.DROP_BEFORE)
    with pytest.raises(http.client.RemoteDisconnected):
        request(proxy, 'POST', body={'volume': {}})
    assert upstream.seen == []


def test_drop_after_forwards_then_loses_the_answer(proxy, upstream):
    proxy.faults.inject(faultproxy.DROP_AFTER)
    with pytest.raises(http.client.RemoteDisconnected):
        request(proxy, 'POST', body={'volume': {'size': 1}})
    assert [r['method'] for r in upstream.seen] == ['POST']


def test_late_lands_only_after_the_client_gave_up(proxy, upstream):
    proxy.faults.inject(faultproxy.LATE)
    conn = http.client.HTTPConnection('127.0.0.1', proxy.port, timeout=0.5)
    try:
        with pytest.raises(TimeoutError):
            request(proxy, 'POST', body={'volume': {'size': 1}}, conn=conn)
        assert upstream.seen == []  # held while the client waited
    finally:
        conn.close()  # the client gives up, as a timed-out client does
    waiting.wait_for(lambda: upstream.seen, timeout=10, interval=0.05,
                     what='the late request landed')
    assert [r['method'] for r in upstream.seen] == ['POST']
    assert proxy.faults.counts['late_landed'] == 1


def test_late_waits_for_a_request_that_changes_something(proxy, upstream):
    proxy.faults.inject(faultproxy.LATE)
    assert request(proxy)[0].status == 202  # a GET goes through
    assert proxy.faults.counts[faultproxy.LATE] == 0
    assert proxy.faults.choose('DELETE') == faultproxy.LATE


def test_a_late_rate_draws_only_for_requests_that_change_something():
    faults = faultproxy.Faults(seed=5)
    faults.set_probabilities(late=1.0, error=1.0)  # late on its own rate
    assert faults.choose('GET') == faultproxy.ERROR
    assert {faults.choose(m) for m in ('POST', 'PUT', 'DELETE')} == {
        faultproxy.LATE}
    with pytest.raises(ValueError):
        faults.set_probabilities(late=1.5)


def test_late_is_bounded_when_the_client_stays(make_proxy, upstream):
    proxy = make_proxy(hold_bound=0.3,
                       faults=faultproxy.Faults(late_delay=0.0))
    proxy.faults.inject(faultproxy.LATE)
    with pytest.raises(http.client.RemoteDisconnected):
        request(proxy, 'PUT', body={'volume': {'name': 'x'}})
    assert [r['method'] for r in upstream.seen] == ['PUT']
    assert proxy.faults.counts['late_client_stayed'] == 1


def test_delay_holds_then_forwards(proxy, upstream):
    proxy.faults.inject(faultproxy.DELAY)
    started = time.monotonic()
    response, _ = request(proxy)
    assert time.monotonic() - started >= 0.3
    assert response.status == 202 and len(upstream.seen) == 1


def test_stall_holds_requests_until_resumed(proxy, upstream):
    proxy.faults.stall()
    results = []
    caller = threading.Thread(
        target=lambda: results.append(request(proxy)[0].status))
    caller.start()
    wait_stalled(proxy.faults, 1)
    assert upstream.seen == [] and results == []
    proxy.faults.resume()
    caller.join(10)
    assert results == [202] and len(upstream.seen) == 1


def test_stall_is_bounded(make_proxy, upstream):
    proxy = make_proxy(hold_bound=0.2)
    proxy.faults.stall()
    started = time.monotonic()
    assert request(proxy)[0].status == 202
    assert 0.2 <= time.monotonic() - started < 5
    assert proxy.faults.counts['stalled'] == 1


def test_stop_ends_a_stall(make_proxy):
    proxy = make_proxy()
    proxy.faults.stall()
    caller = threading.Thread(target=request, args=(proxy,), daemon=True)
    caller.start()
    wait_stalled(proxy.faults, 1)
    proxy.stop()
    caller.join(5)
    assert not caller.is_alive()


def test_slow_upstream_is_504_within_the_timeout(make_proxy, upstream):
    proxy = make_proxy(upstream_timeout=0.3)
    started = time.monotonic()
    response, payload = request(proxy, path=PROJECT_PATH + '/hang')
    assert response.status == 504
    assert time.monotonic() - started < 5
    assert 'proxyError' in json.loads(payload)


def test_upstream_down_is_502():
    port = waiting.free_port()
    proxy = faultproxy.FaultProxy('http://127.0.0.1:%d/v3/p' % port).start()
    try:
        assert request(proxy)[0].status == 502
    finally:
        proxy.stop()


def test_random_faults_follow_probabilities_and_seed():
    def draws(seed):
        faults = faultproxy.Faults(seed=seed)
        faults.set_probabilities(error=0.5, drop_after=0.5)
        return [faults.choose() for _ in range(50)]

    first = draws(3)
    assert first == draws(3)
    assert set(first) == {faultproxy.ERROR, faultproxy.DROP_AFTER}
    faults = faultproxy.Faults(seed=3)
    assert {faults.choose() for _ in range(50)} == {None}
    faults.set_probabilities(quota=1.0)
    assert faults.choose() == faultproxy.QUOTA
    faults.inject(faultproxy.DELAY, count=2)
    assert [faults.choose() for _ in range(3)] == [
        faultproxy.DELAY, faultproxy.DELAY, faultproxy.QUOTA]
    assert faults.counts == {faultproxy.QUOTA: 2, faultproxy.DELAY: 2}
    faults.clear()
    assert faults.choose() is None


def test_bad_settings_are_refused():
    faults = faultproxy.Faults()
    with pytest.raises(ValueError):
        faults.set_probabilities(error=0.7, quota=0.7)
    with pytest.raises(ValueError):
        faults.set_probabilities(explode=0.1)
    with pytest.raises(ValueError):
        faults.inject('explode')
    with pytest.raises(ValueError):
        faultproxy.FaultProxy('https://127.0.0.1:1/v3')
