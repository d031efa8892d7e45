"""Which errors of the rabbit driver the client takes for a broker away
or refusing, and what it says of them."""

import amqp.exceptions
import kombu.exceptions
import oslo_messaging as messaging

from volume_pool import broker_errors
from volume_pool import exception


def test_a_refused_login_or_vhost_is_refused():
    assert broker_errors.classify(amqp.exceptions.AccessRefused(
        '(403) ACCESS_REFUSED')) == broker_errors.REFUSED
    assert broker_errors.classify(amqp.exceptions.NotAllowed(
        '(530) NOT_ALLOWED')) == broker_errors.REFUSED


def test_a_refusal_wrapped_by_kombu_is_still_refused():
    try:
        try:
            raise amqp.exceptions.AccessRefused('403')
        except amqp.exceptions.AccessRefused as exc:
            raise kombu.exceptions.OperationalError('login') from exc
    except kombu.exceptions.OperationalError as wrapped:
        assert broker_errors.classify(wrapped) == broker_errors.REFUSED


def test_connection_failures_are_unreachable():
    for exc in (kombu.exceptions.OperationalError('[Errno 111] refused'),
                ConnectionRefusedError(111, 'refused'),
                messaging.MessageDeliveryFailure('Unable to connect'),
                amqp.exceptions.RecoverableConnectionError('gone')):
        assert broker_errors.classify(exc) == broker_errors.UNREACHABLE


def test_errors_of_the_managers_are_not_the_brokers():
    for exc in (messaging.MessagingTimeout('late'),
                messaging.RemoteError('TypeError', 'bug'),
                exception.PoolEmpty(pool='p'), ValueError('x')):
        assert broker_errors.classify(exc) is None


def test_only_a_failed_send_may_have_sent_anything():
    assert broker_errors.maybe_sent(
        messaging.MessageDeliveryFailure('after 0 tries'))
    assert not broker_errors.maybe_sent(
        kombu.exceptions.OperationalError('[Errno 111] refused'))


def test_reason_is_one_line_with_the_type():
    assert broker_errors.reason(kombu.exceptions.OperationalError(
        '[Errno 111] Connection refused\nmore')) == (
        'OperationalError: [Errno 111] Connection refused')
    assert broker_errors.reason(OSError()) == 'OSError'
