"""Claims without a key, the whole manager against the Cinder simulator
over real HTTP: a ready volume handed over once, a miss created or
refused, bad input refused typed, claims counted in pool_status, a claim
in flight waited for on stop."""

import concurrent.futures
import threading

import pytest

from volume_pool import cinder as vp_cinder
from volume_pool import exception
from volume_pool.db import api as db_api
from volume_pool.db import models
from volume_pool.tests.unit.manager_steps import call
from volume_pool.tests.unit.manager_steps import counts
from volume_pool.tests.unit.manager_steps import fill
from volume_pool.tests.unit.manager_steps import ready


def test_claim_hands_over_a_ready_volume(make_manager, simulator):
    mgr = make_manager({'debian': 2})
    fill(mgr)
    result = call(mgr.claim, 'debian', name='vnf-1-root')
    assert result['source'] == 'pool'
    assert result['status'] == 'available'
    assert result['name'] == 'vnf-1-root'
    assert result['snapshot_id'] == mgr.snapshots['debian']
    volume = simulator.get_volume(result['volume_id'])
    assert volume['name'] == 'vnf-1-root'
    assert vp_cinder.TAG_POOL not in volume['metadata']
    assert result['volume_id'] not in {
        r.volume_id for r in db_api.get_rows(None)}
    fill(mgr)  # the pool refills


def test_claim_on_miss_creates_or_fails_typed(make_manager, simulator):
    mgr = make_manager({'debian': 0})
    with pytest.raises(exception.PoolEmpty):
        call(mgr.claim, 'debian', create_on_miss=False)
    result = call(mgr.claim, 'debian', name='vnf-2')
    assert result['source'] == 'created'
    volume = simulator.get_volume(result['volume_id'])
    assert volume['name'] == 'vnf-2'
    assert vp_cinder.TAG_POOL not in volume['metadata']
    assert db_api.get_rows(None) == []


def test_50_concurrent_claims_get_distinct_volumes(make_manager, simulator):
    mgr = make_manager({'debian': {'target': 30, 'max_miss_creates': 20}},
                       create_concurrency=8)
    fill(mgr)
    barrier = threading.Barrier(50)

    def one(n):
        barrier.wait()
        return call(mgr.claim, 'debian', name='vnf-%d' % n)

    with concurrent.futures.ThreadPoolExecutor(50) as executor:
        results = list(executor.map(one, range(50)))
    ids = [r['volume_id'] for r in results]
    assert len(set(ids)) == 50
    sources = [r['source'] for r in results]
    assert sources.count('pool') == 30
    assert sources.count('created') == 20
    assert ready() == 0
    assert counts().get(models.CLAIMING, 0) == 0


@pytest.mark.parametrize('kwargs, error', [
    ({'snapshot_type': ''}, exception.InvalidClaimRequest),
    ({'snapshot_type': 42}, exception.InvalidClaimRequest),
    ({'snapshot_type': 'debian', 'name': 'x' * 256},
     exception.InvalidClaimRequest),
    ({'snapshot_type': 'debian', 'create_on_miss': 'yes'},
     exception.InvalidClaimRequest),
    ({'snapshot_type': 'debian', 'cluster': ''},
     exception.InvalidClaimRequest),
    ({'snapshot_type': 'debian', 'cluster': 'west'},
     exception.ClusterNotServed),
    ({'snapshot_type': 'nope'}, exception.PoolNotFound),
])
def test_bad_claim_input_is_typed_and_changes_nothing(
        make_manager, simulator, kwargs, error):
    mgr = make_manager({'debian': 2})
    fill(mgr)
    before = sorted((v['id'], v['name'], tuple(sorted(v['metadata'])))
                    for v in simulator.list_volumes())
    rows_before = sorted((r.id, r.status) for r in db_api.get_rows(None))
    with pytest.raises(error):
        call(mgr.claim, **kwargs)
    after = sorted((v['id'], v['name'], tuple(sorted(v['metadata'])))
                   for v in simulator.list_volumes())
    assert after == before
    assert sorted((r.id, r.status)
                  for r in db_api.get_rows(None)) == rows_before


def test_claim_reverts_when_cinder_fails(make_manager, simulator):
    mgr = make_manager({'debian': 1})
    fill(mgr)
    volume_id = db_api.get_rows(None)[0].volume_id
    simulator.inject_fault(status=500, method='PUT', path='^/volumes/',
                           count=1)
    with pytest.raises(exception.CinderUnavailable):
        call(mgr.claim, 'debian')
    row = db_api.get_rows(None)[0]
    assert (row.volume_id, row.status) == (volume_id, models.AVAILABLE)
    assert simulator.get_volume(volume_id)['metadata'][
        vp_cinder.TAG_POOL] == 'debian'
    assert call(mgr.claim, 'debian')['volume_id'] == volume_id


def test_claim_skips_a_volume_deleted_behind_the_pool(make_manager,
                                                      simulator):
    mgr = make_manager({'debian': 2})
    fill(mgr)
    first = db_api.get_rows(None)[0].volume_id
    simulator.remove_volume(first)
    result = call(mgr.claim, 'debian', create_on_miss=False)
    assert result['volume_id'] != first
    assert ready() == 0


def test_pool_status_reports_counts_and_claims(make_manager):
    mgr = make_manager({'debian': 2, 'windows': 0})
    fill(mgr)
    call(mgr.claim, 'debian')
    status = {p['name']: p for p in call(mgr.pool_status)}
    assert status['debian']['target'] == 2
    assert status['debian']['ready'] == 1
    assert status['debian']['claims']['hits'] == 1
    assert status['windows']['ready'] == 0
    with pytest.raises(exception.ClusterNotServed):
        call(mgr.pool_status, cluster='west')


def test_graceful_stop_waits_for_inflight_claims(make_manager, simulator):
    mgr = make_manager({'debian': 1})
    fill(mgr)
    rename = simulator.inject_fault(status=None, method='PUT',
                                    path='^/volumes/', hold=True)
    with concurrent.futures.ThreadPoolExecutor(1) as executor:
        inflight = executor.submit(call, mgr.claim, 'debian')
        rename.wait_arrived()  # the claim is in Cinder now
        mgr.prepare_for_shutdown()
        with pytest.raises(exception.ServiceShuttingDown):
            call(mgr.claim, 'debian')
        assert not mgr.drain(timeout=0.1)  # held by the claim in flight
        rename.release()
        assert mgr.drain(timeout=5)
        assert inflight.result(timeout=5)['source'] == 'pool'
    assert db_api.get_rows(None) == []
