"""The shipped alert rules under Debian's Prometheus tools: promtool
checks them and runs their tests (each alert firing and staying quiet),
and a real Prometheus server on loopback scrapes a running manager,
evaluates every rule without error, and fires the alert for the
condition the test causes (Cinder refusing every create)."""

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
import uuid

import pytest
import yaml

import volume_pool
from volume_pool.fixtures import waiting
from volume_pool.tests import services
from volume_pool.tests.functional import engines

TOP = os.path.dirname(os.path.dirname(volume_pool.__file__))
RULES_DIR = os.path.join(TOP, 'etc', 'prometheus')
RULES = os.path.join(RULES_DIR, 'volume-pool-alerts.yaml')
RULE_TESTS = os.path.join(RULES_DIR, 'volume-pool-alerts-tests.yaml')


def _tool(name):
    path = shutil.which(name)
    if path is None:
        services.unavailable(name, 'install Debian\'s "prometheus" package')
    return path


def _alert_names():
    with open(RULES) as source:
        return [rule['alert'] for group in yaml.safe_load(source)['groups']
                for rule in group['rules']]


def test_promtool_checks_the_rules():
    result = subprocess.run([_tool('promtool'), 'check', 'rules', RULES],
                            capture_output=True, text=True, timeout=60,
                            check=False)
    print(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'SUCCESS: %d rules found' % len(_alert_names()) in result.stdout


def test_promtool_runs_the_tests_of_every_alert():
    result = subprocess.run([_tool('promtool'), 'test', 'rules', RULE_TESTS],
                            capture_output=True, text=True, timeout=120,
                            check=False, cwd=RULES_DIR)
    print(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'SUCCESS' in result.stdout


class PrometheusServer:
    """A Prometheus server of the test's own: loopback, a free port, a
    temporary storage, a scrape and an evaluation every second."""

    def __init__(self, workdir, targets):
        self.port = waiting.free_port()
        self._workdir = workdir
        config = {
            'global': {'scrape_interval': '1s',
                       'evaluation_interval': '1s'},
            'rule_files': [RULES],
            'scrape_configs': [{'job_name': 'volume-pool',
                                'static_configs': [{'targets': targets}]}],
        }
        self._config = os.path.join(workdir, 'prometheus.yml')
        with open(self._config, 'w') as out:
            yaml.safe_dump(config, out)
        self._process = None

    def start(self):
        log = open(os.path.join(self._workdir, 'prometheus.log'), 'w')  # noqa: SIM115
        self._process = subprocess.Popen(  # noqa: S603
            [_tool('prometheus'), '--config.file', self._config,
             '--storage.tsdb.path', os.path.join(self._workdir, 'data'),
             '--web.listen-address', '127.0.0.1:%d' % self.port],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        waiting.wait_for(lambda: self.api('status/runtimeinfo'),
                         timeout=60, interval=0.5, what='Prometheus up')
        return self

    def api(self, path):
        """The ``data`` of ``/api/v1/PATH``, or None while not answering."""
        url = 'http://127.0.0.1:%d/api/v1/%s' % (self.port, path)
        try:
            # A loopback http:// URL built here.
            with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310
                return json.load(answer)['data']
        except (urllib.error.URLError, OSError):
            return None

    def stop(self):
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=30)


@pytest.fixture
def prometheus(tmp_path):
    started = []

    def _start(targets):
        server = PrometheusServer(str(tmp_path), targets).start()
        started.append(server)
        return server
    yield _start
    for server in started:
        server.stop()


def _rules(server):
    data = server.api('rules') or {'groups': []}
    return {rule['name']: rule for group in data['groups']
            for rule in group['rules']}


def _alerts(server, name):
    data = server.api('alerts') or {'alerts': []}
    return [alert for alert in data['alerts']
            if alert['labels']['alertname'] == name]


@engines.ON_MARIADB
def test_prometheus_scrapes_a_manager_and_fires_an_alert(
        managers, cinder, snapshot, pool_name, prometheus):
    # A project whose quota is no volume: Cinder refuses every create.
    project = uuid.uuid4().hex
    cinder.client().quotas.update(project, volumes=0)
    port = waiting.free_port()
    managers([(pool_name, snapshot, 2)], project_id=project,
             extra='[volume_pool]\nbackoff_initial = 0.1\nbackoff_max = 1\n'
                   'max_consecutive_errors = 0\n[metrics]\nport = %d\n'
                   % port)
    server = prometheus(['127.0.0.1:%d' % port])
    waiting.wait_for(
        lambda: (server.api('targets') or {}).get('activeTargets') and
        server.api('targets')['activeTargets'][0]['health'] == 'up',
        timeout=60, interval=0.5, what='the manager scraped')

    names = _alert_names()
    rules = waiting.wait_for(
        lambda: (lambda r: set(r) == set(names) and all(
            rule['lastEvaluation'][:4] != '0001' for rule in r.values())
            and r)(_rules(server)),
        timeout=60, interval=0.5, what='every rule evaluated')
    health = {name: rule['health'] for name, rule in rules.items()}
    print('rule health: %s' % health)
    assert set(health.values()) == {'ok'}, health

    [alert] = waiting.wait_for(
        lambda: (lambda a: a and a[0]['state'] == 'firing' and a)(
            _alerts(server, 'VolumePoolCreateFailures')),
        timeout=120, interval=0.5, what='VolumePoolCreateFailures firing')
    print('firing: %s' % alert)
    assert alert['labels']['pool'] == pool_name
    assert alert['labels']['severity'] == 'warning'
    # No cluster name: the summary names the pool alone.
    assert alert['annotations']['summary'] == (
        'Cinder fails creates of pool %s' % pool_name)
    # The pool ran dry too; that alert waits its 10 minutes pending.
    [empty] = _alerts(server, 'VolumePoolEmpty')
    assert (empty['state'], empty['labels']['pool']) == ('pending',
                                                         pool_name)
    # The manager is up and healthy: those stay quiet.
    assert _alerts(server, 'VolumePoolManagerDown') == []
    assert _alerts(server, 'VolumePoolManagerUnhealthy') == []
