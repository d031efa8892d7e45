"""The client's rules for a broker away or refusing, on a local fake RPC
client: keyed calls try again within the caller's time and end with
BrokerUnreachable, a refusal ends at once, the key and whether anything
may have been sent go with the error."""

import logging

import kombu.exceptions
import oslo_messaging as messaging
import pytest

from volume_pool import exception
from volume_pool import reply_queue
from volume_pool import rpcapi
from volume_pool.tests.unit.test_rpcapi_client_rules import _fake_api

REFUSED_CONNECT = kombu.exceptions.OperationalError(
    '[Errno 111] Connection refused')
SEND_FAILED = messaging.MessageDeliveryFailure(
    'Unable to connect to AMQP server on 127.0.0.1:1 after 0 tries')


def _quick(api):
    api.BROKER_PAUSE = 0.01
    return api


def test_a_keyed_claim_tries_the_broker_again_with_its_key(monkeypatch):
    answer = {'volume_id': 'v1', 'claim_key': 'k'}
    api = _quick(_fake_api(monkeypatch, [REFUSED_CONNECT, SEND_FAILED,
                                         answer]))
    assert api.claim(None, 'debian', claim_key='k', timeout=10) == answer
    assert [(m, kw['claim_key']) for m, _t, kw in api.client.sent] == [
        ('claim', 'k')] * 3


def test_a_broker_away_to_the_end_is_broker_unreachable(monkeypatch):
    api = _quick(_fake_api(monkeypatch, [REFUSED_CONNECT] * 1000))
    with pytest.raises(rpcapi.BrokerUnreachable) as caught:
        api.confirm(None, 'k', timeout=0.2)
    error = caught.value
    assert isinstance(error, exception.ServiceUnavailable)
    assert isinstance(error, messaging.MessagingException)
    assert (error.claim_key, error.maybe_sent) == ('k', False)
    assert 'Connection refused' in str(error)


def test_a_claim_without_key_that_may_have_been_sent_queues_its_release(
        monkeypatch):
    api = _quick(_fake_api(monkeypatch, [SEND_FAILED] + [REFUSED_CONNECT] *
                           1000))
    casts = []
    monkeypatch.setattr(api, '_queue_release',
                        lambda ctxt, key, cluster: casts.append(key))
    with pytest.raises(rpcapi.BrokerUnreachable) as caught:
        api.claim(None, 'debian', timeout=0.2)
    made = api.client.sent[0][2]['claim_key']
    assert (caught.value.claim_key, caught.value.maybe_sent) == (made, True)
    assert casts == [made]


def test_a_claim_with_the_callers_key_keeps_it_to_claim_again(monkeypatch):
    api = _quick(_fake_api(monkeypatch, [SEND_FAILED] + [REFUSED_CONNECT] *
                           1000))
    casts = []
    monkeypatch.setattr(api, '_queue_release',
                        lambda ctxt, key, cluster: casts.append(key))
    with pytest.raises(rpcapi.BrokerUnreachable) as caught:
        api.claim(None, 'debian', claim_key='k', timeout=0.2)
    assert (caught.value.claim_key, caught.value.maybe_sent) == ('k', True)
    assert casts == []


def test_a_claim_that_reached_a_manager_before_the_broker_went_may_be_held(
        monkeypatch):
    api = _quick(_fake_api(monkeypatch, [messaging.MessagingTimeout('late')]
                           + [REFUSED_CONNECT] * 1000))
    api.MIN_ATTEMPT_SECONDS = 0.05
    monkeypatch.setattr(api, '_queue_release', lambda *args: None)
    with pytest.raises(rpcapi.BrokerUnreachable) as caught:
        api.claim(None, 'debian', claim_key='k', timeout=0.3)
    assert caught.value.maybe_sent


def test_a_refusal_ends_the_call_at_once_with_its_key(monkeypatch):
    import amqp.exceptions
    api = _quick(_fake_api(monkeypatch, [
        amqp.exceptions.AccessRefused('(403) ACCESS_REFUSED')]))
    with pytest.raises(rpcapi.BrokerRefused) as caught:
        api.release(None, 'k', timeout=10)
    assert caught.value.claim_key == 'k'
    assert not isinstance(caught.value, exception.ServiceUnavailable)
    assert len(api.client.sent) == 1


def test_a_call_without_key_is_sent_once(monkeypatch):
    api = _quick(_fake_api(monkeypatch, [SEND_FAILED, []]))
    with pytest.raises(rpcapi.BrokerUnreachable) as caught:
        api.pool_status(None, timeout=10)
    assert caught.value.maybe_sent and caught.value.claim_key is None
    assert len(api.client.sent) == 1


def test_no_reply_queue_in_time_is_broker_unreachable(monkeypatch):
    api = _fake_api(monkeypatch, [])
    monkeypatch.setattr(reply_queue, 'is_ready', lambda transport: False)
    monkeypatch.setattr(reply_queue, 'ready',
                        lambda transport, timeout: False)
    with pytest.raises(rpcapi.BrokerUnreachable) as caught:
        api.claim(None, 'debian', claim_key='k', timeout=1)
    assert (caught.value.claim_key, caught.value.maybe_sent) == ('k', False)
    with pytest.raises(rpcapi.BrokerUnreachable):
        api.ping(None, 'mgr-1', timeout=1)
    assert api.client.sent == []  # nothing left the client


def test_the_give_up_release_that_cannot_be_queued_names_the_key(
        monkeypatch, caplog):
    api = _fake_api(monkeypatch, [])

    class _Refusing:
        def cast(self, *args, **kwargs):
            raise REFUSED_CONNECT
    monkeypatch.setattr(api, '_prepare', lambda *args, **kwargs: _Refusing())
    api._queue_release(None, 'k', None)
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert 'claim k was given up' in record.getMessage()
    assert 'Connection refused' in record.getMessage()
