"""volume-pool-manage: the operator's CLI (database, pools, claims).

Works on the database and Cinder directly, like nova-manage, so most
commands need no running manager; ``claim`` and ``pool refill`` go to the
managers over RPC, as the controller does, and ``pool list`` asks them for
their live view when ``transport_url`` is set.  Exit codes: 0 done, 1 the
action failed, 2 bad usage or configuration, or an action refused because
it would race with a live manager.
"""

import datetime
import json
import sys

from alembic import util as alembic_util
from oslo_config import cfg
import oslo_messaging as messaging
import yaml

from volume_pool import cinder as vp_cinder
from volume_pool import clusters
from volume_pool import config
from volume_pool import context as vp_context
from volume_pool import coordination
from volume_pool import exception
from volume_pool import pool_spec
from volume_pool import rpc
from volume_pool import rpcapi
from volume_pool import shrink
from volume_pool import sizing
from volume_pool.db import api as db_api
from volume_pool.db import migration
from volume_pool.db import models
from volume_pool.db import receipts as db_receipts

CONF = config.CONF

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# Seconds an operator waits for the managers: a status question must not
# hang a terminal or a script.
STATUS_TIMEOUT = 10
NO_ANSWER = '(no manager answered)'
NO_TRANSPORT = '(not asked: no transport_url)'
# Seconds "cluster drain" waits for Cinder to delete the volumes.
DRAIN_TIMEOUT = 120

# What a command meets when a service it uses is away or refuses: the
# database (or its driver is not installed, or alembic does not know the
# revision asked for), the broker or a manager over RPC, the coordination
# backend.  One line each; anything else is a bug and keeps its traceback.
SERVICE_ERRORS = (db_api.DATABASE_ERRORS + coordination.BACKEND_ERRORS +
                  (ImportError, alembic_util.CommandError,
                   messaging.MessagingException))


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
    elif fmt == 'yaml':
        # Through JSON first: plain types only, so safe_load reads it back.
        print(yaml.safe_dump(json.loads(json.dumps(rows, default=str)),
                             default_flow_style=False, sort_keys=True),
              end='')
    else:
        _print_table(columns, rows)


def _emit_one(record, fmt):
    """One record: a Field/Value table, or the object itself."""
    if fmt == 'table':
        _print_table(['field', 'value'],
                     [{'field': k, 'value': v}
                      for k, v in sorted(record.items())])
    else:
        _emit(None, record, fmt)


# -- RPC to the managers -------------------------------------------------

def _transport_url():
    """``[DEFAULT] transport_url`` if the operator set it, else None.

    oslo.messaging's own default (``rabbit://`` on localhost) does not
    count: a CLI must not talk to whatever broker happens to run there.
    """
    rpc.check_transport_url(CONF)  # registers the option; one line if bad
    where = CONF.get_location('transport_url')
    if where is None or where.location == cfg.Locations.opt_default:
        return None
    return CONF.transport_url


def _rpc_call(call, timeout, project_id=None):
    """Run ``call(api, ctxt)`` on a transport that lives for this call.

    ``project_id``: the caller's project the claim keys belong to.

    The transport is built on the global CONF: oslo.messaging registers
    some of its options there only (``[oslo_messaging_tracing]``).
    """
    if not _transport_url():
        raise exception.ConfigError(
            reason='[DEFAULT] transport_url is not set: this command talks '
                   'to the managers over RPC')
    transport = rpcapi.get_transport(CONF)
    try:
        api = rpcapi.VolumePoolAPI(transport, timeout=timeout)
        return call(api, vp_context.RequestContext(project_id=project_id))
    except rpcapi.ClaimTimedOut:
        raise  # names the key to show or release the claim with
    except messaging.MessagingTimeout:
        raise exception.ServiceUnavailable(
            reason='no volume-pool-manager answered within %d s' % timeout)
    finally:
        transport.cleanup()


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
                'claiming', 'deleting', 'reason', 'snapshot_id']
VOLUME_COLUMNS = ['volume_id', 'name', 'status', 'snapshot_id', 'size',
                  'host', 'created_at']


def _pool_rows(specs, reason):
    cluster = CONF.cluster or None
    counts = db_api.count_by_pool(cluster)
    rows = []
    for name in sorted(set(specs) | set(counts)):
        spec = specs.get(name)
        pool = sizing.counts_of(name, spec, counts)
        rows.append({
            'name': name, 'cluster': cluster or '-',
            'target': (('auto' if spec.auto else spec.target) if spec
                       else '(removed)'),
            'ready': pool.ready, 'creating': pool.creating,
            'claiming': pool.claiming, 'deleting': pool.deleting,
            'reason': reason,
            'snapshot_id': spec.snapshot_id if spec else '-'})
    return rows


def _live_pool_rows():
    """The managers' own view (reason, backoff, claims), or None."""
    if not _transport_url():
        return None
    cluster = CONF.cluster or None
    try:
        rows = _rpc_call(lambda api, ctxt: api.pool_status(
            ctxt, cluster=cluster), CONF.command.timeout)
    except (exception.VolumePoolException,
            messaging.MessagingException) as exc:
        sys.stderr.write('volume-pool-manage: pool_status over RPC failed '
                         '(%s); showing the database counts.\n'
                         % exception.first_line(exc))
        return None
    for row in rows:
        row['cluster'] = row.get('cluster') or '-'
        row['snapshot_id'] = row.get('snapshot_id') or '-'
    return rows


def pool_list():
    specs = pool_spec.load_specs(CONF)
    rows = _live_pool_rows()
    if rows is None:
        reason = NO_ANSWER if _transport_url() else NO_TRANSPORT
        rows = _pool_rows(specs, reason)
    _emit(POOL_COLUMNS, rows, CONF.command.format)
    _cluster_notes()
    return EXIT_OK


def _cluster_notes():
    """Notes on stderr (the table or JSON stays clean on stdout): clusters
    whose volumes nobody syncs, managers that share this cluster with no
    coordination backend."""
    try:
        notes = clusters.stranded_warnings(
            CONF.cluster, CONF.volume_pool.service_down_time)
        shared = clusters.coordination_warning(CONF)
    except db_api.DATABASE_ERRORS as exc:  # the notes are extra
        sys.stderr.write('volume-pool-manage: could not look for clusters '
                         'without a live manager: %s\n'
                         % exception.first_line(exc))
        return
    for note in notes + ([shared] if shared else []):
        sys.stderr.write('Note: %s\n' % note)


def pool_refill():
    name, cluster = CONF.command.pool_name, CONF.command.for_cluster
    queued = _rpc_call(lambda api, ctxt: api.refill(ctxt, name,
                                                    cluster=cluster),
                       CONF.command.timeout)
    print('Pool %s: %d volume creates queued.' % (name, queued))
    return EXIT_OK


# -- claim ---------------------------------------------------------------

CLAIM_COLUMNS = ['claim_key', 'state', 'pool', 'volume_id', 'source',
                 'project_id', 'lease_expires_at', 'created_at']


def claim_take():
    args = CONF.command
    kwargs = {'name': args.volume_name, 'cluster': args.for_cluster,
              'create_on_miss': not args.no_create_on_miss}
    if args.project_id:
        kwargs['project_id'] = args.project_id
    if args.key:
        kwargs['claim_key'] = args.key
    volume = _rpc_call(lambda api, ctxt: api.claim(
        ctxt, args.pool_name, **kwargs), args.timeout,
        project_id=args.caller_project)
    _emit_one(volume, args.format)
    return EXIT_OK


def claim_list():
    args = CONF.command
    receipts = db_receipts.listing(CONF.cluster or None,
                                   states=args.state or None,
                                   pool=args.pool, limit=args.limit)
    _emit(CLAIM_COLUMNS, [db_receipts.view(r) for r in receipts],
          args.format)
    return EXIT_OK


def claim_show():
    args = CONF.command
    receipt = db_receipts.get(CONF.cluster or None, args.caller_project,
                              args.claim_key)
    if receipt is None:
        raise exception.ClaimNotFound(claim_key=args.claim_key)
    record = db_receipts.view(receipt)
    record['answer'] = db_receipts.answer(receipt)
    _emit_one(record, args.format)
    return EXIT_OK


def _claim_action(method):
    """``claim release`` / ``claim confirm``: one RPC call by key."""
    def run():
        args = CONF.command
        record = _rpc_call(lambda api, ctxt: getattr(api, method)(
            ctxt, args.claim_key, cluster=args.for_cluster), args.timeout,
            project_id=args.caller_project)
        _emit_one(record, args.format)
        return EXIT_OK
    return run


claim_release = _claim_action('release')
claim_confirm = _claim_action('confirm')


def _known_pool(name):
    specs = pool_spec.load_specs(CONF)
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
    report = shrink.drain_pool(vp_cinder.Cinder(CONF), name,
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


def cluster_adopt():
    old = clusters.name_of(clusters.key_of(CONF.command.old_cluster))
    report = clusters.adopt(vp_cinder.Cinder(CONF), old, CONF.cluster,
                            CONF.volume_pool.service_down_time)
    new = clusters.name_of(clusters.key_of(CONF.cluster))
    print('Cluster %s adopted into %s: %d rows moved, %d claim receipts '
          'moved, %d volumes re-tagged, %d re-tags failed.'
          % (old, new, report.rows, report.receipts, report.retagged,
             len(report.failed)))
    if report.receipts_kept:
        print('Note: %d claim receipts stay in cluster %s: cluster %s '
              'already uses their keys.' % (report.receipts_kept, old, new))
    for volume_id, reason in report.failed:
        sys.stderr.write('volume-pool-manage: re-tagging volume %s failed: '
                         '%s\n' % (volume_id, reason))
    if report.failed:
        print('Run the command again: it re-tags what is left (the sync '
              'of cluster %s also re-tags the volumes of its rows).' % new)
    return EXIT_FAILED if report.failed else EXIT_OK


def cluster_drain():
    old = clusters.name_of(clusters.key_of(CONF.command.old_cluster))
    timeout = CONF.command.timeout
    report = clusters.drain(vp_cinder.Cinder(CONF), old, CONF.cluster,
                            CONF.volume_pool.service_down_time, timeout)
    print('Cluster %s: %d volumes deleted, %d rows dropped, %d volumes in '
          'use released, %d deletes failed, %d volumes still in Cinder '
          'after %d s.' % (old, report.deleted, report.dropped,
                           report.released, report.failed, report.pending,
                           timeout))
    if report.spared:
        print('Note: %d volumes tagged with cluster %s and no row are in '
              'use or claimed: left alone.' % (report.spared, old))
    if report.held:
        print('%d rows held by claims of stopped managers: adopt the '
              'cluster to settle them ("volume-pool-manage cluster adopt '
              '%s").' % (report.held, old))
    if not report.complete:
        print('Left in cluster %s: %d rows in the table, %d volumes in '
              'Cinder; run the command again.'
              % (old, report.rows_left, report.pending + report.failed))
        return EXIT_FAILED
    return EXIT_OK


def _iso(stamp):
    if stamp is None:
        return None
    return datetime.datetime.fromtimestamp(
        stamp, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


# -- parser --------------------------------------------------------------

def _add_format(parser):
    parser.add_argument(
        '--format', choices=('table', 'json', 'yaml'), default='table',
        help='Output format: a table to read, JSON or YAML to script '
             '(default: table).')


def _add_timeout(parser, default):
    parser.add_argument(
        '--timeout', type=int, default=default, metavar='SECONDS',
        help='How long to wait for a manager to answer (default: %d).'
             % default)


def _parser(actions, name, help, description):
    """A subcommand whose --help says what it does and when to use it."""
    return actions.add_parser(name, help=help,
                              description=help + ' ' + description)


def add_command_parsers(subparsers):
    db = _parser(subparsers, 'db', 'Database schema commands.',
                 'Run "db sync" after installing and after every upgrade: '
                 'the manager refuses to start on an older schema.')
    db_actions = db.add_subparsers(dest='action', metavar='ACTION')
    db_actions.required = True
    sync = _parser(db_actions, 'sync',
                   'Create or upgrade the schema to the newest revision.',
                   'Safe to run again; stop nothing for it, the managers '
                   'check the revision at start-up only.')
    sync.add_argument('--revision', default='head',
                      help='Target alembic revision (default: head).')
    sync.set_defaults(func=db_sync)
    ver = _parser(db_actions, 'version',
                  'Print the schema revision of the database.',
                  'Compare it with the code\'s newest revision before an '
                  'upgrade (volume-pool-status upgrade check does).')
    ver.set_defaults(func=db_version)

    pool = _parser(subparsers, 'pool', 'Inspect, refill and drain pools.',
                   'What an operator looks at first when a claim was slow '
                   'or a pool is short.')
    pool_actions = pool.add_subparsers(dest='action', metavar='ACTION')
    pool_actions.required = True
    lst = _parser(
        pool_actions, 'list',
        'One line per pool: target, ready, creating, claiming, deleting, '
        'why it is short, and its snapshot.',
        'With transport_url set the managers are asked (pool_status over '
        'RPC) and "reason" says why a pool is short; otherwise, or if no '
        'manager answers, the counts come from the database and reason '
        'says so.')
    _add_format(lst)
    _add_timeout(lst, STATUS_TIMEOUT)
    lst.set_defaults(func=pool_list)
    show = _parser(pool_actions, 'show', 'The volumes of one pool.',
                   'Use it to find a volume stuck in creating or deleting, '
                   'and its age.')
    show.add_argument('pool_name', metavar='NAME', help='Pool name.')
    _add_format(show)
    show.set_defaults(func=pool_show)
    refill = _parser(
        pool_actions, 'refill',
        'Replenish a pool now instead of at the next periodic run.',
        'Also resumes a pool paused after repeated failed creates, once '
        'the cause is fixed.  Needs a running manager (RPC refill); prints '
        'how many creates were queued.')
    refill.add_argument('pool_name', metavar='NAME', help='Pool name.')
    refill.add_argument('--cluster', dest='for_cluster', metavar='CLUSTER',
                        help='The cluster whose pool to refill (default: '
                             'any manager\'s own cluster).')
    _add_timeout(refill, 60)
    refill.set_defaults(func=pool_refill)
    drain = _parser(
        pool_actions, 'drain', 'Delete the ready volumes of a pool in '
                               'Cinder.',
        'Before removing a pool or to free Cinder quota; replenish refills '
        'it unless its target is 0.')
    drain.add_argument('pool_name', metavar='NAME', help='Pool name.')
    drain.set_defaults(func=pool_drain)

    _add_claim_parsers(subparsers)

    cluster = _parser(
        subparsers, 'cluster',
        'Managers alive in each cluster; adopt or drain a renamed one.',
        'Check it when a clustered claim fails with NoLiveManager, and '
        'after changing [DEFAULT] cluster, whose old name keeps its '
        'volumes until adopted or drained.')
    cluster_actions = cluster.add_subparsers(dest='action', metavar='ACTION')
    cluster_actions.required = True
    members = _parser(
        cluster_actions, 'list',
        'Every cluster, its live managers and when each last reported.',
        'Needs [coordination] backend_url; a manager missing here does '
        'not replenish its share of the pools.')
    members.add_argument('--cluster', dest='only', metavar='CLUSTER',
                         help='Only this cluster.')
    _add_format(members)
    members.set_defaults(func=cluster_list)
    _add_rename_parsers(cluster_actions)


def _add_rename_parsers(cluster_actions):
    """``cluster adopt`` and ``cluster drain``: the volumes of a cluster
    name no manager uses any more."""
    old_help = ('The old cluster name; "default" is the cluster of '
                'managers with no [DEFAULT] cluster.')
    adopt = _parser(
        cluster_actions, 'adopt',
        'Move the volumes of cluster OLD into this manager\'s cluster.',
        'After changing [DEFAULT] cluster: the rows, claim receipts and '
        'Cinder tags of the old name move to the new one, whose sync '
        'settles them (claims of stopped managers included).  Refused '
        'while a manager of OLD is alive; safe to run again.')
    adopt.add_argument('old_cluster', metavar='OLD', help=old_help)
    adopt.set_defaults(func=cluster_adopt)
    drain = _parser(
        cluster_actions, 'drain',
        'Delete the volumes of cluster OLD in Cinder, then their rows.',
        'Instead of adopt, when the old name\'s volumes are not wanted: '
        'waits for Cinder to delete them; volumes in use, claimed or held '
        'by a claim stay.  Refused while a manager of OLD is alive; safe to '
        'run again.')
    drain.add_argument('old_cluster', metavar='OLD', help=old_help)
    drain.add_argument(
        '--timeout', type=int, default=DRAIN_TIMEOUT, metavar='SECONDS',
        help='How long to wait for Cinder to delete the volumes (default: '
             '%d).' % DRAIN_TIMEOUT)
    drain.set_defaults(func=cluster_drain)


def _add_caller_project(parser):
    parser.add_argument(
        '--caller-project', metavar='PROJECT',
        help='The project of the caller that made the claim: claim keys '
             'are unique per cluster and caller\'s project (default: '
             'none, as for a caller without a project).')


def _add_claim_parsers(subparsers):
    claim = _parser(
        subparsers, 'claim', 'Claim by hand; list, show, confirm and '
                             'release claims.',
        'Every claim leaves a receipt: its key, state (claiming, leased, '
        'used, releasing, released, returning, returned), volume and '
        'lease.')
    actions = claim.add_subparsers(dest='action', metavar='ACTION')
    actions.required = True
    take = _parser(
        actions, 'take',
        'Claim a volume from a pool, as the controller does.',
        'Goes through the same RPC call (volume_pool.rpcapi claim) and '
        'prints the claimed volume: use it to test a deployment end to end '
        'or to hand a volume to somebody by hand.  Needs transport_url.')
    take.add_argument('pool_name', metavar='POOL',
                      help='Pool (snapshot type) to claim from.')
    # dest: "name" and "cluster" are taken in oslo.config's namespace.
    take.add_argument('--name', dest='volume_name', metavar='NAME',
                      help='Cinder name of the claimed volume.')
    take.add_argument('--cluster', dest='for_cluster', metavar='CLUSTER',
                      help='Claim from this cluster\'s managers.')
    take.add_argument('--project-id', metavar='PROJECT',
                      help='Hand the volume to this project (a Cinder '
                           'volume transfer; RPC 1.3).')
    take.add_argument('--key', metavar='KEY',
                      help='Claim key (RPC 1.4): running the command again '
                           'with the same key prints the same volume.  '
                           'Default: a new key.')
    take.add_argument('--no-create-on-miss', action='store_true',
                      help='Fail with PoolEmpty instead of creating a '
                           'volume when the pool has none ready.')
    _add_caller_project(take)
    _add_format(take)
    _add_timeout(take, 60)
    take.set_defaults(func=claim_take)

    lst = _parser(
        actions, 'list', 'The claim receipts of this cluster, newest first.',
        'Read from the database; no manager needed.  A claim stuck in '
        'claiming, releasing or returning is settled by the next sync.')
    lst.add_argument('--state', action='append',
                     choices=models.RECEIPT_STATES,
                     help='Only claims in this state (repeatable).')
    lst.add_argument('--pool', metavar='POOL', help='Only this pool.')
    lst.add_argument('--limit', type=int, default=100, metavar='N',
                     help='At most N claims (default: %(default)s).')
    _add_format(lst)
    lst.set_defaults(func=claim_list)

    show = _parser(actions, 'show', 'One claim\'s receipt and answer.',
                   'What the caller was answered, and where the volume is.')
    show.add_argument('claim_key', metavar='KEY', help='Claim key.')
    _add_caller_project(show)
    _add_format(show)
    show.set_defaults(func=claim_show)

    for name, func, text, more in (
            ('release', claim_release,
             'Give a claimed volume back to its pool, if it is unused.',
             'The controller\'s undo, by hand (RPC release): a volume '
             'attached or handed to another project stays where it is.'),
            ('confirm', claim_confirm,
             'Confirm a claim: the volume is its caller\'s for good.',
             'Ends the lease, as the controller does once it booted.')):
        action = _parser(actions, name, text, more + '  Needs '
                         'transport_url.')
        action.add_argument('claim_key', metavar='KEY', help='Claim key.')
        action.add_argument('--cluster', dest='for_cluster',
                            metavar='CLUSTER',
                            help='The claim\'s cluster (default: any '
                                 'manager\'s own).')
        _add_caller_project(action)
        _add_format(action)
        _add_timeout(action, 60)
        action.set_defaults(func=func)


command_opt = cfg.SubCommandOpt('command', title='Commands',
                                help='Available commands',
                                handler=add_command_parsers)


def main(argv=None):
    """Run one command; errors of the services it uses are one line.

    Any other error is a bug: it propagates, with its traceback, and the
    exit code is 1.
    """
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
    except (exception.ConfigError, clusters.ClusterRefused) as exc:
        _error(exc)
        return EXIT_USAGE
    except exception.VolumePoolException as exc:
        _error(exc)
        return EXIT_FAILED
    except SERVICE_ERRORS as exc:
        _error(exc, with_class=True)
        return EXIT_FAILED


def _error(exc, with_class=False):
    """One line on stderr.  An error re-raised from a manager carries the
    remote traceback after its message: the operator gets the message."""
    text = exception.first_line(exc)
    if with_class:
        text = '%s: %s' % (exc.__class__.__name__, text)
    sys.stderr.write('volume-pool-manage: %s\n' % text)

if __name__ == '__main__':
    sys.exit(main())
