"""volume-pool-manager: the daemon (systemd unit volume-pool-manager)."""

import signal
import sys
import threading

from oslo_log import log as logging
from oslo_service import service as oslo_service

from volume_pool import cinder as vp_cinder
from volume_pool import config
from volume_pool import exception
from volume_pool import pools
from volume_pool import rpc
from volume_pool import service
from volume_pool.db import api as db_api

CONF = config.CONF
LOG = logging.getLogger(__name__)

DESCRIPTION = ('Keep a warm pool of ready Cinder volumes per snapshot type '
               'and hand them out over oslo.messaging RPC.')


def prepare(argv):
    """Parse and check the config, set up logging, DB and RPC.

    Raises ConfigError with one line naming the bad option.
    """
    config.parse_args(argv, description=DESCRIPTION)
    logging.setup(CONF, 'volume-pool')
    pools.load_pools(CONF)
    for section in pools.unused_pool_sections(CONF):
        LOG.warning('[%s] is not in [volume_pool] enabled_pools; it is '
                    'ignored.', section)
    vp_cinder.Cinder(CONF)  # loads [cinder] auth: a typo fails here
    db_api.configure(CONF)
    service.check_schema()
    rpc.init(CONF)


def install_reload_handler(server):
    """SIGHUP re-reads mutable options (pool targets) without a restart.

    oslo.service's no_fork launcher turns SIGHUP into an exit; this
    handler replaces it and does the work on a thread, outside the signal
    handler.
    """
    def _reload():
        LOG.info('SIGHUP: reloading the configuration')
        try:
            CONF.mutate_config_files()
            server.reset()
        except Exception:
            LOG.exception('Reload failed; the previous configuration '
                          'stays in force')

    def _handler(signo, frame):
        threading.Thread(target=_reload, name='reload', daemon=True).start()

    signal.signal(signal.SIGHUP, _handler)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        prepare(argv)
    except exception.ConfigError as exc:
        sys.stderr.write('volume-pool-manager: %s\n' % exc)
        return 2
    server = service.Service(CONF)
    launcher = oslo_service.ProcessLauncher(CONF, restart_method='mutate',
                                            no_fork=True)
    install_reload_handler(server)
    try:
        launcher.launch_service(server)
        return launcher.wait()
    finally:
        rpc.cleanup()


if __name__ == '__main__':
    sys.exit(main())
