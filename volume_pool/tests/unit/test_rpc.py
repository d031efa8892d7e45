"""claim() and pool_status() through volume_pool.rpcapi, over oslo.messaging:
the in-process fake driver and a real RabbitMQ (a vhost of our own)."""

import time

import pytest

from volume_pool import context as vp_context
from volume_pool import exception
from volume_pool import rpcapi
from volume_pool.fixtures import waiting

# The functional layer runs these again on the real services.
pytestmark = pytest.mark.recollect


def test_claim_over_rpc_returns_the_contract_fields(running_service,
                                                    simulator):
    api = rpcapi.VolumePoolAPI(timeout=30)
    ctxt = vp_context.RequestContext(request_id='req-abc')
    status = waiting.pool_ready(api, None, 2, ctxt=ctxt, timeout=20,
                                interval=0.05)
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
    waiting.pool_ready(api, None, 1, ctxt=ctxt, timeout=20,
                       interval=0.05)
    assert api.claim(ctxt, 'debian')['source'] == 'pool'


def test_refill_over_rpc_queues_the_deficit(running_service, simulator):
    api = rpcapi.VolumePoolAPI(timeout=30)
    ctxt = vp_context.RequestContext()
    waiting.pool_ready(api, None, 2, ctxt=ctxt, timeout=20,
                       interval=0.05)
    api.claim(ctxt, 'debian')
    assert api.refill(ctxt, 'debian') == 1  # the claimed one, queued now
    waiting.pool_ready(api, None, 2, ctxt=ctxt, timeout=20,
                       interval=0.05)
    with pytest.raises(exception.PoolNotFound):
        api.refill(ctxt, 'no-such-pool')


# Methods of the manager that are not the API: none may be reached over
# RPC, whatever the arguments.
INTERNALS = ['sync', 'replenish', 'run_periodic_tasks', 'refresh_membership',
             'drain', 'init_host', 'heartbeat', 'reset', 'cleanup_host',
             'prepare_for_shutdown', '_spec', 'health', 'ping']


@pytest.mark.parametrize('method', INTERNALS)
def test_only_the_api_is_reachable_over_rpc(running_service, method):
    api = rpcapi.VolumePoolAPI(timeout=10)
    ctxt = vp_context.RequestContext()
    cctxt = api.client.prepare(version='1.0')
    with pytest.raises(Exception) as caught:
        cctxt.call(ctxt, method)
    assert 'NoSuchMethod' in repr(caught.value), repr(caught.value)
    # The API itself is there.
    assert api.pool_status(ctxt)[0]['name'] == 'debian'


def test_errors_quote_only_a_prefix_of_the_input(running_service):
    api = rpcapi.VolumePoolAPI(timeout=10)
    ctxt = vp_context.RequestContext()
    huge = 'x' * (1024 * 1024)
    cctxt = api.client.prepare(version='1.0')
    with pytest.raises(exception.InvalidClaimRequest) as caught:
        cctxt.call(ctxt, 'claim', snapshot_type=huge)
    assert len(exception.first_line(caught.value)) < 300
    for bad in ('deb\x00ian', 'line\nbreak'):
        with pytest.raises(exception.InvalidClaimRequest):
            cctxt.call(ctxt, 'claim', snapshot_type='debian', name=bad)
    assert len(running_service.manager.specs) == 1
