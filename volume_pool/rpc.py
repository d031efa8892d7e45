"""oslo.messaging plumbing shared by the manager and the client.

No server code is imported here: :mod:`volume_pool.rpcapi` uses this module
inside the controller's process.
"""

import oslo_messaging as messaging
from oslo_messaging.rpc import dispatcher

from volume_pool import context as vp_context

TOPIC = 'volume-pool'
# Remote errors from these modules are re-raised as their own class.
ALLOWED_EXMODS = ['volume_pool.exception']

TRANSPORT = None
NOTIFICATION_TRANSPORT = None
NOTIFIER = None
# False when [oslo_messaging_notifications] driver names no driver, or only
# noop: then no event is built at all.
NOTIFICATIONS_ENABLED = False


class RequestContextSerializer(messaging.NoOpSerializer):
    """Send the context as a dict and rebuild it on the other side."""

    def serialize_context(self, ctxt):
        if ctxt is None:
            return {}
        if isinstance(ctxt, dict):
            return ctxt
        return ctxt.to_dict()

    def deserialize_context(self, ctxt):
        return vp_context.from_dict(ctxt)


def init(conf):
    """Create the transports; call once the config is parsed."""
    global TRANSPORT, NOTIFICATION_TRANSPORT, NOTIFIER, NOTIFICATIONS_ENABLED
    TRANSPORT = messaging.get_rpc_transport(
        conf, allowed_remote_exmods=ALLOWED_EXMODS)
    NOTIFICATION_TRANSPORT = messaging.get_notification_transport(
        conf, allowed_remote_exmods=ALLOWED_EXMODS)
    NOTIFIER = messaging.Notifier(NOTIFICATION_TRANSPORT,
                                  serializer=RequestContextSerializer())
    # Notifier.is_enabled() is true for an empty driver list, oslo.messaging's
    # default, although nothing is then sent.
    drivers = set(conf.oslo_messaging_notifications.driver)
    NOTIFICATIONS_ENABLED = bool(drivers - {'', 'noop'})


def initialized():
    return TRANSPORT is not None


def cleanup():
    """Close the transports (the end of the process, or of a test)."""
    global TRANSPORT, NOTIFICATION_TRANSPORT, NOTIFIER, NOTIFICATIONS_ENABLED
    for transport in (TRANSPORT, NOTIFICATION_TRANSPORT):
        if transport is not None:
            transport.cleanup()
    TRANSPORT = NOTIFICATION_TRANSPORT = NOTIFIER = None
    NOTIFICATIONS_ENABLED = False


def get_server(target, endpoints):
    """An RPC server on the threading executor (no eventlet)."""
    return messaging.get_rpc_server(
        TRANSPORT, target, endpoints,
        serializer=RequestContextSerializer(),
        access_policy=dispatcher.DefaultRPCAccessPolicy)


def get_client(target, transport=None, version_cap=None, timeout=None):
    return messaging.get_rpc_client(
        transport or TRANSPORT, target, version_cap=version_cap,
        serializer=RequestContextSerializer(), timeout=timeout)


def get_notifier(publisher_id):
    return NOTIFIER.prepare(publisher_id=publisher_id)
