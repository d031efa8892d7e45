"""The 1.4 client's own rules, on a local fake RPC client: when it asks
again with the same key, when it gives up, and what it tells the caller.
No service runs: each test scripts the answers the manager would give.
"""

import logging
import types

import oslo_messaging as messaging
import pytest

from volume_pool import exception
from volume_pool import rpcapi
from volume_pool import validation


class _FakeCall:
    def __init__(self, client, timeout):
        self._client = client
        self.timeout = timeout

    def call(self, ctxt, method, **kwargs):
        self._client.sent.append((method, self.timeout, dict(kwargs)))
        outcome = self._client.script.pop(0)
        if callable(outcome):
            outcome = outcome(kwargs)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


class _FakeClient:
    """What VolumePoolAPI uses of an oslo.messaging RPCClient."""

    def __init__(self, script, timeout=None):
        self.script = list(script)
        self.sent = []
        self.timeout = timeout
        self.version_cap = None

    def can_send_version(self, version):
        return True

    def prepare(self, version=None, server=None, timeout=None, **kwargs):
        return _FakeCall(self, timeout)


def _fake_api(monkeypatch, script, timeout=None):
    monkeypatch.setattr(rpcapi.rpc, 'get_client',
                        lambda *args, **kwargs: _FakeClient(script, timeout))
    return rpcapi.VolumePoolAPI()


def _as_the_manager(kwargs):
    """The manager's own check of the arguments, then a late answer; the
    client's release after its time-out is answered."""
    if 'time_left' not in kwargs:
        return {'claim_key': kwargs['claim_key'], 'state': 'released'}
    validation.check_time_left(kwargs['time_left'])
    return messaging.MessagingTimeout('late')


def test_client_asks_again_while_in_progress_then_answers(monkeypatch):
    answer = {'volume_id': 'v1', 'claim_key': 'k'}
    api = _fake_api(monkeypatch, [
        messaging.MessagingTimeout('late'),
        exception.ClaimInProgress(claim_key='k'),
        answer])
    api.IN_PROGRESS_PAUSE = 0.01
    assert api.claim(None, 'debian', claim_key='k', timeout=10) == answer
    sent = api.client.sent
    assert [method for method, _t, _k in sent] == ['claim'] * 3
    assert {kwargs['claim_key'] for _m, _t, kwargs in sent} == {'k'}
    assert sent[0][1] == pytest.approx(5.0, abs=0.1)  # half of 10 s


def test_client_asks_again_while_the_manager_stops_and_says_so(monkeypatch,
                                                                caplog):
    caplog.set_level(logging.INFO, logger=rpcapi.__name__)
    answer = {'volume_id': 'v1', 'claim_key': 'k'}
    api = _fake_api(monkeypatch, [
        exception.ServiceShuttingDown(host='mgr-1'), answer])
    api.IN_PROGRESS_PAUSE = 0.01
    assert api.claim(None, 'debian', claim_key='k', timeout=10) == answer
    assert len(api.client.sent) == 2
    assert ('claim k: asking again with the same key after: '
            'volume-pool-manager mgr-1 is shutting down.') in caplog.messages


def test_a_failed_membership_probe_is_logged_and_the_claim_goes_on(
        monkeypatch, caplog):
    answer = {'volume_id': 'v1', 'claim_key': 'k'}
    api = _fake_api(monkeypatch, [
        messaging.RemoteError('TypeError', 'a bug\nTraceback...'), answer])
    assert api.claim(None, 'debian', cluster='east', claim_key='k',
                     timeout=10) == answer
    assert [method for method, _t, _k in api.client.sent] == [
        'get_usable_hosts', 'claim']
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith(
        'Membership probe of cluster east failed, the claim goes on: '
        'Remote error: TypeError a bug')


_RELEASED = {'claim_key': 'k', 'state': 'released', 'volume_id': None}


def test_manager_timed_out_becomes_the_clients_claim_timed_out(monkeypatch):
    api = _fake_api(monkeypatch, [exception.ClaimTimedOut(claim_key='k'),
                                  _RELEASED])
    with pytest.raises(rpcapi.ClaimTimedOut) as caught:
        api.claim(None, 'debian', claim_key='k', timeout=10)
    assert isinstance(caught.value, messaging.MessagingTimeout)
    assert caught.value.claim_key == 'k'
    # The manager gave up: no retry; the client releases the key.
    assert [method for method, _t, _k in api.client.sent] == [
        'claim', 'release']
    _method, timeout, kwargs = api.client.sent[1]
    assert kwargs == {'claim_key': 'k', 'cluster': None}
    assert timeout <= api.GIVE_UP_RELEASE_TIMEOUT


def test_a_release_after_a_time_out_that_fails_is_logged_not_raised(
        monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger=rpcapi.__name__)
    api = _fake_api(monkeypatch, [exception.ClaimTimedOut(claim_key='k'),
                                  exception.ClaimNotFound(claim_key='k')])
    with pytest.raises(rpcapi.ClaimTimedOut):
        api.claim(None, 'debian', claim_key='k', timeout=10)
    assert 'claim k timed out; releasing its key failed' in caplog.text


def test_other_errors_are_not_retried(monkeypatch):
    api = _fake_api(monkeypatch, [exception.PoolEmpty(pool='debian')])
    with pytest.raises(exception.PoolEmpty):
        api.claim(None, 'debian', claim_key='k', timeout=10)
    assert len(api.client.sent) == 1


def test_last_instant_of_the_budget_is_never_an_invalid_request(
        monkeypatch):
    api = _fake_api(monkeypatch, [_as_the_manager, _as_the_manager,
                                  _as_the_manager])
    api.MIN_ATTEMPT_SECONDS = 0.001
    # The clock: the start, the first attempt, then 0.4 ms before the end
    # (as a late answer may come back), then past the end.
    ticks = [100.0, 100.0, 100.9996, 100.9996]

    def monotonic():
        return ticks.pop(0) if ticks else 101.5

    monkeypatch.setattr(rpcapi, 'time', types.SimpleNamespace(
        monotonic=monotonic, sleep=lambda seconds: None))
    with pytest.raises(rpcapi.ClaimTimedOut):
        api.claim(None, 'debian', claim_key='k', timeout=1)
