"""claim() and pool_status() through volume_pool.rpcapi, over oslo.messaging:
the in-process fake driver and a real RabbitMQ (a vhost of our own)."""

import time

import pytest

from volume_pool import context as vp_context
from volume_pool import exception
from volume_pool import rpcapi


def _wait_ready(api, ctxt, count, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = api.pool_status(ctxt)
        if status and status[0]['ready'] >= count:
            return status
        time.sleep(0.1)
    raise AssertionError('pool did not fill')


def test_claim_over_rpc_returns_the_contract_fields(running_service,
                                                    simulator):
    api = rpcapi.VolumePoolAPI(timeout=30)
    ctxt = vp_context.RequestContext(request_id='req-abc')
    status = _wait_ready(api, ctxt, 2)
    assert status[0]['name'] == 'debian'
    result = api.claim(ctxt, 'debian', name='vnf-7-root')
    assert set(result) >= {'volume_id', 'name', 'snapshot_type',
                           'snapshot_id', 'size', 'status', 'cluster',
                           'source'}
    assert (result['source'], result['name'], result['status']) == (
        'pool', 'vnf-7-root', 'available')
    assert simulator.get_volume(result['volume_id'])['name'] == 'vnf-7-root'


def test_errors_cross_the_wire_typed(running_service):
    api = rpcapi.VolumePoolAPI(timeout=30)
    ctxt = vp_context.RequestContext()
    with pytest.raises(exception.PoolNotFound):
        api.claim(ctxt, 'no-such-pool')
    # A caller that skips the client's own checks gets the server's.
    raw = api.client.prepare(version='1.0')
    with pytest.raises(exception.InvalidClaimRequest):
        raw.call(ctxt, 'claim', snapshot_type='debian',
                 create_on_miss='maybe')
    with pytest.raises(exception.InvalidClaimRequest):
        api.claim(ctxt, '')  # refused before it is sent


def test_usable_hosts_and_fast_failure_for_a_dead_cluster(running_service):
    api = rpcapi.VolumePoolAPI(timeout=30)
    ctxt = vp_context.RequestContext()
    assert api.get_usable_hosts(ctxt) == ['rpc-test']
    started = time.monotonic()
    with pytest.raises(exception.NoLiveManager):
        api.claim(ctxt, 'debian', cluster='north')
    assert time.monotonic() - started < 5


def test_a_1_0_client_still_works(running_service):
    """A controller pinned to 1.0 (rolling upgrade) claims as before."""
    api = rpcapi.VolumePoolAPI(timeout=30, version_cap='1.0')
    ctxt = vp_context.RequestContext()
    _wait_ready(api, ctxt, 1)
    assert api.claim(ctxt, 'debian')['source'] == 'pool'


def test_refill_over_rpc_queues_the_deficit(running_service, simulator):
    api = rpcapi.VolumePoolAPI(timeout=30)
    ctxt = vp_context.RequestContext()
    _wait_ready(api, ctxt, 2)
    api.claim(ctxt, 'debian')
    assert api.refill(ctxt, 'debian') == 1  # the claimed one, queued now
    _wait_ready(api, ctxt, 2)
    with pytest.raises(exception.PoolNotFound):
        api.refill(ctxt, 'no-such-pool')
