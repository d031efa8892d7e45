"""oslo.messaging plumbing shared by the manager and the client.

No server code is imported here: :mod:`volume_pool.rpcapi` uses this module
inside the controller's process.
"""

import importlib.metadata

from oslo_config import cfg

from volume_pool import eventlet_free

# In the controller's process too: importing the client must not bring
# eventlet and its deprecation warning with it.
with eventlet_free.importing_without_eventlet():
    import oslo_messaging as messaging
    from oslo_messaging.rpc import dispatcher

from volume_pool import context as vp_context  # noqa: E402
from volume_pool import exception  # noqa: E402

TOPIC = 'volume-pool'
# Each manager also answers ping on this topic, under its own host name.
# A topic of its own: a server listens on its topic's shared queue too,
# and one that only pings must never take the API calls sent there.
HOST_TOPIC = 'volume-pool-host'
# Remote errors from these modules are re-raised as their own class.
ALLOWED_EXMODS = ['volume_pool.exception']

# What oslo.messaging raises for a transport_url it cannot use: no scheme
# (InvalidTransportURL), a scheme no installed driver serves
# (DriverLoadFailure), a driver whose library is missing (ImportError), a
# port or IPv6 host that does not parse (ValueError), a query parameter
# the driver has no option for (NoSuchOptError).
_BAD_URL_ERRORS = (messaging.InvalidTransportURL, messaging.DriverLoadFailure,
                   ImportError, ValueError, cfg.NoSuchOptError)
RPC_URL_OPTION = '[DEFAULT] transport_url'
NOTIFICATION_URL_OPTION = '[oslo_messaging_notifications] transport_url'

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


def _bad_url(option, exc):
    """The one-line error of an unusable transport URL.

    It never quotes the URL: that may hold the broker's password.
    """
    return exception.ConfigError(
        reason='%s: not a usable transport URL: %s'
               % (option, exception.first_line(exc) or
                  exc.__class__.__name__))


def _check_driver(url, option):
    """Fail in one line when no installed driver serves the URL's scheme:
    oslo.messaging would log a warning before its own error."""
    names = {entry.name for entry in importlib.metadata.entry_points(
        group='oslo.messaging.drivers')}
    driver = url.transport.split('+')[0]
    if driver not in names:
        raise exception.ConfigError(
            reason='%s: no oslo.messaging driver for "%s://" (installed: '
                   '%s)' % (option, driver, ', '.join(sorted(names))))


def rpc_transport(conf):
    """The RPC transport of ``[DEFAULT] transport_url``; a bad URL is a
    ConfigError naming the option."""
    try:
        url = messaging.TransportURL.parse(conf)
        _check_driver(url, RPC_URL_OPTION)
        return messaging.get_rpc_transport(
            conf, url=url, allowed_remote_exmods=ALLOWED_EXMODS)
    except cfg.ConfigFileValueError:
        raise  # a ValueError too, but it names its own option
    except _BAD_URL_ERRORS as exc:
        raise _bad_url(RPC_URL_OPTION, exc)


def check_transport_url(conf):
    """Raise ConfigError if ``[DEFAULT] transport_url`` is unusable.

    Builds a transport as a real client would, and closes it: drivers
    connect only when first used, so this reaches no broker.
    """
    rpc_transport(conf).cleanup()


def notification_transport(conf):
    """The transport of ``[oslo_messaging_notifications] transport_url``,
    else of ``[DEFAULT] transport_url``; a bad URL is a ConfigError naming
    the option it came from."""
    try:
        return messaging.get_notification_transport(
            conf, allowed_remote_exmods=ALLOWED_EXMODS)
    except cfg.ConfigFileValueError:
        raise
    except _BAD_URL_ERRORS as exc:
        # The attempt registered the option.
        own_url = conf.oslo_messaging_notifications.transport_url
        raise _bad_url(NOTIFICATION_URL_OPTION if own_url else
                       RPC_URL_OPTION, exc)


def init(conf):
    """Create the transports; call once the config is parsed.

    A bad transport URL raises ConfigError naming its option.
    """
    global TRANSPORT, NOTIFICATION_TRANSPORT, NOTIFIER, NOTIFICATIONS_ENABLED
    transport = rpc_transport(conf)
    try:
        notification = notification_transport(conf)
    except exception.ConfigError:
        transport.cleanup()
        raise
    TRANSPORT, NOTIFICATION_TRANSPORT = transport, notification
    NOTIFIER = messaging.Notifier(NOTIFICATION_TRANSPORT,
                                  serializer=RequestContextSerializer())
    # Notifier.is_enabled() is true for an empty driver list, oslo.messaging's
    # default, although nothing is then sent.
    drivers = set(conf.oslo_messaging_notifications.driver)
    NOTIFICATIONS_ENABLED = bool(drivers - {'', 'noop'})


def cleanup():
    """Close the transports (the end of the process, or of a test)."""
    global TRANSPORT, NOTIFICATION_TRANSPORT, NOTIFIER, NOTIFICATIONS_ENABLED
    if NOTIFICATIONS_ENABLED:
        # The events already made go out first (a few seconds at most).
        from volume_pool import notifications
        notifications.flush()
    for transport in (TRANSPORT, NOTIFICATION_TRANSPORT):
        if transport is not None:
            transport.cleanup()
    TRANSPORT = NOTIFICATION_TRANSPORT = NOTIFIER = None
    NOTIFICATIONS_ENABLED = False


def get_server(target, endpoints, server_cls=None):
    """An RPC server on the threading executor (no eventlet);
    ``server_cls``: a subclass of oslo.messaging's RPCServer."""
    kwargs = {'server_cls': server_cls} if server_cls else {}
    return messaging.get_rpc_server(
        TRANSPORT, target, endpoints,
        serializer=RequestContextSerializer(),
        access_policy=dispatcher.DefaultRPCAccessPolicy, **kwargs)


def get_client(target, transport=None, version_cap=None, timeout=None):
    return messaging.get_rpc_client(
        transport or TRANSPORT, target, version_cap=version_cap,
        serializer=RequestContextSerializer(), timeout=timeout)

