"""volume-pool-manager: the daemon (systemd unit volume-pool-manager)."""

import os
import signal
import sys
import threading

from oslo_config import cfg
from oslo_db import exception as db_exc
from oslo_log import log as logging
from oslo_reports import guru_meditation_report as gmr
from oslo_reports import opts as gmr_opts
from oslo_reports.models import with_default_views
from sqlalchemy import exc as sa_exc

from volume_pool import amqp_close_notice
from volume_pool import cinder as vp_cinder
from volume_pool import config
from volume_pool import context as vp_context
from volume_pool import exception
from volume_pool import host_names
from volume_pool import launcher
from volume_pool import pool_spec
from volume_pool import rpc
from volume_pool import service
from volume_pool import version
from volume_pool.conf import volume_pool as vp_conf_volume_pool
from volume_pool.db import api as db_api

CONF = config.CONF
LOG = logging.getLogger(__name__)

DESCRIPTION = ('Keep a warm pool of ready Cinder volumes per snapshot type '
               'and hand them out over oslo.messaging RPC.')


def prepare(argv):
    """Parse and check the config, set up logging, DB and RPC.

    Raises ConfigError with one line naming the bad option.
    """
    try:
        _prepare(argv)
    except cfg.Error as exc:
        # A missing or unparsable file, or any option read while starting
        # (range, type): one line, not a traceback, as the other commands.
        raise exception.ConfigError(reason=str(exc))


def _prepare(argv):
    gmr_opts.set_defaults(CONF)  # [oslo_reports], read from the file
    config.parse_args(argv, description=DESCRIPTION)
    logging.setup(CONF, 'volume-pool')
    amqp_close_notice.install()
    pool_spec.load_specs(CONF)
    problem = vp_conf_volume_pool.check(CONF)
    if problem:
        raise exception.ConfigError(reason=problem)
    for section in pool_spec.unused_pool_sections(CONF):
        LOG.warning('[%s] is not in [volume_pool] enabled_pools; it is '
                    'ignored.', section)
    _warn_of_disabled_tasks()
    vp_cinder.Cinder(CONF)  # loads [cinder] auth: a typo fails here
    # Read now that the pool sections and [cinder]'s auth options are
    # registered: a bad value is one line here, not a traceback later.
    config.check_values(CONF)
    trigger = CONF.oslo_reports.file_event_handler
    if trigger and not os.path.exists(trigger):
        raise exception.ConfigError(
            reason='[oslo_reports] file_event_handler: %s does not exist '
                   '(create it; touching it triggers a report)' % trigger)
    # Before the database: a bad transport_url is a config error like the
    # others, and the transports reach no broker until first used.
    rpc.init(CONF)
    try:
        db_api.configure(CONF)
        service.check_schema()
        _check_pool_spelling()
        host_names.refuse_if_taken(
            CONF.host, CONF.cluster or None,
            CONF.volume_pool.service_down_time,
            CONF.volume_pool.heartbeat_interval)
    except BaseException:
        rpc.cleanup()
        raise


def _warn_of_disabled_tasks():
    """A disabled replenish or sync is for maintenance and tests: say what
    it costs, once, at start."""
    options = CONF.volume_pool
    if options.replenish_interval < 0:
        LOG.warning('[volume_pool] replenish_interval = -1: replenish is '
                    'disabled, the pools will not fill.')
    if options.sync_interval < 0:
        LOG.warning('[volume_pool] sync_interval = -1: sync is disabled, '
                    'nothing settles a crash or a failed claim, and '
                    'replenish refills no pool: only "volume-pool-manage '
                    'pool refill", which syncs the pool first.')


def _check_pool_spelling():
    """Refuse a pool that differs only in case from one with volumes:
    Cinder and MariaDB would take the one for the other."""
    clash = pool_spec.case_clash(pool_spec.load_specs(CONF),
                             db_api.pool_names(CONF.cluster or None))
    if clash:
        raise exception.ConfigError(
            reason='[volume_pool] enabled_pools: pool %r differs only in '
                   'case from pool %r, which has volumes (names are '
                   'compared without case); spell it %r, or drain %r '
                   'first' % (clash[0], clash[1], clash[1], clash[1]))


def pool_state_section(server):
    """The "Pool State" section of a Guru Meditation Report.

    The manager's own pool_status when it is up (reason, backoff, claim
    figures), the database counts otherwise: a report taken while the
    service hangs at start-up still shows the pools.
    """
    def _generate():
        try:
            if server.manager is not None:
                pools_now = {row['name']: row for row in
                             server.manager.pool_status(
                                 vp_context.get_admin_context())}
                source = 'manager pool_status'
            else:
                pools_now = db_api.count_by_pool(CONF.cluster or None)
                source = 'database counts (manager not started)'
            data = {'source': source, 'pools': pools_now}
        except (exception.VolumePoolException, db_exc.DBError,
                sa_exc.SQLAlchemyError) as exc:
            data = {'source': 'unavailable',
                    'error': exception.first_line(exc)}
        except Exception as exc:
            # A report must come out whatever broke: the bug is logged.
            LOG.exception('The Pool State section of the report failed')
            data = {'source': 'unavailable', 'error': str(exc)}
        return with_default_views.ModelWithDefaultViews(data=data)
    return _generate


def setup_reports(server):
    """Guru Meditation Reports, as nova does: threads, config, pools.

    SIGUSR2 always triggers one; ``[oslo_reports] file_event_handler``
    adds a file whose modification triggers one (a watcher thread, no
    eventlet).  The report goes to stderr, or to ``[oslo_reports]
    log_dir``.
    """
    gmr.TextGuruMeditation.register_section('Pool State',
                                            pool_state_section(server))
    version_info = version.version_info
    gmr.TextGuruMeditation.setup_autorun(version_info, conf=CONF)
    if CONF.oslo_reports.file_event_handler:
        # setup_autorun() watches the file *instead of* SIGUSR2: keep both.
        gmr.TextGuruMeditation.setup_autorun(version_info, conf=CONF,
                                             signum=signal.SIGUSR2)


def install_reload_handler(server):
    """SIGHUP re-reads mutable options (pool targets) without a restart.

    The handler only sets an event, and a thread
    started here does the reload: a handler that starts a thread or logs
    runs inside whatever the main thread was doing, and can wait forever
    on a lock that code holds.  Signals that come while a reload runs
    make one more reload.
    """
    requested = threading.Event()

    def _reload_on_request():
        while True:
            requested.wait()
            requested.clear()
            reload_config(server)

    threading.Thread(target=_reload_on_request, name='reload',
                     daemon=True).start()
    signal.signal(signal.SIGHUP, lambda signo, frame: requested.set())


def reload_config(server, conf=CONF):
    """Re-read the mutable options; a value the options refuse is one
    error line, and the manager keeps the pools it had."""
    LOG.info('SIGHUP: reloading the configuration')
    try:
        conf.mutate_config_files()
        config.check_values(conf)
        server.reset()
    except (cfg.Error, exception.ConfigError) as exc:
        LOG.error('Reload refused, the pools and targets in force stay: '
                  '%s', exception.first_line(exc))
    except Exception:
        LOG.exception('Reload failed; the previous configuration stays in '
                      'force')


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        prepare(argv)
    except exception.ConfigError as exc:
        sys.stderr.write('volume-pool-manager: %s\n' % exc)
        return 2
    server = service.Service(CONF)
    install_reload_handler(server)
    setup_reports(server)
    try:
        return launcher.serve(server, CONF)
    finally:
        rpc.cleanup()


if __name__ == '__main__':
    sys.exit(main())
