"""Prometheus metrics and the HTTP listener of a manager: counters moved
by claims, the pool gauges read from the table at scrape time, and
/metrics, /healthcheck and anything else over real HTTP."""

import json
import os
import re
import urllib.error
import urllib.request

import pytest

from volume_pool import context as vp_context
from volume_pool import exception
from volume_pool import metrics
from volume_pool import metrics_server
from volume_pool.tests.unit.manager_steps import call
from volume_pool.tests.unit.manager_steps import fill
from volume_pool.tests.unit.manager_steps import started


def _sample(name, **labels):
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_claims_move_the_counters_and_the_histogram(make_manager):
    mgr = make_manager({'debian': 2})
    fill(mgr)
    hits = _sample('volume_pool_claims_total', cluster='', pool='debian',
                   outcome='pool')
    refused = _sample('volume_pool_claims_total', cluster='',
                      pool='debian', outcome='refused')
    timed = _sample('volume_pool_claim_duration_seconds_count', cluster='')
    call(mgr.claim, 'debian')
    call(mgr.claim, 'debian')
    with pytest.raises(exception.PoolEmpty):
        call(mgr.claim, 'debian', create_on_miss=False)
    assert _sample('volume_pool_claims_total', cluster='', pool='debian',
                   outcome='pool') == hits + 2
    # The caller's choice (no create on a miss) is no service error.
    assert _sample('volume_pool_claims_total', cluster='', pool='debian',
                   outcome='refused') == refused + 1
    # Failures are counted, not timed.
    assert _sample('volume_pool_claim_duration_seconds_count',
                   cluster='') == timed + 2


def _collector(mgr, owns=lambda pool: True):
    ctxt = vp_context.get_admin_context()
    return metrics.PoolCollector(status=lambda: mgr.pool_status(ctxt),
                                 ownership=lambda: owns,
                                 health=mgr.health)


def _families(collector):
    return {family.name: {tuple(s.labels.values()): s.value
                          for s in family.samples}
            for family in collector.collect()}


def test_pool_gauges_come_from_the_table_for_owned_pools(make_manager):
    mgr = make_manager({'debian': 3, 'ubuntu': 1})
    fill(mgr, 'debian')
    fill(mgr, 'ubuntu')
    call(mgr.claim, 'debian')
    families = _families(_collector(mgr))
    volumes = families['volume_pool_volumes']
    assert volumes[('', 'debian', 'ready')] == 2
    assert volumes[('', 'ubuntu', 'ready')] == 1
    assert families['volume_pool_target'][('', 'debian')] == 3
    assert families['volume_pool_backoff'][('', 'debian')] == 0
    assert families['volume_pool_database_up'][()] == 1
    # A pool another manager owns is that manager's to export.
    families = _families(_collector(mgr, owns=lambda pool: pool == 'ubuntu'))
    assert {labels[1] for labels in families['volume_pool_volumes']} == {
        'ubuntu'}


def test_a_pool_awaits_its_first_sync_until_one_reconciles_it(make_manager):
    mgr = make_manager({'debian': 2, 'ubuntu': 1})
    awaiting = _families(_collector(mgr))['volume_pool_awaiting_sync']
    assert awaiting == {('', 'debian'): 1, ('', 'ubuntu'): 1}
    started(mgr)
    awaiting = _families(_collector(mgr))['volume_pool_awaiting_sync']
    assert awaiting == {('', 'debian'): 0, ('', 'ubuntu'): 0}
    # Claims and refills after it change nothing.
    fill(mgr)
    call(mgr.claim, 'debian')
    awaiting = _families(_collector(mgr))['volume_pool_awaiting_sync']
    assert awaiting == {('', 'debian'): 0, ('', 'ubuntu'): 0}


def _get(url):
    try:
        # A loopback http:// URL built here.
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310
            return answer.status, answer.read().decode('utf-8')
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode('utf-8')


def test_listener_serves_metrics_health_and_nothing_else(make_manager):
    mgr = make_manager({'debian': 2})
    fill(mgr)
    mgr.rpc_serving = True
    server = metrics_server.MetricsServer('127.0.0.1', 0, mgr,
                                          vp_context.get_admin_context())
    server.start()
    base = 'http://127.0.0.1:%d' % server.port
    try:
        status, text = _get(base + '/metrics')
        assert status == 200
        assert ('volume_pool_volumes{cluster="",pool="debian",'
                'state="ready"} 2.0') in text
        assert 'process_resident_memory_bytes' in text
        assert _get(base + '/healthcheck') == (200, 'ok')
        # Not serving RPC: failed, and the probe says so with a 503.
        mgr.rpc_serving = False
        assert _get(base + '/healthcheck') == (503, 'failed: rpc')
        assert _get(base + '/other')[0] == 404
    finally:
        server.stop()
    with pytest.raises(urllib.error.URLError):
        _get(base + '/metrics')
    # The pool gauges left the registry with the listener.
    assert metrics.REGISTRY.get_sample_value(
        'volume_pool_volumes',
        {'cluster': '', 'pool': 'debian', 'state': 'ready'}) is None


def test_dashboard_queries_only_metrics_the_manager_exports(make_manager):
    mgr = make_manager({'debian': 1})
    fill(mgr)
    mgr.rpc_serving = True
    call(mgr.claim, 'debian')
    server = metrics_server.MetricsServer('127.0.0.1', 0, mgr,
                                          vp_context.get_admin_context())
    server.start()
    try:
        _status, text = _get('http://127.0.0.1:%d/metrics' % server.port)
    finally:
        server.stop()
    exported = {line.split('{')[0].split(' ')[0]
                for line in text.splitlines() if not line.startswith('#')}
    # Families with no sample yet are declared by their HELP line.
    exported |= {line.split()[2] + suffix
                 for line in text.splitlines() if line.startswith('# HELP')
                 for suffix in ('', '_total', '_bucket')}
    path = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'etc',
                        'grafana', 'volume-pool-dashboard.json')
    with open(path) as source:
        dashboard = json.load(source)
    queried = {name for panel in dashboard['panels']
               for target in panel['targets']
               for name in re.findall(r'\b((?:volume_pool|process)_\w+)',
                                      target['expr'])}
    assert len(queried) >= 10
    assert queried <= exported, sorted(queried - exported)


def test_a_scrape_answers_when_the_table_fails_after_the_check(make_manager):
    mgr = make_manager({'debian': 1})

    def status():
        raise exception.DatabaseUnavailable(reason='OperationalError')
    collector = metrics.PoolCollector(status=status,
                                      ownership=lambda: lambda p: True,
                                      health=mgr.health)
    families = _families(collector)
    assert 'volume_pool_volumes' not in families
    assert families['volume_pool_database_up'][()] == 1
