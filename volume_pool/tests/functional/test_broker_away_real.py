"""A broker that goes away or refuses us, on the real RabbitMQ: the
client answers within its timeout with BrokerUnreachable or at once with
BrokerRefused, the commands keep to --timeout with one line and their
exit code, and a manager started while its broker is away keeps its pools
and /healthcheck, then serves claims once the broker is back, without a
restart.  Away is a closed port or a TCP proxy that is cut; refused is a
user the broker does not know."""

import time
import urllib.parse
import uuid

from oslo_config import cfg
import pytest

from volume_pool import rpcapi
from volume_pool.fixtures import tcp_proxy
from volume_pool.fixtures import waiting
from volume_pool.tests.functional import engines
from volume_pool.tests.functional.test_exactly_once_real import CTXT
from volume_pool.tests.functional.test_monitoring_real import _health
from volume_pool.tests.functional.test_monitoring_real import _metrics_section
from volume_pool.tests.functional.test_monitoring_real import _ready_in_cinder
from volume_pool.tests.functional.test_monitoring_real import _scrape

TIMEOUT = 5
# What a call may take beyond its timeout: one connection attempt to a
# closed port, and a loaded machine.
MARGIN = 1.5
# A command also starts Python and imports the service (about 2 s here).
COMMAND_MARGIN = 6.0


def _with_netloc(url, user=None, port=None):
    parts = urllib.parse.urlsplit(url)
    auth, _at, hostport = parts.netloc.rpartition('@')
    host = hostport.rsplit(':', 1)[0]
    netloc = '%s@%s:%d' % (user or auth, host,
                          port or parts.port or 5672)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture
def client_on():
    """``client_on(url)``: the controller's client on that transport URL;
    its transport is closed at the end without waiting for a broker."""
    cfg.CONF([], project='volume-pool-functional')
    transports = []

    def _make(url, timeout=60):
        transport = rpcapi.get_transport(cfg.CONF, url=url)
        transports.append(transport)
        return rpcapi.VolumePoolAPI(transport, timeout=timeout)
    yield _make
    for transport in transports:
        rpcapi.close_transport(transport, 1.0)
    cfg.CONF.reset()


def _timed(call):
    start = time.monotonic()
    try:
        call()
    except Exception as exc:
        return exc, time.monotonic() - start
    raise AssertionError('no error')


def test_client_answers_within_its_timeout_when_the_broker_is_away(
        transport_url, client_on):
    closed = _with_netloc(transport_url, port=waiting.free_port())
    api = client_on(closed)
    for name, call in (
            ('keyed claim', lambda: api.claim(CTXT, 'debian', timeout=TIMEOUT,
                                               claim_key=str(uuid.uuid4()))),
            ('claim', lambda: api.claim(CTXT, 'debian', timeout=TIMEOUT)),
            ('pool_status', lambda: api.pool_status(CTXT, timeout=TIMEOUT)),
            ('ping', lambda: api.ping(CTXT, 'mgr-1', timeout=TIMEOUT))):
        error, elapsed = _timed(call)
        print('%s: %s after %.2f s' % (name, type(error).__name__, elapsed))
        assert isinstance(error, rpcapi.BrokerUnreachable), (name, error)
        assert TIMEOUT - 0.1 <= elapsed <= TIMEOUT + MARGIN, (name, elapsed)
        assert not error.maybe_sent
    assert error.claim_key is None


def test_client_is_refused_at_once_with_credentials_the_broker_refuses(
        transport_url, client_on):
    api = client_on(_with_netloc(transport_url,
                                 user='nobody-%s:wrong' % uuid.uuid4().hex))
    key = str(uuid.uuid4())
    error, elapsed = _timed(lambda: api.claim(CTXT, 'debian', claim_key=key,
                                              timeout=TIMEOUT))
    print('refused claim: %s after %.2f s' % (type(error).__name__, elapsed))
    assert isinstance(error, rpcapi.BrokerRefused)
    assert 'ACCESS_REFUSED' in str(error)
    assert (error.claim_key, error.maybe_sent) == (key, False)
    assert elapsed < 2.0
    error, elapsed = _timed(lambda: api.pool_status(CTXT, timeout=TIMEOUT))
    assert isinstance(error, rpcapi.BrokerRefused) and elapsed < 2.0


def _commands_conf(tmp_path, url):
    path = tmp_path / 'cli.conf'
    path.write_text('[DEFAULT]\ntransport_url = %s\n[database]\n'
                    'connection = sqlite:///%s/cli.sqlite\n' % (url, tmp_path))
    return str(path)


@pytest.mark.parametrize('away, expected', [('closed', 3), ('refused', 2)])
def test_commands_keep_to_their_timeout_with_one_line(
        tmp_path, transport_url, console, away, expected):
    url = (_with_netloc(transport_url, port=waiting.free_port())
           if away == 'closed' else
           _with_netloc(transport_url, user='nobody:wrong'))
    conf = _commands_conf(tmp_path, url)
    for argv in (('volume-pool-status', '--config-file', conf, 'health',
                  '--host', 'mgr-1', '--timeout', str(TIMEOUT)),
                 ('volume-pool-manage', '--config-file', conf, 'pool',
                  'refill', 'debian', '--timeout', str(TIMEOUT)),
                 ('volume-pool-manage', '--config-file', conf, 'claim',
                  'take', 'debian', '--timeout', str(TIMEOUT))):
        start = time.monotonic()
        result = console(*argv, timeout=60)
        elapsed = time.monotonic() - start
        lines = (result.stdout + result.stderr).strip().splitlines()
        print('%s %s: exit %d after %.2f s: %s'
              % (argv[0], argv[3], result.returncode, elapsed, lines))
        assert result.returncode == expected, result
        assert len(lines) == 1 and 'message broker' in lines[0], lines
        assert elapsed <= TIMEOUT + COMMAND_MARGIN
    # pool list shows the database's counts instead, and says why.
    assert console('volume-pool-manage', '--config-file', conf, 'db',
                   'sync', timeout=120).returncode == 0
    result = console('volume-pool-manage', '--config-file', conf, 'pool',
                     'list', '--timeout', str(TIMEOUT), timeout=60)
    assert result.returncode == 0, result
    assert 'message broker' in result.stderr


@engines.ON_MARIADB
def test_a_keyed_claim_meets_the_broker_away_then_goes_through(
        managers, api, cinder, snapshot, pool_name, client_on):
    managers([(pool_name, snapshot, 2)])
    waiting.pool_ready(api, pool_name, 2)
    port = urllib.parse.urlsplit(managers.transport_url).port or 5672
    proxy = tcp_proxy.TcpProxy(('127.0.0.1', port)).start()
    try:
        proxied = client_on(_with_netloc(managers.transport_url,
                                         port=proxy.port))
        assert proxied.pool_status(CTXT, timeout=30)  # the reply queue
        proxy.cut()
        key = str(uuid.uuid4())
        error, elapsed = _timed(lambda: proxied.claim(
            CTXT, pool_name, name='fn-away', claim_key=key, timeout=TIMEOUT))
        print('claim through a cut proxy: %s after %.2f s (maybe_sent %s)'
              % (type(error).__name__, elapsed, error.maybe_sent))
        assert isinstance(error, rpcapi.BrokerUnreachable)
        assert error.claim_key == key
        assert elapsed <= TIMEOUT + MARGIN
        proxy.mend()
        # The same key, once the broker is back: one volume, the claim's.
        claimed = proxied.claim(CTXT, pool_name, name='fn-away',
                                claim_key=key, timeout=60)
        again = api.claim(CTXT, pool_name, name='fn-away', claim_key=key,
                          timeout=60)
        assert again['volume_id'] == claimed['volume_id']
    finally:
        proxy.cut()


@engines.ON_POSTGRESQL
def test_a_manager_started_with_the_broker_away_keeps_its_pools_then_serves(
        managers, api, cinder, snapshot, pool_name):
    port = urllib.parse.urlsplit(managers.transport_url).port or 5672
    proxy = tcp_proxy.TcpProxy(('127.0.0.1', port))  # not listening yet
    metrics_port = waiting.free_port()
    process = managers([(pool_name, snapshot, 2)],
                       broker=_with_netloc(managers.transport_url,
                                           port=proxy.port),
                       extra=_metrics_section(metrics_port, detailed=True))
    try:
        # /healthcheck answers, rpc failing; replenish and sync run.
        waiting.wait_for(lambda: _health(metrics_port)[0] == 503,
                         timeout=60, what='/healthcheck failing')
        reason = _health(metrics_port)[1][0]['reason']
        assert reason.startswith('failed') and 'rpc' in reason, reason
        waiting.wait_for(lambda: _ready_in_cinder(cinder, pool_name) == 2,
                         timeout=120, what='the pool filled, broker away')
        assert _scrape(metrics_port)  # its metrics too
        broker_back = time.monotonic()
        proxy.start()
        waiting.wait_for(lambda: _health(metrics_port)[0] == 200,
                         timeout=90, interval=0.5,
                         what='/healthcheck ok once the broker is back')
        print('serving %.1f s after the broker came back'
              % (time.monotonic() - broker_back))
        claimed = api.claim(CTXT, pool_name, name='fn-back',
                            claim_key=str(uuid.uuid4()), timeout=60)
        assert claimed['source'] == 'pool'
        assert process.alive()
    finally:
        proxy.cut()
