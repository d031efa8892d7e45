"""The health record of a manager: the RPC ping to one named manager
(also on its own host's server when it is clustered), the checks that
decide ok, degraded or failed, and volume-pool-status health."""

import json
import types

import oslo_messaging as messaging
import pytest

from volume_pool import context as vp_context
from volume_pool import exception
from volume_pool import health
from volume_pool import rpc
from volume_pool import rpcapi
from volume_pool.tests.conftest import own_conf
from volume_pool.tests.conftest import service_config
from volume_pool.tests.conftest import serving

CTXT = vp_context.RequestContext()


@pytest.mark.recollect
def test_ping_answers_with_the_named_manager_health(running_service):
    record = rpcapi.VolumePoolAPI(timeout=10).ping(CTXT, 'rpc-test')
    assert (record['host'], record['cluster']) == ('rpc-test', None)
    assert record['status'] == health.OK
    checks = record['checks']
    assert checks['rpc'] == {'ok': True}
    assert checks['database'] == {'ok': True}
    assert checks['coordination'] == {'ok': True, 'backend': None}
    assert set(checks['periodic']) == {'replenish', 'sync'}


@pytest.mark.recollect
def test_ping_refuses_a_pinned_client_and_a_bad_host(running_service):
    with pytest.raises(exception.PingUnsupported):
        rpcapi.VolumePoolAPI(timeout=10, version_cap='1.4').ping(
            CTXT, 'rpc-test')
    for bad in ('', 'a\nb', None, 'x' * 1000):
        with pytest.raises(exception.Invalid):
            rpcapi.VolumePoolAPI(timeout=10).ping(CTXT, bad)


@pytest.mark.recollect
def test_ping_to_a_host_nobody_serves_times_out(running_service):
    with pytest.raises(messaging.MessagingTimeout):
        rpcapi.VolumePoolAPI().ping(CTXT, 'nobody-here', timeout=1)


@pytest.fixture
def clustered_service(write_config, database, simulator, conf,
                      transport_url):
    write_config(service_config(simulator, transport_url, host='east-1',
                                cluster='east', target=1))
    with serving(conf) as server:
        yield server


@pytest.mark.recollect
def test_a_clustered_manager_answers_ping_on_its_own_host(
        clustered_service):
    api = rpcapi.VolumePoolAPI(timeout=10)
    record = api.ping(CTXT, 'east-1')
    assert (record['host'], record['cluster']) == ('east-1', 'east')
    # Its host's server answers ping and nothing else.
    with pytest.raises(Exception) as caught:
        api.client.prepare(version='1.0', topic=rpc.HOST_TOPIC,
                           server='east-1').call(CTXT, 'pool_status')
    assert 'NoSuchMethod' in repr(caught.value)
    # The API goes to the cluster's server, and a call to any manager
    # on the API's topic never lands on the ping-only server.
    assert api.pool_status(CTXT, cluster='east')[0]['name'] == 'debian'
    for _ in range(6):
        assert api.get_usable_hosts(CTXT, 'east') == ['east-1']


def _coordination(enabled, degraded=False):
    return types.SimpleNamespace(enabled=enabled, degraded=degraded)


@pytest.mark.parametrize('last, started, ok', [
    (None, 1000.0, True),      # just started, never ran yet
    (None, 0.0, False),        # started long ago and never finished
    (900.0, 0.0, True),        # finished 100 s ago, interval 60
    (700.0, 0.0, False),       # 300 s ago: over three intervals
])
def test_a_periodic_task_is_late_after_three_intervals(last, started, ok):
    checks = health.periodic_check(
        {'sync': last} if last else {}, {'sync': 60, 'off': -1},
        started_at=started, now=1000.0)
    assert checks['sync']['ok'] is ok
    # A task turned off is never late.
    assert checks['off']['ok'] is True


def _status(database, rpc_serving=True, coordination=None,
            late=False):
    return health.check(
        host='h', cluster=None, rpc_serving=rpc_serving,
        coordination=coordination or _coordination(False),
        last_runs={} if late else {'sync': 1000.0},
        intervals={'sync': 60}, started_at=0.0, now=1000.0)['status']


def test_status_is_failed_degraded_or_ok(database):
    assert _status(database) == health.OK
    assert _status(database, rpc_serving=False) == health.FAILED
    assert _status(database, late=True) == health.FAILED
    # Coordination away: claims go on, work sharing waits.
    assert _status(database, coordination=_coordination(
        True, degraded=True)) == health.DEGRADED
    assert _status(database, coordination=_coordination(
        True, degraded=False)) == health.OK


@pytest.fixture
def served_config(tmp_path, database, simulator, transport_url):
    """A manager serving RPC in this process on a config of its own (a
    console script run in this process parses the global one); yields
    the config file's path for the CLI."""
    path = tmp_path / 'health.conf'
    path.write_text(service_config(simulator, transport_url,
                                   host='health-test', target=1,
                                   database=database))
    with serving(own_conf(path)):
        yield str(path)


@pytest.mark.recollect
def test_status_health_cli_exits_by_the_manager_health(served_config,
                                                       console):
    def health_cli(*args):
        return console('volume-pool-status', '--config-file', served_config,
                       'health', *args)
    result = health_cli()
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[0] == (
        'Manager health-test (cluster -): ok')
    result = health_cli('--json')
    assert result.returncode == 0
    assert json.loads(result.stdout)['status'] == 'ok'
    result = health_cli('--host', 'nobody-here', '--timeout', '1')
    assert result.returncode == 1
    assert 'nobody-here did not answer within 1 s' in result.stdout


@pytest.mark.parametrize('transport, needle', [
    ('', 'transport_url is not set'),
    ('transport_url = foo://x\n', '[DEFAULT] transport_url'),
])
def test_status_health_without_a_usable_transport_is_one_line(
        tmp_path, console, transport, needle):
    path = tmp_path / 'no-rpc.conf'
    path.write_text('[DEFAULT]\nhost = h\n%s' % transport)
    result = console('volume-pool-status', '--config-file', str(path),
                     'health')
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert result.stdout == ''
