"""volume-pool-demo --serve: a manager on the embedded defaults that a
controller in another process can call.

The database is a SQLite file and Cinder the project's simulator (real
HTTP on loopback), as in the demo; the RPC transport cannot be embedded.
oslo.messaging's ``fake://`` lives inside one process: a client in
another process never reaches it.  The rabbit driver, oslo.messaging's
RPC driver, needs an AMQP 0-9-1 broker: kombu's broker-less transports
(``kombu+memory``, ``kombu+filesystem``, ``kombu+redis``, the last even
on a Redis served by Python) fail under it at the first connection (its
producer listens for basic.return events, which only py-amqp channels
have), and PyPI has no maintained AMQP broker written in Python.  So this
serves on a RabbitMQ: by default the one that Debian's
``rabbitmq-server`` package (or devstack) runs on loopback, with its
``guest`` user.
"""

import socket
import sys
import urllib.parse

from oslo_log import log as logging

from volume_pool import amqp_close_notice
from volume_pool import config
from volume_pool import launcher
from volume_pool import rpc
from volume_pool import service
from volume_pool.db import api as db_api
from volume_pool.db import migration
from volume_pool.fixtures.simulator import cinder_api

CONF = config.CONF

DEFAULT_URL = 'rabbit://guest:guest@127.0.0.1:5672/'
EXAMPLE = 'doc/source/examples/controller.py'
_BROKER_TIMEOUT = 3.0


class CannotServe(Exception):
    """A transport URL another process cannot reach; one line."""


def check_url(url):
    """Refuse, in one line, a URL no other process can reach: ``fake://``,
    or a broker that does not answer."""
    parsed = urllib.parse.urlsplit(url)
    driver = parsed.scheme.split('+')[0]
    if driver == 'fake':
        raise CannotServe(
            '--transport-url %s: fake:// is oslo.messaging\'s in-process '
            'transport, no other process can reach it; serve on a RabbitMQ '
            '(default %s)' % (url, DEFAULT_URL))
    if driver != 'rabbit':
        raise CannotServe('--transport-url: serve on a RabbitMQ '
                          '(rabbit://user:password@host:port/vhost)')
    for netloc in parsed.netloc.rpartition('@')[2].split(','):
        host, _sep, port = netloc.rpartition(':') if ':' in netloc else (
            netloc, '', '')
        address = (host.strip('[]') or '127.0.0.1', int(port or 5672))
        try:
            socket.create_connection(address, _BROKER_TIMEOUT).close()
        except OSError as exc:
            raise CannotServe(
                'no RabbitMQ answers at %s:%d (%s): install and start one '
                '(Debian: apt-get install rabbitmq-server) or give its URL '
                'with --transport-url' % (address + (exc.strerror or exc,)))


def prepare(conf_path, verbose):
    """The demo's configuration parsed (its logs quiet unless
    ``verbose``), its SQLite file migrated and its transports made: what
    the demo and ``--serve`` do before they start the service."""
    config.parse_args(['--config-file', conf_path])
    CONF.set_override('debug', False)
    if not verbose:
        CONF.set_override('default_log_levels',
                          ['volume_pool=WARN', 'alembic=WARN'] +
                          CONF.default_log_levels)
    logging.setup(CONF, 'volume-pool-demo')
    amqp_close_notice.install()
    db_api.configure(CONF)
    migration.upgrade()
    rpc.init(CONF)


def serve(args, state_dir, write_config):
    """Serve until SIGTERM or Ctrl-C; returns the exit code."""
    with cinder_api.CinderSimulator(
            creation_delay=args.creation_delay) as simulator:
        conf_path = write_config(state_dir, simulator,
                                 transport_url=args.transport_url)
        prepare(conf_path, args.verbose)
        server = service.Service(CONF)
        try:
            return launcher.serve(server, CONF, on_started=lambda: _banner(
                args.transport_url, conf_path, simulator, server))
        finally:
            rpc.cleanup()


def _banner(url, conf_path, simulator, server):
    pools = ', '.join('%s (target %d)' % (name, spec.target)
                      for name, spec in sorted(server.manager.specs.items()))
    print('Serving pools %s\n'
          '  transport_url = %s\n'
          '  config        = %s\n'
          '  Cinder        = %s (simulator)\n'
          'From another shell, in a checkout:\n'
          '  python %s --transport-url %s\n'
          'Stop with Ctrl-C.' % (pools, url, conf_path, simulator.endpoint,
                                 EXAMPLE, url), flush=True)


def refuse(message):
    sys.stderr.write('volume-pool-demo: %s\n' % message)
    return 2
