"""Events: notifications through oslo.messaging (the fake:// transport
here, RabbitMQ on a vhost of our own when the functional layer
re-collects these tests), read back by a notification listener, as a
consumer such as Ceilometer would read them."""

import dataclasses
import threading

import oslo_messaging as messaging
import pytest

from volume_pool import cinder as vp_cinder
from volume_pool import manager as vp_manager
from volume_pool import notifications
from volume_pool import rpc
from volume_pool import shrink
from volume_pool.db import api as db_api
from volume_pool.fixtures import waiting
from volume_pool.tests.conftest import cinder_section
from volume_pool.tests.unit.manager_steps import call
from volume_pool.tests.unit.manager_steps import fill

# The functional layer runs these again on the real services.
pytestmark = pytest.mark.recollect

HOST = 'notif-host'
PROJECT = 'fedcba9876543210fedcba9876543210'


class _Collector:
    """Notification endpoint: keeps every INFO event it is given."""

    def __init__(self):
        self.events = []
        self._cond = threading.Condition()

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        with self._cond:
            self.events.append((publisher_id, event_type, payload))
            self._cond.notify_all()

    def of(self, event_type, **match):
        with self._cond:
            return [p for _pub, kind, p in self.events if kind == event_type
                    and all(p.get(k) == v for k, v in match.items())]

    def wait(self, event_type, count=1, **match):
        return waiting.wait_for(
            lambda: (len(self.of(event_type, **match)) >= count and
                     self.of(event_type, **match)),
            timeout=10, what='%d %s %s' % (count, event_type, match))


def _manager(write_config, simulator, conf, transport_url, driver):
    snapshot = simulator.add_snapshot(size=1)
    write_config('[DEFAULT]\nhost = %s\ntransport_url = %s\n'
                 '[oslo_messaging_notifications]\ndriver = %s\n'
                 '[volume_pool]\nenabled_pools = debian\n'
                 'create_poll_interval = 0.05\n%s'
                 '[pool:debian]\nsnapshot_id = %s\ntarget = 2\n'
                 % (HOST, transport_url, driver, cinder_section(simulator),
                    snapshot))
    rpc.init(conf)
    return vp_manager.Manager(vp_cinder.Cinder(conf), conf=conf)


@pytest.fixture
def notifying_manager(write_config, database, simulator, conf,
                      transport_url):
    mgr = _manager(write_config, simulator, conf, transport_url,
                   'messagingv2')
    collector = _Collector()
    transport = messaging.get_notification_transport(conf)
    listener = messaging.get_notification_listener(
        transport, [messaging.Target(topic='notifications')], [collector])
    listener.start()
    mgr.events = collector
    yield mgr
    mgr.prepare_for_shutdown()
    mgr.cleanup_host()
    listener.stop()
    listener.wait()
    transport.cleanup()
    rpc.cleanup()


def test_claim_create_and_evict_events(notifying_manager, simulator, conf):
    mgr, events = notifying_manager, notifying_manager.events
    conf.set_override('claim_projects', [PROJECT], group='volume_pool')
    fill(mgr)
    created = events.wait(notifications.VOLUME_CREATED, 2)
    rows = {r.volume_id for r in db_api.get_rows(None, pool='debian')}
    assert {p['volume_id'] for p in created} == rows
    for payload in created:
        assert (payload['pool'], payload['cluster'], payload['host'],
                payload['size']) == ('debian', None, HOST, 1)
        assert payload['snapshot_id'] == mgr.specs['debian'].snapshot_id
        assert payload['duration'] >= 0
    assert {pub for pub, _kind, _p in events.events} == {
        'volume-pool.%s' % HOST}

    hit = call(mgr.claim, 'debian')
    [payload] = events.wait(notifications.CLAIM_HIT)
    assert payload['volume_id'] == hit['volume_id']
    assert payload['duration'] > 0 and payload['ready_for'] >= 0
    assert payload['project_id'] is None
    into = call(mgr.claim, 'debian', project_id=PROJECT)
    events.wait(notifications.CLAIM_HIT, volume_id=into['volume_id'],
                project_id=PROJECT)

    with pytest.raises(Exception, match='create_on_miss is false'):
        call(mgr.claim, 'debian', create_on_miss=False)
    [empty] = events.wait(notifications.CLAIM_MISS)
    assert (empty['volume_id'], empty['create_on_miss']) == (None, False)
    missed = call(mgr.claim, 'debian')
    events.wait(notifications.CLAIM_MISS, volume_id=missed['volume_id'],
                create_on_miss=True)

    # Evictions: an errored volume (sync), a rotation, an operator drain.
    fill(mgr)
    broken, rotated = sorted(r.volume_id for r in db_api.get_rows(None))
    simulator.set_volume_status(broken, 'error')
    call(mgr.sync)
    events.wait(notifications.VOLUME_EVICT, volume_id=broken,
                reason=notifications.EVICT_ERROR)
    old_spec = mgr.specs['debian']
    mgr.specs = {'debian': dataclasses.replace(
        old_spec, snapshot_id=simulator.add_snapshot(size=1))}
    call(mgr.sync)
    [evicted] = events.wait(notifications.VOLUME_EVICT, volume_id=rotated,
                            reason=notifications.EVICT_ROTATION)
    assert evicted['snapshot_id'] == old_spec.snapshot_id
    assert evicted['age'] >= 0
    fill(mgr)
    report = shrink.drain_pool(vp_cinder.Cinder(mgr.conf), 'debian', None)
    assert report.deleted == 2
    drained = events.wait(notifications.VOLUME_EVICT, 2,
                          reason=notifications.EVICT_DRAIN)
    assert all(p['pool'] == 'debian' for p in drained)


@pytest.mark.parametrize('driver', ['noop', ''])
def test_noop_or_no_driver_and_no_rpc_send_nothing(write_config, database,
                                                   simulator, conf, driver):
    assert not notifications.enabled()  # rpc.init() never ran (the CLI)
    mgr = _manager(write_config, simulator, conf, 'fake:///', driver)
    try:
        assert not notifications.enabled()
        fill(mgr)
        assert call(mgr.claim, 'debian')['source'] == 'pool'
    finally:
        mgr.cleanup_host()
        rpc.cleanup()


def test_a_broker_failure_never_breaks_a_claim(write_config, database,
                                               simulator, conf, caplog):
    # Nothing listens on port 1: every send fails after one attempt.
    mgr = _manager(write_config, simulator, conf,
                   'rabbit://guest:guest@127.0.0.1:1/', 'messagingv2')
    try:
        assert notifications.enabled()
        fill(mgr)
        result = call(mgr.claim, 'debian')
        assert result['source'] == 'pool'
        assert result['volume_id'] not in {
            r.volume_id for r in db_api.get_rows(None)}
        # The send was tried, failed, and the claim went on.
        assert notifications.flush(30)
        assert 'Could not send notification' in caplog.text
        assert notifications.CLAIM_HIT in caplog.text
    finally:
        mgr.cleanup_host()
        rpc.cleanup()


class _BrokenNotifier:
    def prepare(self, **kwargs):
        return self

    def info(self, ctxt, event_type, payload):
        raise TypeError('a bug')


def test_a_bug_while_sending_is_logged_with_its_traceback(monkeypatch,
                                                          caplog):
    monkeypatch.setattr(rpc, 'NOTIFIER', _BrokenNotifier())
    monkeypatch.setattr(rpc, 'NOTIFICATIONS_ENABLED', True)
    notifications._send(notifications.CLAIM_HIT, {'pool': 'debian'}, HOST,
                        context=object())
    assert notifications.flush(10)
    [record] = caplog.records
    assert record.getMessage() == (
        'Could not send notification %s' % notifications.CLAIM_HIT)
    assert record.exc_info[0] is TypeError


def test_a_send_that_hangs_never_holds_the_work(monkeypatch):
    """The event is queued and the work goes on, whatever the broker
    does; the events go out in order once it answers."""
    answer, sent = threading.Event(), []

    class _Hung:
        def prepare(self, **kwargs):
            assert kwargs['retry'] == 1  # one reconnect: the next node
            return self

        def info(self, ctxt, event_type, payload):
            assert answer.wait(30)
            sent.append(payload['n'])

    monkeypatch.setattr(rpc, 'NOTIFIER', _Hung())
    monkeypatch.setattr(rpc, 'NOTIFICATIONS_ENABLED', True)
    for n in range(3):
        notifications._send(notifications.CLAIM_HIT, {'n': n}, HOST,
                            context=object())
    assert not notifications.flush(0.2)
    assert sent == []
    answer.set()
    assert notifications.flush(10)
    assert sent == [0, 1, 2]


def test_a_full_queue_drops_the_newest_with_a_warning(caplog):
    from volume_pool import event_sender
    held = threading.Event()

    class _Held:
        def prepare(self, **kwargs):
            return self

        def info(self, ctxt, event_type, payload):
            held.wait(30)

    sender = event_sender.EventSender(lambda: _Held(), size=2)
    for n in range(5):
        sender.send('kind', {'n': n}, 'pub', None)
    assert 'Dropped notification kind' in caplog.text
    held.set()
    assert sender.flush(10)
