"""Which errors of oslo.messaging's rabbit driver mean "no broker".

The client (:mod:`volume_pool.rpcapi`) turns them into its typed errors:
a refusal of the credentials is a configuration error, asking again does
not help; anything else that kept the client from the broker may pass.
Pure classification, no I/O, so the rules are unit tested.
"""

from volume_pool import eventlet_free

with eventlet_free.importing_without_eventlet():
    import amqp.exceptions
    import kombu.exceptions
    import oslo_messaging as messaging

REFUSED, UNREACHABLE = 'refused', 'unreachable'

# The broker refused the login (403) or the virtual host (530).
_REFUSALS = (amqp.exceptions.AccessRefused, amqp.exceptions.NotAllowed)
# Raised while connecting (nothing was sent) or, wrapped by oslo.messaging
# in MessageDeliveryFailure, once its retries of a send ran out.
ERRORS = (messaging.MessageDeliveryFailure, kombu.exceptions.KombuError,
          amqp.exceptions.AMQPError, OSError)


def _chain(exc):
    """The error and the ones it was raised from or during."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def classify(exc):
    """REFUSED, UNREACHABLE, or None when ``exc`` is not the broker's."""
    if not isinstance(exc, ERRORS):
        return None
    for link in _chain(exc):
        if isinstance(link, _REFUSALS):
            return REFUSED
    return UNREACHABLE


def maybe_sent(exc):
    """False when the error came before any message left the client: the
    send connection could not be made.  oslo.messaging raises
    MessageDeliveryFailure only once a send was under way."""
    return isinstance(exc, messaging.MessageDeliveryFailure)


def reason(exc):
    """One line about the failure, never the transport URL (it may hold
    the password): oslo.messaging's own messages name host and port."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ''
    return '%s: %s' % (exc.__class__.__name__, text) if text else (
        exc.__class__.__name__)
