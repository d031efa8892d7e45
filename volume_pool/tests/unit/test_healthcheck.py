"""oslo.middleware's health check on the manager's listener, over real
HTTP: GET and HEAD follow the manager's health record, details only in
detailed mode, oslo.middleware's own backends beside the manager's, and
the backend's entry point and options where operators look for them."""

import configparser
import contextlib
import json
import os
import time
import urllib.error
import urllib.request

from oslo_middleware.healthcheck import pluginbase
import pytest

import volume_pool
from volume_pool import context as vp_context
from volume_pool import healthcheck
from volume_pool import metrics_server

TOP = os.path.dirname(os.path.dirname(volume_pool.__file__))


@contextlib.contextmanager
def _listener(mgr, conf):
    server = metrics_server.MetricsServer(
        '127.0.0.1', 0, mgr, vp_context.get_admin_context(), conf=conf)
    server.start()
    try:
        yield 'http://127.0.0.1:%d/healthcheck' % server.port
    finally:
        server.stop()


def _request(url, method='GET', accept='application/json'):
    """``(status, content type, body)``."""
    # A loopback http:// URL built here.
    request = urllib.request.Request(  # noqa: S310
        url, method=method, headers={'Accept': accept})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            return (answer.status, answer.headers.get_content_type(),
                    answer.read().decode('utf-8'))
    except urllib.error.HTTPError as error:
        return (error.code, error.headers.get_content_type(),
                error.read().decode('utf-8'))


def _get_json(url):
    status, content_type, body = _request(url)
    assert content_type == 'application/json'
    return status, json.loads(body)


@pytest.fixture
def serving_manager(make_manager):
    mgr = make_manager({'debian': 1})
    mgr.rpc_serving = True
    return mgr


def test_get_and_head_follow_the_manager_health(serving_manager, conf):
    with _listener(serving_manager, conf) as url:
        assert _get_json(url) == (200, {'detailed': False,
                                        'reasons': ['ok']})
        # HEAD: what load balancers send; no body, 204 when healthy.
        assert _request(url, 'HEAD') == (204, 'text/plain', '')
        assert _request(url, accept='text/plain') == (200, 'text/plain',
                                                      'ok')
        serving_manager.rpc_serving = False
        assert _get_json(url) == (503, {'detailed': False,
                                        'reasons': ['failed: rpc']})
        assert _request(url, 'HEAD')[0] == 503


def test_late_periodic_tasks_fail_the_check_by_name(serving_manager, conf):
    serving_manager.started_at = time.time() - 3600
    serving_manager.last_runs['sync'] = time.time()
    with _listener(serving_manager, conf) as url:
        assert _get_json(url) == (503, {
            'detailed': False, 'reasons': ['failed: periodic replenish']})


def test_details_only_when_the_operator_turns_them_on(serving_manager,
                                                      conf):
    with _listener(serving_manager, conf) as url:
        _status, body = _get_json(url)
        assert 'test-host' not in json.dumps(body)
    conf.set_override('detailed', True, group='healthcheck')
    with _listener(serving_manager, conf) as url:
        status, body = _get_json(url)
    assert (status, body['detailed']) == (200, True)
    [reason] = body['reasons']
    assert reason['reason'] == 'ok'
    record = json.loads(reason['details'])
    assert (record['host'], record['status']) == ('test-host', 'ok')
    assert record['checks']['database'] == {'ok': True}


def test_degraded_serves_and_says_which_check(conf):
    record = {'host': 'h', 'cluster': 'east', 'status': 'degraded',
              'checks': {'rpc': {'ok': True}, 'database': {'ok': True},
                         'coordination': {'ok': False,
                                          'backend': 'configured'},
                         'periodic': {}}}
    result = healthcheck.ManagerHealthcheck(
        conf, {}, lambda: record).healthcheck(9641)
    assert (result.available, result.reason) == (
        True, 'degraded: coordination')


def test_a_configured_oslo_backend_runs_beside_the_manager(
        serving_manager, conf, tmp_path):
    """disable_by_file takes a healthy manager out of a load balancer."""
    flag = tmp_path / 'drain'
    conf.set_override('backends', ['disable_by_file'], group='healthcheck')
    conf.set_override('disable_by_file_path', str(flag),
                      group='healthcheck')
    with _listener(serving_manager, conf) as url:
        assert _request(url, 'HEAD')[0] == 204
        flag.write_text('')
        assert _request(url, 'HEAD')[0] == 503
        status, body = _get_json(url)
        assert (status, body['reasons']) == (503, ['ok', 'DISABLED BY FILE'])


def test_the_backend_is_registered_for_oslo_middleware():
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(os.path.join(TOP, 'setup.cfg'))
    lines = parser['entry_points']['oslo.middleware.healthcheck']
    plugins = dict((part.strip() for part in line.split('=', 1))
                   for line in lines.strip().splitlines())
    assert plugins == {
        healthcheck.BACKEND_NAME: 'volume_pool.healthcheck:ManagerHealthcheck'}
    assert issubclass(healthcheck.ManagerHealthcheck,
                      pluginbase.HealthcheckBaseExtension)


def test_sample_config_shows_the_detailed_switch():
    path = os.path.join(TOP, 'etc', 'volume-pool', 'volume-pool.conf.sample')
    with open(path) as sample:
        section = sample.read().split('\n[healthcheck]\n', 1)[1]
    section = section.split('\n[', 1)[0]
    assert '#detailed = false\n' in section
    assert 'GET and HEAD' in section
