"""volume-pool-manage: the operator's CLI (database, pools, claims).

Works on the database and Cinder directly, like nova-manage, so most
commands need no running manager; ``claim`` and ``pool refill`` go to the
managers over RPC, as the controller does, and ``pool list`` asks them for
their live view when ``transport_url`` is set.  Exit codes: 0 done, 1 the
action failed, 2 bad usage or configuration (the broker refusing the
transport URL's credentials included), or an action refused because it
would race with a live manager, 3 the message broker could not be reached
within ``--timeout``.
"""

import sys

from oslo_config import cfg
import oslo_messaging as messaging

from volume_pool import clusters
from volume_pool import config
from volume_pool import coordination
from volume_pool import exception
from volume_pool.cmd import manage_claims
from volume_pool.cmd import manage_clusters
from volume_pool.cmd import manage_output
from volume_pool.cmd import manage_pools
from volume_pool.cmd import manage_rpc
from volume_pool.cmd.manage_output import EXIT_BROKER_UNREACHABLE
from volume_pool.cmd.manage_output import EXIT_FAILED
from volume_pool.cmd.manage_output import EXIT_USAGE
from volume_pool.db import api as db_api
from volume_pool.db import models

CONF = config.CONF


# What a command meets when a service it uses is away or refuses: the
# database (or its driver is not installed, or alembic does not know the
# revision asked for), the broker or a manager over RPC, the coordination
# backend.  One line each; anything else is a bug and keeps its traceback.
SERVICE_ERRORS = (db_api.DATABASE_ERRORS + coordination.BACKEND_ERRORS +
                  (ImportError, messaging.MessagingException))


def _service_errors():
    """SERVICE_ERRORS, and alembic's own when a command loaded alembic
    (only the schema's commands do: the others start without it)."""
    loaded = sys.modules.get('alembic.util')
    return SERVICE_ERRORS + ((loaded.CommandError,) if loaded else ())


# -- parser --------------------------------------------------------------

def _add_timeout(parser, default):
    parser.add_argument(
        '--timeout', type=config.at_least(1), default=default,
        metavar='SECONDS',
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
    sync.set_defaults(func=manage_pools.db_sync)
    ver = _parser(db_actions, 'version',
                  'Print the schema revision of the database.',
                  'Compare it with the code\'s newest revision before an '
                  'upgrade (volume-pool-status upgrade check does).')
    ver.set_defaults(func=manage_pools.db_version)

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
    manage_output.add_output_options(lst, manage_pools.POOL_FIELDS,
                                     manage_pools.POOL_COLUMNS)
    _add_timeout(lst, manage_rpc.STATUS_TIMEOUT)
    lst.set_defaults(func=manage_pools.pool_list)
    show = _parser(pool_actions, 'show', 'The volumes of one pool.',
                   'Use it to find a volume stuck in creating or deleting, '
                   'and its age.')
    show.add_argument('pool_name', metavar='NAME', help='Pool name.')
    manage_output.add_output_options(show, manage_pools.VOLUME_COLUMNS,
                                     manage_pools.VOLUME_COLUMNS)
    show.set_defaults(func=manage_pools.pool_show)
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
    refill.set_defaults(func=manage_pools.pool_refill)
    drain = _parser(
        pool_actions, 'drain', 'Delete the ready volumes of a pool in '
                               'Cinder.',
        'Before removing a pool or to free Cinder quota; replenish refills '
        'it unless its target is 0.')
    drain.add_argument('pool_name', metavar='NAME', help='Pool name.')
    drain.set_defaults(func=manage_pools.pool_drain)

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
    manage_output.add_output_options(members,
                                     manage_clusters.CLUSTER_COLUMNS,
                                     manage_clusters.CLUSTER_COLUMNS)
    members.set_defaults(func=manage_clusters.cluster_list)
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
    adopt.set_defaults(func=manage_clusters.cluster_adopt)
    drain = _parser(
        cluster_actions, 'drain',
        'Delete the volumes of cluster OLD in Cinder, then their rows.',
        'Instead of adopt, when the old name\'s volumes are not wanted: '
        'waits for Cinder to delete them; volumes in use, claimed or held '
        'by a claim stay.  Refused while a manager of OLD is alive; safe to '
        'run again.')
    drain.add_argument('old_cluster', metavar='OLD', help=old_help)
    drain.add_argument(
        '--timeout', type=config.at_least(0),
        default=manage_clusters.DRAIN_TIMEOUT,
        metavar='SECONDS',
        help='How long to wait for Cinder to delete the volumes (default: '
             '%d).' % manage_clusters.DRAIN_TIMEOUT)
    drain.set_defaults(func=manage_clusters.cluster_drain)


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
    manage_output.add_output_options(take, manage_claims.CLAIMED_FIELDS)
    _add_timeout(take, 60)
    take.set_defaults(func=manage_claims.claim_take)

    lst = _parser(
        actions, 'list', 'The claim receipts of this cluster, newest first.',
        'Read from the database; no manager needed.  A claim stuck in '
        'claiming, releasing or returning is settled by the next sync.  A '
        'release of a key no claim had used shows as released, with no '
        'volume or pool: a claim with that key takes nothing.')
    lst.add_argument('--state', action='append',
                     choices=models.RECEIPT_STATES,
                     help='Only claims in this state (repeatable).')
    lst.add_argument('--pool', metavar='POOL', help='Only this pool.')
    lst.add_argument('--limit', type=config.at_least(1), default=100,
                     metavar='N',
                     help='At most N claims (default: %(default)s).')
    manage_output.add_output_options(lst, manage_claims.RECEIPT_FIELDS,
                                     manage_claims.CLAIM_COLUMNS)
    lst.set_defaults(func=manage_claims.claim_list)

    show = _parser(actions, 'show', 'One claim\'s receipt and answer.',
                   'What the caller was answered, and where the volume is.')
    show.add_argument('claim_key', metavar='KEY', help='Claim key.')
    _add_caller_project(show)
    manage_output.add_output_options(show, manage_claims.SHOWN_FIELDS)
    show.set_defaults(func=manage_claims.claim_show)

    for name, func, text, more in (
            ('release', manage_claims.claim_release,
             'Give a claimed volume back to its pool, if it is unused.',
             'The controller\'s undo, by hand (RPC release): a volume '
             'attached or handed to another project stays where it is.'),
            ('confirm', manage_claims.claim_confirm,
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
        manage_output.add_output_options(action,
                                         manage_claims.RECEIPT_FIELDS)
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
        manage_output.check_columns(CONF.command)
    except manage_output.UnknownColumn as exc:
        _error(exc)
        return EXIT_USAGE
    try:
        db_api.configure(CONF)
        return CONF.command.func()
    except (exception.ConfigError, clusters.ClusterRefused,
            exception.BrokerRefused) as exc:
        _error(exc)
        return EXIT_USAGE
    except exception.BrokerUnreachable as exc:
        _error(exc, key_of=exc)
        return EXIT_BROKER_UNREACHABLE
    except exception.VolumePoolException as exc:
        _error(exc)
        return EXIT_FAILED
    except _service_errors() as exc:
        _error(exc, with_class=True)
        return EXIT_FAILED


def _error(exc, with_class=False, key_of=None):
    """One line on stderr.  An error re-raised from a manager carries the
    remote traceback after its message: the operator gets the message.
    ``key_of``: a broker error whose claim may have reached a manager:
    its key is what releases it."""
    text = exception.first_line(exc)
    if with_class:
        text = '%s: %s' % (exc.__class__.__name__, text)
    if key_of is not None and key_of.maybe_sent and key_of.claim_key:
        text += (' (claim %s may have reached a manager: "claim release '
                 '%s" once the broker is back)'
                 % (key_of.claim_key, key_of.claim_key))
    sys.stderr.write('volume-pool-manage: %s\n' % text)

if __name__ == '__main__':
    sys.exit(main())
