"""A manager process's /metrics, its /healthcheck (oslo.middleware's) and
its RPC health ping, against a real Cinder, RabbitMQ and MariaDB or
PostgreSQL: the figures follow the pool and the claims as Cinder holds
them, and the health follows the database and the coordination backend
going away and back."""

import json
import urllib.error
import urllib.request

from prometheus_client import parser
import sqlalchemy as sa

from volume_pool import cinder as vp_cinder
from volume_pool import context as vp_context
from volume_pool.fixtures import redis as private_redis
from volume_pool.fixtures import tcp_proxy
from volume_pool.fixtures import waiting
from volume_pool.tests.functional import engines

CTXT = vp_context.RequestContext()


def _get(port, path, method='GET'):
    # A loopback http:// URL built here.
    request = urllib.request.Request(  # noqa: S310
        'http://127.0.0.1:%d%s' % (port, path), method=method,
        headers={'Accept': 'application/json'})
    try:
        with urllib.request.urlopen(request, timeout=20) as answer:  # noqa: S310
            return answer.status, answer.read().decode('utf-8')
    except urllib.error.HTTPError as error:
        with error:  # its connection, closed now rather than at gc
            return error.code, error.read().decode('utf-8')
    except OSError:
        return None, ''  # not listening yet


def _scrape(port):
    """``{(name, sorted label items): value}`` of /metrics."""
    status, text = _get(port, '/metrics')
    if status != 200:
        return {}
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in parser.text_string_to_metric_families(text)
            for sample in family.samples}


def _health(port):
    """``(status, reasons)`` of oslo.middleware's health check; a reason
    is a dict with the manager's record as ``details`` in detailed
    mode."""
    status, text = _get(port, '/healthcheck')
    return status, (json.loads(text)['reasons'] if status in (200, 503)
                    else None)


def _ready_in_cinder(cinder, pool):
    return sum(1 for v in cinder.client().volumes.list(
        search_opts={'metadata': {vp_cinder.TAG_POOL: pool}})
        if v.status == 'available')


def _metrics_section(port, detailed=False):
    return '[metrics]\nport = %d\n[healthcheck]\ndetailed = %s\n' % (
        port, detailed)


@engines.ON_POSTGRESQL
def test_metrics_follow_the_pool_and_the_claims(managers, api, cinder,
                                                snapshot, pool_name):
    port = waiting.free_port()
    managers([(pool_name, snapshot, 3)], extra=_metrics_section(port))
    waiting.pool_ready(api, pool_name, 3)
    ready = ('volume_pool_volumes', (('cluster', ''), ('pool', pool_name),
                                     ('state', 'ready')))
    target = ('volume_pool_target', (('cluster', ''), ('pool', pool_name)))
    scraped = waiting.wait_for(
        lambda: (lambda m: m.get(ready) == 3 and m)(_scrape(port)),
        timeout=30, what='the ready gauge at 3')
    assert scraped[target] == 3
    assert _ready_in_cinder(cinder, pool_name) == 3

    claimed = [api.claim(CTXT, pool_name, name='mon-%d' % i)
               for i in range(2)]
    scraped = _scrape(port)
    hits = ('volume_pool_claims_total', (
        ('cluster', ''), ('outcome', 'pool'), ('pool', pool_name)))
    assert scraped[hits] == 2
    assert scraped[('volume_pool_claim_duration_seconds_count',
                    (('cluster', ''),))] == 2
    # Each answered claim took one ready volume; the gauge says what the
    # table holds now, which is what Cinder holds.
    assert scraped[ready] == _ready_in_cinder(cinder, pool_name)
    for result in claimed:
        volume = cinder.client().volumes.get(result['volume_id'])
        assert vp_cinder.TAG_POOL not in volume.metadata
    waiting.pool_ready(api, pool_name, 3)
    waiting.wait_for(lambda: _scrape(port).get(ready) == 3, timeout=30,
                     what='the ready gauge back at 3')
    assert _ready_in_cinder(cinder, pool_name) == 3

    assert _health(port) == (200, ['ok'])
    assert _get(port, '/healthcheck', method='HEAD') == (204, '')
    assert api.ping(CTXT, 'mgr-1')['status'] == 'ok'


def _through(proxy, url):
    return sa.engine.make_url(url).set(
        host='127.0.0.1', port=proxy.port).render_as_string(
            hide_password=False)


# The health checks are the same on either database: these two run on
# MariaDB only; the figures above are checked on both.
@engines.ON_MARIADB
def test_health_fails_while_the_database_is_away(managers, api, snapshot,
                                                 pool_name, db_url,
                                                 console):
    parsed = sa.engine.make_url(db_url)
    default_port = {'mysql': 3306, 'postgresql': 5432}[
        parsed.get_backend_name()]
    proxy = tcp_proxy.TcpProxy((parsed.host or '127.0.0.1',
                                parsed.port or default_port)).start()
    port = waiting.free_port()
    try:
        manager = managers([(pool_name, snapshot, 1)],
                           extra=_metrics_section(port, detailed=True),
                           connection=_through(proxy, db_url))
        waiting.wait_for(lambda: _health(port)[0] == 200, timeout=60,
                         what='healthy')
        proxy.cut()
        _status, [reason] = waiting.wait_for(
            lambda: (lambda h: h[0] == 503 and h)(_health(port)),
            timeout=60, what='the database check failing')
        assert reason['reason'] == 'failed: database'
        record = json.loads(reason['details'])
        assert record['status'] == 'failed'
        assert record['checks']['database']['ok'] is False
        assert record['checks']['rpc'] == {'ok': True}
        assert _scrape(port)[('volume_pool_database_up', ())] == 0
        # The RPC probe says the same, and exits 1.
        result = console('volume-pool-status', '--config-file',
                         manager.conf_path, 'health', '--host', 'mgr-1')
        assert result.returncode == 1, result.stdout + result.stderr
        assert 'database      FAILED' in result.stdout
        proxy.mend()
        waiting.wait_for(lambda: _health(port)[0] == 200, timeout=60,
                         what='healthy again')
        result = console('volume-pool-status', '--config-file',
                         manager.conf_path, 'health', '--host', 'mgr-1')
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        proxy.cut()


@engines.ON_MARIADB
def test_health_is_degraded_while_coordination_is_away(managers, snapshot,
                                                       pool_name, tmp_path):
    redis = private_redis.PrivateRedis(tmp_path).start()
    port = waiting.free_port()
    try:
        managers([(pool_name, snapshot, 1)], coordination=redis.url,
                 extra=_metrics_section(port))
        coordination_up = ('volume_pool_coordination_up', ())
        waiting.wait_for(lambda: _scrape(port).get(coordination_up) == 1,
                         timeout=60, what='coordination joined')
        redis.stop()
        status, _reasons = waiting.wait_for(
            lambda: (lambda h: h[1] == ['degraded: coordination']
                     and h)(_health(port)),
            timeout=60, what='degraded')
        # Degraded still serves: the probe does not fail.
        assert status == 200
        assert _get(port, '/healthcheck', method='HEAD')[0] == 204
        assert _scrape(port)[coordination_up] == 0
        redis.start()
        waiting.wait_for(lambda: _health(port) == (200, ['ok']),
                         timeout=60, what='ok again')
    finally:
        redis.stop()
