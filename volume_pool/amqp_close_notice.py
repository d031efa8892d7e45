"""The broker's cancel notice for a fanout queue deleted at stop: DEBUG.

At stop, oslo.messaging's rabbit driver deletes the fanout queue of each
RPC server while still consuming from it, then closes the channel.  The
broker tells the consumer its queue is gone (Basic.Cancel, method
(60, 30): oslo.messaging asks for these notices) and that notice arrives
while the channel closes, so py-amqp logs a WARNING that it ignores it:
one per RPC server at every normal stop, about a deletion the stop itself
made.  Only that notice is turned into a DEBUG line; any other method
received during a close stays a WARNING.
"""

import logging

AMQP_LOGGER = 'amqp'
# py-amqp's message; its first argument is the method's (class, method).
_IGNORED_DURING_CLOSE = 'Received method %s during closing channel %s'
BASIC_CANCEL = (60, 30)


class FanoutCancelAtClose(logging.Filter):
    """Demotes py-amqp's "Basic.Cancel received during closing channel"
    to DEBUG (shown only when the amqp logger's DEBUG is on)."""

    def filter(self, record):
        if (isinstance(record.msg, str)
                and record.msg.startswith(_IGNORED_DURING_CLOSE)
                and record.args and tuple(record.args[0]) == BASIC_CANCEL
                and record.levelno == logging.WARNING):
            record.levelno, record.levelname = logging.DEBUG, 'DEBUG'
            return logging.getLogger(AMQP_LOGGER).isEnabledFor(logging.DEBUG)
        return True


def install():
    """Once per process, after oslo.log's setup."""
    logger = logging.getLogger(AMQP_LOGGER)
    if not any(isinstance(f, FanoutCancelAtClose) for f in logger.filters):
        logger.addFilter(FanoutCancelAtClose())
