"""volume-pool-manage: the operator's CLI (database, pools).

Works on the database and Cinder directly, like nova-manage, so it needs no
running manager.  Exit codes: 0 done, 1 the action failed, 2 bad usage or
configuration.
"""

import datetime
import json
import sys

from oslo_config import cfg

from volume_pool import cinder as vp_cinder
from volume_pool import config
from volume_pool import coordination
from volume_pool import exception
from volume_pool import pools
from volume_pool import reconcile
from volume_pool import replenish
from volume_pool.db import api as db_api
from volume_pool.db import migration
from volume_pool.db import models

CONF = config.CONF

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


# -- output -----------------------------------------------------------------

def _print_table(columns, rows):
    if not rows:
        print('(none)')
        return
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells))
              for i, c in enumerate(columns)]
    line = '+' + '+'.join('-' * (w + 2) for w in widths) + '+'
    print(line)
    print(_table_row(columns, widths))
    print(line)
    for row in cells:
        print(_table_row(row, widths))
    print(line)


def _table_row(values, widths):
    return '| ' + ' | '.join(
        v.ljust(w) for v, w in zip(values, widths, strict=True)) + ' |'


def _cell(value):
    return '' if value is None else str(value)


def _emit(columns, rows, fmt):
    if fmt == 'json':
        print(json.dumps(rows, indent=2, sort_keys=True, default=str))
    else:
        _print_table(columns, rows)


# -- db ------------------------------------------------------------------

def db_sync():
    migration.upgrade(CONF.command.revision)
    print('Database is at revision %s.' % migration.version())
    return EXIT_OK


def db_version():
    print(migration.version() or 'None (run "volume-pool-manage db sync")')
    return EXIT_OK


# -- pools ---------------------------------------------------------------

POOL_COLUMNS = ['name', 'cluster', 'target', 'ready', 'creating',
                'claiming', 'deleting', 'snapshot_id']
VOLUME_COLUMNS = ['volume_id', 'name', 'status', 'snapshot_id', 'size',
                  'host', 'created_at']


def _pool_rows(specs):
    cluster = CONF.cluster or None
    counts = db_api.count_by_pool(cluster)
    rows = []
    for name in sorted(set(specs) | set(counts)):
        spec = specs.get(name)
        totals = {}
        for by_status in counts.get(name, {}).values():
            for status, count in by_status.items():
                totals[status] = totals.get(status, 0) + count
        ready, creating = (replenish.pool_counts(counts, spec) if spec
                           else (0, 0))
        rows.append({
            'name': name, 'cluster': cluster or '-',
            'target': spec.target if spec else '(removed)',
            'ready': ready, 'creating': creating,
            'claiming': totals.get(models.CLAIMING, 0),
            'deleting': totals.get(models.DELETING, 0),
            'snapshot_id': spec.snapshot_id if spec else '-'})
    return rows


def pool_list():
    _emit(POOL_COLUMNS, _pool_rows(pools.load_pools(CONF)),
          CONF.command.format)
    return EXIT_OK


def _known_pool(name):
    specs = pools.load_pools(CONF)
    if name not in specs and name not in db_api.pool_names(
            CONF.cluster or None):
        raise exception.PoolNotFound(pool=name,
                                     cluster=CONF.cluster or '(none)')
    return specs.get(name)


def pool_show():
    name = CONF.command.pool_name
    _known_pool(name)
    rows = [{c: getattr(row, c) for c in VOLUME_COLUMNS}
            for row in db_api.get_rows(CONF.cluster or None, pool=name)]
    _emit(VOLUME_COLUMNS, rows, CONF.command.format)
    return EXIT_OK


def pool_drain():
    name = CONF.command.pool_name
    spec = _known_pool(name)
    report = reconcile.drain_pool(vp_cinder.Cinder(CONF), name,
                                  CONF.cluster or None)
    print('Pool %s: %d volumes deleted, %d deletes failed (retried by the '
          'next sync).' % (name, report.deleted, report.errors))
    if spec is not None and spec.target:
        print('Note: replenish refills the pool to its target (%d); set '
              'target = 0 in [pool:%s] to keep it empty.'
              % (spec.target, name))
    return EXIT_FAILED if report.errors else EXIT_OK


# -- clusters ------------------------------------------------------------

CLUSTER_COLUMNS = ['cluster', 'host', 'last_seen', 'started_at']


def cluster_list():
    if not CONF.coordination.backend_url:
        raise exception.ConfigError(
            reason='[coordination] backend_url is not set: without it each '
                   'manager works alone and there is no membership to list')
    wanted = [CONF.command.only] if CONF.command.only else None
    listing = coordination.list_clusters(CONF, wanted)
    rows = []
    for cluster, members in listing.items():
        for member in members:
            rows.append({
                'cluster': cluster, 'host': member['host'],
                'last_seen': _iso(member.get('last_seen')),
                'started_at': _iso(member.get('started_at'))})
    _emit(CLUSTER_COLUMNS, rows, CONF.command.format)
    return EXIT_OK


def _iso(stamp):
    if stamp is None:
        return None
    return datetime.datetime.fromtimestamp(
        stamp, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


# -- parser --------------------------------------------------------------

def _add_format(parser):
    parser.add_argument('--format', choices=('table', 'json'),
                        default='table', help='Output format.')


def add_command_parsers(subparsers):
    db = subparsers.add_parser('db', help='Database schema commands.')
    db_actions = db.add_subparsers(dest='action', metavar='ACTION')
    db_actions.required = True
    sync = db_actions.add_parser(
        'sync', help='Create or upgrade the schema to the newest revision.')
    sync.add_argument('--revision', default='head',
                      help='Target alembic revision (default: head).')
    sync.set_defaults(func=db_sync)
    ver = db_actions.add_parser(
        'version', help='Print the schema revision of the database.')
    ver.set_defaults(func=db_version)

    pool = subparsers.add_parser('pool', help='Inspect and drain pools.')
    pool_actions = pool.add_subparsers(dest='action', metavar='ACTION')
    pool_actions.required = True
    lst = pool_actions.add_parser(
        'list', help='One line per pool: target, ready, creating, claiming, '
                     'deleting and snapshot.')
    _add_format(lst)
    lst.set_defaults(func=pool_list)
    show = pool_actions.add_parser('show', help='The volumes of one pool.')
    show.add_argument('pool_name', metavar='NAME', help='Pool name.')
    _add_format(show)
    show.set_defaults(func=pool_show)
    drain = pool_actions.add_parser(
        'drain', help='Delete the ready volumes of a pool in Cinder.')
    drain.add_argument('pool_name', metavar='NAME', help='Pool name.')
    drain.set_defaults(func=pool_drain)

    cluster = subparsers.add_parser(
        'cluster', help='Managers alive in each cluster (tooz membership).')
    cluster_actions = cluster.add_subparsers(dest='action', metavar='ACTION')
    cluster_actions.required = True
    clusters = cluster_actions.add_parser(
        'list', help='Every cluster, its live managers and when each last '
                     'reported (needs [coordination] backend_url).')
    clusters.add_argument('--cluster', dest='only', metavar='CLUSTER',
                          help='Only this cluster.')
    _add_format(clusters)
    clusters.set_defaults(func=cluster_list)


command_opt = cfg.SubCommandOpt('command', title='Commands',
                                help='Available commands',
                                handler=add_command_parsers)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    CONF.register_cli_opt(command_opt)
    try:
        config.parse_args(argv, description=__doc__.splitlines()[0])
    except cfg.Error as exc:
        sys.stderr.write('volume-pool-manage: %s\n' % exc)
        return EXIT_USAGE
    try:
        db_api.configure(CONF)
        return CONF.command.func()
    except exception.ConfigError as exc:
        sys.stderr.write('volume-pool-manage: %s\n' % exc)
        return EXIT_USAGE
    except exception.VolumePoolException as exc:
        sys.stderr.write('volume-pool-manage: %s\n' % exc)
        return EXIT_FAILED
    except Exception as exc:  # a database or network error: one line
        sys.stderr.write('volume-pool-manage: %s: %s\n'
                         % (exc.__class__.__name__, exc))
        return EXIT_FAILED


if __name__ == '__main__':
    sys.exit(main())
