"""A caller that gives up leaves nothing behind, over oslo.messaging (the
in-process fake driver) against the whole service on the Cinder
simulator: the client releases the key it gave up on, and a manager
does not start a claim whose caller's time ran out while it waited."""

import time

import pytest

from volume_pool import arrival
from volume_pool import cinder as vp_cinder
from volume_pool import context as vp_context
from volume_pool import exception
from volume_pool import rpc
from volume_pool import rpcapi
from volume_pool import service
from volume_pool.db import api as db_api
from volume_pool.db import models
from volume_pool.tests.conftest import service_config
from volume_pool.tests.unit.claim_checks import POST
from volume_pool.tests.unit.claim_checks import PUT
from volume_pool.tests.unit.claim_checks import receipt
from volume_pool.tests.unit.manager_steps import counts
from volume_pool.tests.unit.manager_steps import spy
from volume_pool.tests.unit.manager_steps import wait_for

TARGET = 2  # service_config's pool


@pytest.fixture
def ctxt():
    return vp_context.RequestContext(request_id='req-give-up')


def _nothing_left_behind(simulator):
    """Every volume Cinder holds is a pool volume with a row, and no row
    is held (a surplus being deleted is fine)."""
    rows = {r.volume_id: r for r in db_api.get_rows(None)}
    return all(v['metadata'].get(vp_cinder.TAG_POOL) == 'debian' and
               v['id'] in rows for v in simulator.list_volumes()) and \
        all(r.status in (models.AVAILABLE, models.CREATING,
                         models.DELETING)
            for r in rows.values())


def test_a_client_out_of_time_releases_its_key_and_nothing_is_left(
        write_config, database, simulator, conf, transport_url, ctxt):
    write_config(service_config(simulator, transport_url, target=TARGET))
    rpc.init(conf)
    try:
        api = rpcapi.VolumePoolAPI(timeout=30)
        api.MIN_ATTEMPT_SECONDS = 0.2
        api.GIVE_UP_RELEASE_TIMEOUT = 0.3
        sent = spy(api)
        # No manager listens yet: every message waits in the queue.
        with pytest.raises(rpcapi.ClaimTimedOut) as caught:
            api.claim(ctxt, 'debian', name='vnf-gone', claim_key='gone',
                      timeout=0.6)
        assert caught.value.claim_key == 'gone'
        # The claim's attempts, then the release of its key, within the
        # release's own short time; unanswered, the release is left queued
        # as a cast, which the broker never expires.
        methods = [entry['method'] for entry in sent]
        first_release = methods.index('release')
        assert set(methods[:first_release]) == {'claim'}
        releases = sent[first_release:]
        assert {entry['method'] for entry in releases} == {'release'}
        assert all(entry['kwargs'] == {'claim_key': 'gone', 'cluster': None}
                   for entry in releases)
        calls, queued = releases[:-1], releases[-1]
        assert not any(entry.get('cast') for entry in calls)
        assert sum(entry['timeout'] for entry in calls) <= 0.3 + 0.01
        assert (queued.get('cast'), queued['timeout']) == (True, None)
        # A manager comes and finds the claims and the release queued.
        server = service.Service(conf)
        server.start()
        try:
            wait_for(lambda: (receipt('gone') is not None and
                              receipt('gone').state == models.R_RELEASED and
                              _nothing_left_behind(simulator)),
                     timeout=20, what='the claim given up, released')
            with pytest.raises(exception.ClaimReleased):
                api.claim(ctxt, 'debian', name='vnf-gone', claim_key='gone',
                          timeout=10)
            assert receipt('gone').state == models.R_RELEASED
            # A refill may be under way (a volume Cinder made, its row not
            # yet bound to it): wait for it rather than read it half done.
            wait_for(lambda: _nothing_left_behind(simulator), timeout=20,
                     what='nothing left behind after the refused retry')
        finally:
            server.stop()
    finally:
        rpc.cleanup()


def test_a_claim_picked_up_after_its_budget_is_gone_starts_nothing(
        running_service, simulator, ctxt, monkeypatch):
    api = rpcapi.VolumePoolAPI(timeout=30)
    sent = spy(api)
    wait_for(lambda: counts() == {models.AVAILABLE: TARGET}, timeout=20,
             what='the pool full')
    simulator.reset_counts()
    # Every call reaches the manager's process 100 s before a worker
    # picks it up: longer than the caller waits.
    monkeypatch.setattr(arrival, 'arrival_clock',
                        lambda: time.monotonic() - 100.0)
    started = time.monotonic()
    with pytest.raises(rpcapi.ClaimTimedOut) as caught:
        api.claim(ctxt, 'debian', name='vnf-stale', claim_key='stale',
                  timeout=30)
    # Refused at once, not after the caller's 30 s (a loaded machine
    # may still take seconds to answer).
    assert time.monotonic() - started < 25
    assert caught.value.claim_key == 'stale'
    claims = [entry for entry in sent if entry['method'] == 'claim']
    assert len(claims) == 1
    assert isinstance(claims[0]['outcome'], exception.ClaimTimedOut)
    # Nothing started: no row held, no Cinder request, no volume out.
    assert counts() == {models.AVAILABLE: TARGET}
    assert simulator.request_counts.get(PUT, 0) == 0
    assert simulator.request_counts.get(POST, 0) == 0
    # The client's own release is recorded: the key stays spent.
    recorded = receipt('stale')
    assert (recorded.state, recorded.volume_id) == (models.R_RELEASED, None)
