"""volume-pool-status: ``upgrade check`` and ``health``.

``upgrade check``, as nova-status and cinder-status:

Run it before restarting the managers on new code, or after a change of
configuration: it says whether the database schema, the pools' snapshots,
the ``[cinder]`` credentials and the coordination backend are what the new
code needs, and warns of volumes nobody syncs (a cluster renamed) and of
managers that share a cluster without a coordination backend.  Exit codes
are oslo.upgradecheck's: 0 success, 1 warning, 2 failure, 255 the check
itself crashed.

``health [--host HOST]`` asks one manager (this machine's ``host`` by
default) over RPC how it is, for a systemd timer or a Kubernetes exec
probe: exit 0 when it is ``ok`` or ``degraded``, 1 when it is ``failed``
or does not answer, 2 when the configuration is unusable (the broker
refusing the transport URL's credentials included), 3 when the message
broker cannot be reached within ``--timeout`` (the manager's health is
then unknown).
"""

import json
import logging
import sys
import threading
import time

from oslo_config import cfg
import oslo_messaging as messaging
from oslo_upgradecheck import upgradecheck
from tooz import coordination as tooz_coordination

from volume_pool import cinder as vp_cinder
from volume_pool import clusters
from volume_pool import config
from volume_pool import context as vp_context
from volume_pool import coordination
from volume_pool import exception
from volume_pool import pool_spec
from volume_pool import rpcapi
from volume_pool.cmd import manage_rpc
from volume_pool.db import api as db_api
from volume_pool.db import migration

CONF = config.CONF
LOG = logging.getLogger(__name__)

Code = upgradecheck.Code
Result = upgradecheck.Result

# A tag no volume carries: listing it proves the credentials and the
# endpoint with one small, server-side filtered request.
_PROBE_TAG = {vp_cinder.TAG_POOL: '__volume_pool_upgrade_check__'}
# Seconds the coordination probe waits for the backend.
COORDINATION_TIMEOUT = 10
# A database that is away, refuses or has no such table, or a connection
# URL whose driver is not installed.  Any other error in a check is a bug:
# oslo.upgradecheck prints its traceback and exits 255.
DATABASE_ERRORS = db_api.DATABASE_ERRORS + (ImportError,)


def _one_line(exc):
    return '%s: %s' % (exc.__class__.__name__, exception.first_line(exc))


def _unreadable(exc):
    return Result(Code.FAILURE,
                  'Cannot read the pool table and the managers registry '
                  '(see "Database schema"): %s' % _one_line(exc))


class Checks(upgradecheck.UpgradeCommands):
    """The checks ``volume-pool-status upgrade check`` runs, in order."""

    def _check_database(self):
        # A check answers now: no oslo.db connect-retry loop (10 x 10 s by
        # default) when the database is down.
        CONF.set_override('max_retries', 0, group='database')
        try:
            db_api.configure(CONF)
            current, head = migration.version(), migration.head()
        except DATABASE_ERRORS as exc:
            return Result(Code.FAILURE,
                          'Cannot read the schema revision from [database] '
                          'connection: %s' % _one_line(exc))
        if current is None:
            return Result(Code.FAILURE,
                          'The database has no schema; run "volume-pool-'
                          'manage db sync" (the code needs revision %s).'
                          % head)
        standing = migration.state(current)
        if standing == migration.OLDER:
            return Result(Code.FAILURE,
                          'The database is at revision %s, the code needs '
                          '%s; run "volume-pool-manage db sync".'
                          % (current, head))
        if standing == migration.NEWER:
            return Result(Code.WARNING,
                          'The database is at revision %s, newer than this '
                          'code (%s): a manager of this code runs on it '
                          'during a rolling upgrade; upgrade it next.'
                          % (current, head))
        return Result(Code.SUCCESS, 'Schema at revision %s.' % head)

    def _cinder(self):
        """A Cinder handle, or the Result that says why there is none."""
        try:
            return vp_cinder.Cinder(CONF), None
        except exception.ConfigError as exc:
            return None, Result(Code.FAILURE, str(exc))

    def _check_cinder_credentials(self):
        cinder, failed = self._cinder()
        if failed:
            return failed
        try:
            cinder.list_volumes(_PROBE_TAG)
        except exception.VolumePoolException as exc:
            return Result(Code.FAILURE,
                          'The [cinder] credentials or endpoint do not '
                          'work: %s' % exc)
        return Result(Code.SUCCESS, 'Cinder answered an authenticated '
                                    'request.')

    def _check_pool_snapshots(self):
        try:
            specs = pool_spec.load_specs(CONF)
        except exception.ConfigError as exc:
            return Result(Code.FAILURE, str(exc))
        if not specs:
            return Result(Code.WARNING, '[volume_pool] enabled_pools is '
                                        'empty: the service has nothing to '
                                        'do.')
        cinder, failed = self._cinder()
        if failed:
            return failed
        problems = []
        for name, spec in sorted(specs.items()):
            try:
                snapshot = cinder.get_snapshot(spec.snapshot_id)
            except exception.SnapshotNotFound:
                problems.append('pool %s: snapshot %s does not exist'
                                % (name, spec.snapshot_id))
                continue
            except exception.VolumePoolException as exc:
                problems.append('pool %s: %s' % (name, exc))
                continue
            if snapshot['status'] != 'available':
                problems.append('pool %s: snapshot %s is %s, not available'
                                % (name, spec.snapshot_id,
                                   snapshot['status']))
        if problems:
            return Result(Code.FAILURE, '; '.join(problems) + '.')
        return Result(Code.SUCCESS, 'The snapshots of %d pools are '
                                    'available.' % len(specs))

    def _check_coordination(self):
        url = CONF.coordination.backend_url
        if not url:
            return Result(Code.SUCCESS, 'No [coordination] backend_url: '
                                        'single-manager mode.')
        outcome = {}
        # tooz retries a refused connection for about a minute and a
        # running thread cannot be cancelled: probe on a daemon thread and
        # give the answer after COORDINATION_TIMEOUT at the latest.
        probe = threading.Thread(target=_probe_coordination,
                                 args=(url, CONF.host, outcome),
                                 name='coordination-probe', daemon=True)
        probe.start()
        probe.join(COORDINATION_TIMEOUT)
        if probe.is_alive():
            return Result(Code.FAILURE,
                          'The coordination backend did not answer within '
                          '%d s.' % COORDINATION_TIMEOUT)
        if 'error' in outcome:
            return Result(Code.FAILURE,
                          'The coordination backend is unreachable: %s'
                          % outcome['error'])
        return Result(Code.SUCCESS, 'The coordination backend answers.')

    # The three below read the database _check_database configured.

    def _check_stranded_clusters(self):
        try:
            found = clusters.stranded_warnings(
                CONF.cluster, CONF.volume_pool.service_down_time)
        except DATABASE_ERRORS as exc:
            return _unreadable(exc)
        if found:
            return Result(Code.WARNING, ' '.join(
                text[0].upper() + text[1:] for text in found))
        return Result(Code.SUCCESS, 'No other cluster has volumes in the '
                                    'table without a live manager.')

    def _check_removed_pools(self):
        try:
            configured = set(pool_spec.load_specs(CONF))
        except exception.ConfigError as exc:
            return Result(Code.FAILURE, str(exc))
        try:
            counts = db_api.count_by_pool(CONF.cluster or None)
        except DATABASE_ERRORS as exc:
            return _unreadable(exc)
        held = {name: sum(sum(by_status.values())
                          for by_status in by_snapshot.values())
                for name, by_snapshot in counts.items()
                if name not in configured}
        if held:
            return Result(Code.WARNING, ' '.join(
                'Pool %s is not in [volume_pool] enabled_pools and still '
                'holds %d volumes: they are kept until "volume-pool-manage '
                'pool drain %s" (or put it back).' % (name, count, name)
                for name, count in sorted(held.items())))
        return Result(Code.SUCCESS, 'Every pool with volumes is '
                                    'configured.')

    def _check_shared_cluster(self):
        if CONF.coordination.backend_url:
            return Result(Code.SUCCESS, 'The managers of the cluster share '
                                        'its pools over the coordination '
                                        'backend.')
        try:
            warning = clusters.coordination_warning(CONF)
        except DATABASE_ERRORS as exc:
            return _unreadable(exc)
        if warning:
            return Result(Code.WARNING, warning)
        return Result(Code.SUCCESS, 'At most one live manager in this '
                                    'cluster: no coordination backend '
                                    'needed.')

    _upgrade_checks = (
        ('Database schema', _check_database),
        ('Cinder credentials', _check_cinder_credentials),
        ('Pool snapshots', _check_pool_snapshots),
        ('Coordination backend', _check_coordination),
        ('Removed pools', _check_removed_pools),
        ('Stranded clusters', _check_stranded_clusters),
        ('Managers sharing a cluster', _check_shared_cluster),
    )


def _probe_coordination(url, host, outcome):
    """Top of the probe's thread: record why the backend does not answer;
    anything but the backend's own errors is also logged with its
    traceback (a bug)."""
    try:
        _probe(url, ('%s-upgrade-check' % host).encode())
    except coordination.BACKEND_ERRORS as exc:
        outcome['error'] = _one_line(exc)
    except Exception as exc:
        LOG.exception('The coordination probe failed')
        outcome['error'] = _one_line(exc)


def _probe(url, member):
    """Join the backend, list its groups, leave."""
    coordinator = tooz_coordination.get_coordinator(url, member)
    coordinator.start()
    try:
        coordinator.get_groups().get(timeout=COORDINATION_TIMEOUT)
    finally:
        try:
            coordinator.stop()
        except coordination.BACKEND_ERRORS as exc:
            LOG.debug('Leaving the coordination backend failed: %s', exc)


# Seconds ``health`` waits for the manager's answer by default.
HEALTH_TIMEOUT = 10
EXIT_HEALTHY, EXIT_UNHEALTHY, EXIT_CONFIG = 0, 1, 2
# No broker to ask through: not the manager's verdict.
EXIT_BROKER_UNREACHABLE = 3


def health():
    """Ping one manager; print its health record; 0 if it serves."""
    options = CONF.command
    host = options.manager or CONF.host
    try:
        if not manage_rpc.transport_url():
            raise exception.ConfigError(
                reason='[DEFAULT] transport_url is not set: health asks '
                       'the manager over RPC')
        manage_rpc.check_not_in_process()
    except exception.ConfigError as exc:
        sys.stderr.write('volume-pool-status: %s\n' % exc)
        return EXIT_CONFIG
    with manage_rpc.rpc_transport() as transport:
        try:
            record = rpcapi.VolumePoolAPI(transport).ping(
                vp_context.get_admin_context(), host, timeout=options.timeout)
        except exception.BrokerRefused as exc:
            sys.stderr.write('volume-pool-status: %s\n'
                             % exception.first_line(exc))
            return EXIT_CONFIG
        except exception.BrokerUnreachable as exc:
            print('Cannot ask manager %s: %s' % (host,
                                                 exception.first_line(exc)))
            return EXIT_BROKER_UNREACHABLE
        except messaging.MessagingTimeout:
            print('Manager %s did not answer within %s s: it is down, not '
                  'serving, or not reachable over the message queue.'
                  % (host, options.timeout))
            return EXIT_UNHEALTHY
        except (messaging.MessagingException,
                exception.VolumePoolException) as exc:
            print('Cannot ask manager %s: %s' % (host, _one_line(exc)))
            return EXIT_UNHEALTHY
    if options.json:
        print(json.dumps(record, indent=2, sort_keys=True))
    else:
        _print_health(record)
    return (EXIT_UNHEALTHY if record['status'] == 'failed'
            else EXIT_HEALTHY)


def _print_health(record):
    print('Manager %s (cluster %s): %s' % (
        record['host'], record['cluster'] or '-', record['status']))
    checks = record['checks']
    for name in ('rpc', 'database', 'coordination'):
        check = checks[name]
        print('  %-13s %s%s' % (name, 'ok' if check['ok'] else 'FAILED',
                                ': %s' % check['error']
                                if check.get('error') else ''))
    for task, check in sorted(checks['periodic'].items()):
        print('  %-13s %s (last finished: %s)' % (
            task, 'ok' if check['ok'] else 'LATE',
            _when(check['last_run_at'])))


def _when(timestamp):
    if timestamp is None:
        return 'not yet'
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(timestamp))


def _add_commands(subparsers):
    # oslo.upgradecheck's own "upgrade check [--json]", then "health".
    checks = Checks()
    upgrade = subparsers.add_parser('upgrade', help='Check that this '
                                    'deployment can run this release.')
    upgrade.add_argument('check')
    upgrade.set_defaults(action_fn=checks.check)
    upgrade.add_argument('--json', action='store_true',
                         help='Print the results as JSON.')
    probe = subparsers.add_parser(
        'health', help='Ask one manager over RPC whether it is healthy; '
                       'exit 0 when ok or degraded, 1 when failed or '
                       'silent, 2 bad configuration or credentials, 3 '
                       'no message broker within --timeout.')
    probe.add_argument('--host', dest='manager', default=None,
                       help='The manager to ask (its [DEFAULT] host); '
                            'default: this machine\'s host option.')
    probe.add_argument('--timeout', type=config.at_least(1),
                       default=HEALTH_TIMEOUT,
                       help='Seconds to wait for the answer (default: '
                            '%(default)s).')
    probe.add_argument('--json', action='store_true',
                       help='Print the health record as JSON.')
    probe.set_defaults(action_fn=health)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    CONF.register_cli_opt(cfg.SubCommandOpt('command',
                                            handler=_add_commands))
    try:
        config.parse_args(argv, description=__doc__.splitlines()[0])
    except cfg.Error as exc:
        sys.stderr.write('volume-pool-status: %s\n' % exc)
        return 2
    # upgradecheck.main() would parse the config itself, without our
    # logging options and defaults; its output reads --json from here.
    upgradecheck.CONF = CONF
    return upgradecheck.run(CONF)


if __name__ == '__main__':
    sys.exit(main())
