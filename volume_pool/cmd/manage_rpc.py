"""volume-pool-manage's calls to the managers over RPC."""

import contextlib
import logging

from oslo_config import cfg
import oslo_messaging as messaging

from volume_pool import config
from volume_pool import context as vp_context
from volume_pool import exception
from volume_pool import rpc
from volume_pool import rpcapi

CONF = config.CONF

# Seconds an operator waits for the managers: a status question must not
# hang a terminal or a script.
STATUS_TIMEOUT = 10
NO_ANSWER = '(no manager answered)'
NO_TRANSPORT = '(not asked: no transport_url)'
# oslo.messaging's driver that never leaves its process.
IN_PROCESS = 'fake'
# Logs an ERROR at each connection attempt to a broker that is away: a
# command says it in one line of its own.
RABBIT_LOGGER = 'oslo.messaging._drivers.impl_rabbit'
# Seconds a command waits, at its end, for its transport to close: a
# broker away would not let it close sooner.
CLOSE_TIMEOUT = 0.2


@contextlib.contextmanager
def rpc_transport():
    """The command's transport: the driver's retry lines quiet (unless
    --debug), and closed at the end without waiting for a broker away."""
    logger = logging.getLogger(RABBIT_LOGGER)
    level = logger.level
    if not CONF.debug:
        logger.setLevel(logging.CRITICAL)
    transport = rpcapi.get_transport(CONF)
    try:
        yield transport
    finally:
        rpcapi.close_transport(transport, CLOSE_TIMEOUT)
        logger.setLevel(level)


def transport_url():
    """``[DEFAULT] transport_url`` if the operator set it, else None.

    oslo.messaging's own default (``rabbit://`` on localhost) does not
    count: a CLI must not talk to whatever broker happens to run there.
    """
    rpc.check_transport_url(CONF)  # registers the option; one line if bad
    where = CONF.get_location('transport_url')
    if where is None or where.location == cfg.Locations.opt_default:
        return None
    return CONF.transport_url


def check_not_in_process():
    """Refuse ``fake://`` in one line: no manager serves in this process
    (rpc.init never ran: that is a manager's), so a call would only wait
    for its timeout."""
    if (messaging.TransportURL.parse(CONF).transport == IN_PROCESS
            and rpc.TRANSPORT is None):
        raise exception.ConfigError(
            reason="[DEFAULT] transport_url: fake:// is oslo.messaging's "
                   'in-process transport, no manager in another process '
                   "answers on it; set the managers' RabbitMQ URL "
                   '(rabbit://...)')


def call(call, timeout, project_id=None):
    """Run ``call(api, ctxt)`` on a transport that lives for this call.

    ``project_id``: the caller's project the claim keys belong to.

    The transport is built on the global CONF: oslo.messaging registers
    some of its options there only (``[oslo_messaging_tracing]``).
    """
    if not transport_url():
        raise exception.ConfigError(
            reason='[DEFAULT] transport_url is not set: this command talks '
                   'to the managers over RPC')
    check_not_in_process()
    with rpc_transport() as transport:
        try:
            api = rpcapi.VolumePoolAPI(transport, timeout=timeout)
            return call(api,
                        vp_context.RequestContext(project_id=project_id))
        except rpcapi.ClaimTimedOut:
            raise  # names the key to show or release the claim with
        except messaging.MessagingTimeout:
            raise exception.ServiceUnavailable(
                reason='no volume-pool-manager answered within %d s'
                       % timeout)
