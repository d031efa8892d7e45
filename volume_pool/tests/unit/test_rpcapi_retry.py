"""The 1.4 client's retries with the same key, over oslo.messaging (the
in-process fake driver and a RabbitMQ vhost of our own), against the whole
service on the Cinder simulator."""

import time

import oslo_messaging as messaging
import pytest
import sqlalchemy as sa

from volume_pool import cinder as vp_cinder
from volume_pool import context as vp_context
from volume_pool import exception
from volume_pool import rpcapi
from volume_pool.db import api as db_api
from volume_pool.db import models
from volume_pool.db import receipts as db_receipts
from volume_pool.fixtures import waiting
from volume_pool.tests.unit.claim_checks import lease_tags
from volume_pool.tests.unit.manager_steps import spy

# The functional layer runs these again on the real services.
pytestmark = pytest.mark.recollect

ONE_VOLUME = r'^/volumes/[0-9a-f]{8}-[0-9a-f-]+$'
PUT = ('PUT', '/volumes/{id}')
TARGET = 2  # the running_service fixture's pool


def counts():
    result = {}
    for by_status in db_api.count_by_pool(None).get('debian', {}).values():
        for status, count in by_status.items():
            result[status] = result.get(status, 0) + count
    return result


def rows_by_volume():
    return {r.volume_id: r for r in db_api.get_rows(None)}


def all_receipts():
    with db_api.reader() as session:
        return list(session.execute(
            sa.select(models.ClaimReceipt)).scalars())


def tagged(simulator):
    return [v for v in simulator.list_volumes()
            if v['metadata'].get(vp_cinder.TAG_POOL) == 'debian']


def wait_full():
    waiting.wait_for(lambda: counts() == {models.AVAILABLE: TARGET},
                     timeout=20, what='the pool full')


def assert_in_pool(simulator, volume_id):
    row = rows_by_volume()[volume_id]
    assert (row.status, row.claim_id) == (models.AVAILABLE, None)
    volume = simulator.get_volume(volume_id)
    assert volume['name'] == row.name
    assert volume['metadata'].get(vp_cinder.TAG_POOL) == 'debian'
    assert vp_cinder.TAG_LEASE not in volume['metadata']


def pool_intact(simulator):
    """Every volume of the pool is back: rows available, tags on."""
    if counts() != {models.AVAILABLE: TARGET}:
        return False
    volumes = tagged(simulator)
    return (len(volumes) == TARGET and
            {v['id'] for v in volumes} == set(rows_by_volume()) and
            all(vp_cinder.TAG_LEASE not in v['metadata'] and
                v['name'] == rows_by_volume()[v['id']].name
                for v in volumes))


@pytest.fixture
def ctxt():
    return vp_context.RequestContext(request_id='req-retry')


# -- retries with the same key ----------------------------------------------


def test_late_answer_is_retried_with_the_same_key_and_one_volume_leaves(
        running_service, simulator, ctxt):
    api = rpcapi.VolumePoolAPI(timeout=30)
    api.MIN_ATTEMPT_SECONDS = 1.0
    sent = spy(api)
    wait_full()
    simulator.reset_counts()
    # The rename takes 3.5 s: longer than the first attempt (2.5 s, half
    # of the 5 s), shorter than the claim may run (5 s less the margin).
    simulator.inject_fault(status=None, delay=3.5, method='PUT',
                           path=ONE_VOLUME, count=1)
    started = time.monotonic()
    result = api.claim(ctxt, 'debian', name='vnf-retry', timeout=5)
    assert time.monotonic() - started < 5.5
    claims = [entry for entry in sent if entry['method'] == 'claim']
    assert len(claims) >= 2
    assert isinstance(claims[0]['outcome'], messaging.MessagingTimeout)
    assert claims[0]['timeout'] == pytest.approx(2.5, abs=0.1)
    # One key, made by the client, on every attempt; less time each time.
    keys = {entry['kwargs']['claim_key'] for entry in claims}
    assert keys == {result['claim_key']}
    assert all(entry['version'] == '1.4' for entry in claims)
    lefts = [entry['kwargs']['time_left'] for entry in claims]
    assert lefts == sorted(lefts, reverse=True) and lefts[0] <= 5
    assert claims[-1]['outcome'] == result
    # One volume left the pool: renamed once, the caller's at once (the
    # key was the client's own: no lease).
    assert simulator.request_counts[PUT] == 1
    assert all(entry['kwargs']['lease'] is False for entry in claims)
    assert result['lease_expires_at'] is None
    volume = simulator.get_volume(result['volume_id'])
    assert (volume['name'], volume['metadata']) == ('vnf-retry', {})
    assert counts() == {models.AVAILABLE: TARGET - 1}
    assert result['volume_id'] not in rows_by_volume()
    assert len(tagged(simulator)) == TARGET - 1
    [held] = all_receipts()
    assert (held.claim_key, held.state, held.volume_id) == (
        result['claim_key'], models.R_USED, result['volume_id'])
    # Asking again later still gives the same answer.
    again = api.claim(ctxt, 'debian', name='vnf-retry',
                      claim_key=result['claim_key'], timeout=5)
    assert again == result


def test_claim_out_of_time_raises_claim_timed_out_with_its_key(
        running_service, simulator, ctxt):
    api = rpcapi.VolumePoolAPI(timeout=30)
    api.MIN_ATTEMPT_SECONDS = 0.5
    sent = spy(api)
    wait_full()
    # The rename lands long after the caller's 2 s: the manager must undo
    # the claim, never finish it.
    simulator.inject_fault(status=None, delay=3.5, method='PUT',
                           path=ONE_VOLUME, count=1)
    started = time.monotonic()
    with pytest.raises(rpcapi.ClaimTimedOut) as caught:
        api.claim(ctxt, 'debian', name='vnf-late', claim_key='late-key',
                  timeout=2)
    elapsed = time.monotonic() - started
    assert 1.9 < elapsed < 3.0 + api.GIVE_UP_RELEASE_TIMEOUT
    error = caught.value
    assert isinstance(error, messaging.MessagingTimeout)
    assert isinstance(error, exception.ClaimTimedOut)
    assert error.claim_key == 'late-key'
    assert 'late-key' in str(error)
    claims = [entry for entry in sent if entry['method'] == 'claim']
    assert len(claims) >= 2  # it did ask again
    assert {entry['kwargs']['claim_key'] for entry in claims} == {
        'late-key'}
    assert all(isinstance(entry['outcome'], (
        messaging.MessagingTimeout, exception.ClaimInProgress))
        for entry in claims)
    # The client released the key it gave up on; the manager undoes the
    # claim once the late rename is back: nothing left the pool.
    assert [entry['method'] for entry in sent][-1] == 'release'
    waiting.wait_for(lambda: pool_intact(simulator), timeout=10,
                     what='the undone claim back in the pool')
    assert db_receipts.get(None, '', 'late-key').state == models.R_RELEASED
    # The key is spent: a claim that comes late with it takes nothing.
    with pytest.raises(exception.ClaimReleased):
        api.claim(ctxt, 'debian', name='vnf-late', claim_key='late-key',
                  timeout=10)
    assert counts() == {models.AVAILABLE: TARGET}


def test_client_with_no_timeout_uses_rpc_response_timeout(
        running_service, simulator, ctxt):
    api = rpcapi.VolumePoolAPI()
    sent = spy(api)
    wait_full()
    result = api.claim(ctxt, 'debian', name='vnf-default')
    [entry] = sent
    # rpc_response_timeout (60 s): the first attempt waits half of it.
    assert entry['kwargs']['time_left'] == pytest.approx(60, abs=1)
    assert entry['timeout'] == pytest.approx(30, abs=1)
    assert result['claim_key'] == entry['kwargs']['claim_key']
    # Recorded once the answer is out.
    waiting.wait_for(
        lambda: db_receipts.get(None, '', result['claim_key']).state ==
        models.R_USED, timeout=10, what='the claim recorded used')


# -- rolling upgrade: version_cap -------------------------------------------


def test_version_cap_1_3_sends_a_1_0_call_without_a_key(running_service,
                                                        simulator, ctxt):
    api = rpcapi.VolumePoolAPI(timeout=30, version_cap='1.3')
    sent = spy(api)
    wait_full()
    result = api.claim(ctxt, 'debian', name='vnf-old')
    [entry] = sent
    assert entry['version'] == '1.0'
    assert 'claim_key' not in entry['kwargs']
    assert 'time_left' not in entry['kwargs']
    assert 'claim_key' not in result
    assert 'lease_expires_at' not in result
    assert simulator.get_volume(result['volume_id'])['metadata'] == {}
    [used] = all_receipts()
    assert (used.claim_key, used.state) == (None, models.R_USED)
    before = (counts(), sorted(v['id'] for v in simulator.list_volumes()))
    with pytest.raises(exception.ClaimKeyUnsupported):
        api.claim(ctxt, 'debian', name='vnf-old', claim_key='k-old')
    assert len(sent) == 1  # refused before anything was sent
    assert (counts(), sorted(v['id'] for v in simulator.list_volumes())) \
        == before
    assert db_receipts.get(None, '', 'k-old') is None


def test_version_cap_1_3_refuses_confirm_and_release_before_sending(
        running_service, ctxt):
    api = rpcapi.VolumePoolAPI(timeout=30, version_cap='1.3')
    wait_full()
    sent = spy(api)
    for method in (api.confirm, api.release):
        with pytest.raises((exception.ClaimKeyUnsupported,
                            messaging.RPCVersionCapError)):
            method(ctxt, 'some-key', timeout=2)
    assert all(isinstance(entry['outcome'], messaging.RPCVersionCapError)
               for entry in sent)
    assert counts() == {models.AVAILABLE: TARGET}


# -- confirm and release over RPC ---------------------------------------------


def test_confirm_over_rpc_ends_the_lease(running_service, simulator, ctxt):
    api = rpcapi.VolumePoolAPI(timeout=30)
    wait_full()
    result = api.claim(ctxt, 'debian', name='vnf-c', claim_key='c-1')
    assert simulator.get_volume(result['volume_id'])['metadata'] == \
        lease_tags()
    view = api.confirm(ctxt, 'c-1')
    assert (view['state'], view['claim_key'], view['volume_id'],
            view['lease_expires_at']) == (models.R_USED, 'c-1',
                                          result['volume_id'], None)
    assert simulator.get_volume(result['volume_id'])['metadata'] == {}
    assert api.confirm(ctxt, 'c-1')['state'] == models.R_USED
    assert api.claim(ctxt, 'debian', name='vnf-c', claim_key='c-1') == result
    with pytest.raises(exception.ClaimNotFound) as caught:
        api.confirm(ctxt, 'nobody')
    assert caught.value.claim_key == 'nobody'


def test_release_over_rpc_gives_the_volume_back_typed_errors(
        running_service, simulator, ctxt):
    api = rpcapi.VolumePoolAPI(timeout=30)
    wait_full()
    result = api.claim(ctxt, 'debian', name='vnf-r', claim_key='r-1')
    view = api.release(ctxt, 'r-1')
    assert (view['state'], view['volume_id']) == (models.R_RELEASED,
                                                  result['volume_id'])
    assert_in_pool(simulator, result['volume_id'])
    assert counts() == {models.AVAILABLE: TARGET}
    assert api.release(ctxt, 'r-1')['state'] == models.R_RELEASED
    with pytest.raises(exception.ClaimReleased) as caught:
        api.claim(ctxt, 'debian', name='vnf-r', claim_key='r-1')
    assert caught.value.claim_key == 'r-1'
    with pytest.raises(exception.ClaimKeyConflict):
        api.claim(ctxt, 'debian', name='vnf-other', claim_key='r-1')
    recorded = api.release(ctxt, 'nobody')  # before any claim: recorded
    assert (recorded['state'], recorded['volume_id']) == (
        models.R_RELEASED, None)
    # Attached: the caller's for good.
    used = api.claim(ctxt, 'debian', name='vnf-a', claim_key='a-1')
    simulator.attach_volume(used['volume_id'])
    with pytest.raises(exception.ClaimNotReleasable) as caught:
        api.release(ctxt, 'a-1')
    assert caught.value.claim_key == 'a-1'
    assert db_receipts.get(None, '', 'a-1').state == models.R_USED
    assert used['volume_id'] not in rows_by_volume()
    assert simulator.get_volume(used['volume_id'])['name'] == 'vnf-a'
    assert counts() == {models.AVAILABLE: TARGET - 1}
