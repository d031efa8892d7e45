"""``[volume_pool]``: the pool engine's intervals, timeouts and limits."""

from oslo_config import cfg

from volume_pool import cluster_names

GROUP = 'volume_pool'

volume_pool_group = cfg.OptGroup(
    GROUP, title='Volume pool options',
    help='How the manager keeps its pools filled and in step with Cinder.')

volume_pool_opts = [
    cfg.ListOpt('enabled_pools',
                default=[],
                help='Names of the pools this manager keeps. Each name needs '
                     'a [pool:<name>] section with at least snapshot_id.'),
    cfg.IntOpt('replenish_interval',
               default=60,
               min=-1,
               help='Seconds between two runs of the replenish task, which '
                    'creates the volumes each pool lacks. -1 disables the '
                    'task (the pools then never fill: for maintenance and '
                    'tests; the manager warns at start); 0 runs it at the '
                    'default periodic spacing of oslo.service (60 s).'),
    cfg.IntOpt('sync_interval',
               default=300,
               min=-1,
               help='Seconds between two runs of the sync task, which '
                    'syncs the pool table with Cinder. Replenish refills '
                    'a pool only once a sync of the manager process has '
                    'reconciled it with Cinder. -1 disables the task '
                    '(nothing then settles a crash or a failed claim, and '
                    'only "volume-pool-manage pool refill" refills a pool: '
                    'for maintenance and tests; the manager warns at '
                    'start); 0 runs it at the default periodic spacing of '
                    'oslo.service (60 s).'),
    cfg.IntOpt('full_sync_interval',
               default=3600,
               min=0,
               help='Seconds between two full listings of a cluster\'s '
                    'volumes by sync. In between, each sync lists only the '
                    'pool volumes Cinder changed since the last listing '
                    '(Cinder API microversion 3.60; an older Cinder gets a '
                    'full listing at every sync), whose cost follows what '
                    'changed, not what the cluster holds. What only a full '
                    'listing finds: a pool volume deleted behind the '
                    'pool\'s back (a deleted volume is never listed; until '
                    'then its row counts as ready, and a claim that picks '
                    'it finds it gone and takes the next one), a volume '
                    'whose pool tags were removed, and anything Cinder '
                    'changed without moving its updated_at. A change of a '
                    'pool\'s snapshot, a pool this manager starts to '
                    'settle, and a manager that starts or whose last '
                    'listing failed list in full at once. Choose it as how '
                    'long such a volume may go unseen: each full listing '
                    'costs Cinder about 1 ms of CPU per volume of the '
                    'cluster (its API and its database, measured at 20,000 '
                    'volumes). The lease pass lists the cluster\'s '
                    'lease-tagged volumes at the same interval; in '
                    'between it reads, one by one, the volumes of the '
                    'claims whose lease it may act on. 0: every sync '
                    'lists in full.'),
    cfg.IntOpt('creating_timeout',
               default=1800,
               min=1,
               help='Seconds a pool volume may stay in "creating". After '
                    'that sync deletes it and replenish replaces it.'),
    cfg.IntOpt('create_concurrency',
               default=4,
               min=1,
               help='Volumes this manager creates at once, across all pools. '
                    'Each create holds one worker until the volume is '
                    'available, failed or timed out.'),
    cfg.FloatOpt('create_poll_interval',
                 default=2.0,
                 min=0.01,
                 help='Seconds between two status checks of a volume being '
                      'created.'),
    cfg.IntOpt('claim_timeout',
               default=120,
               min=1,
               help='Longest time, in seconds, one claim may run. A claim '
                    'runs at most the time its caller has left (RPC 1.4 '
                    'clients send it) and never longer than this; a claim '
                    'that cannot finish in time is undone, never answered. '
                    'Sync settles a claim whose time has passed, or whose '
                    'manager is gone, from Cinder\'s state of the volume.'),
    cfg.ListOpt('claim_projects',
                default=[],
                mutable=True,
                help='Projects that claims may hand volumes to (RPC 1.3 '
                     'project_id, through a Cinder volume transfer). Empty: '
                     'no claim may move a volume into another project. '
                     'Reloaded on SIGHUP.'),
    cfg.IntOpt('claim_lease',
               default=3600,
               min=0,
               help='Seconds a volume claimed with a claim key stays the '
                    'caller\'s without a confirm: if it is still available '
                    'and unattached when the lease runs out, sync returns it '
                    'to its pool. Confirming the claim, or sync seeing the '
                    'volume attached, ends the lease. 0: leases never run '
                    'out. Claims without a key, and claims into another '
                    'project, are the caller\'s at once.'),
    cfg.IntOpt('claim_receipt_ttl',
               default=86400,
               min=1,
               help='Seconds a settled claim receipt (used, released or '
                    'returned) is kept, so that a retry with the same claim '
                    'key still gets its answer. Must be longer than '
                    'claim_lease plus claim_timeout.'),
    cfg.IntOpt('heartbeat_interval',
               default=10,
               min=1,
               help='Seconds between two heartbeats of this manager in the '
                    'database; they tell the other managers its claims are '
                    'still running.'),
    cfg.IntOpt('service_down_time',
               default=60,
               min=2,
               help='Seconds without a heartbeat after which a manager is '
                    'considered gone and sync settles the claims it left. '
                    'Must be larger than heartbeat_interval.'),
    cfg.IntOpt('database_timeout',
               default=30,
               min=1,
               help='Seconds a database statement or read may take before '
                    'it fails (MariaDB read and write timeouts, PostgreSQL '
                    'statement_timeout), so that a stalled database fails a '
                    'claim instead of hanging it.'),
    cfg.IntOpt('database_conflict_retries',
               default=20,
               min=0,
               help='Times a transaction that lost a race with another is '
                    'run again before its error is raised: a deadlock, or '
                    'on a Galera cluster a write that failed certification '
                    'at commit, which is how Galera reports two nodes '
                    'writing the same rows. The waits are short and '
                    'random (20 ms doubling up to 0.5 s); a dropped '
                    'connection is retried three times whatever this '
                    'says.'),
    cfg.FloatOpt('backoff_initial',
                 default=2.0,
                 min=0.1,
                 help='Seconds a pool waits after the first create Cinder '
                      'refused (413 quota, 5xx, a volume ending in error); '
                      'the wait doubles with each failure in a row, with '
                      'jitter, up to backoff_max. The first success resets '
                      'it.'),
    cfg.FloatOpt('backoff_max',
                 default=300.0,
                 min=1.0,
                 help='Longest wait, in seconds, between two creates of a '
                      'pool that Cinder keeps refusing.'),
    cfg.IntOpt('max_consecutive_errors',
               default=10,
               min=0,
               help='Failed creates in a row after which a pool pauses '
                    'until SIGHUP or "volume-pool-manage pool refill"; 0 '
                    'never pauses.'),
    cfg.IntOpt('max_total_gb',
               min=0,
               mutable=True,
               help='Cap: GiB of the ready plus creating volumes of all the '
                    'pools of this manager\'s cluster, at most. Replenish '
                    'creates nothing that would go beyond it. A volume '
                    'whose size is not known yet counts as its pool\'s size '
                    'option, else as the largest volume its pool has '
                    'recorded, else 1 GiB. Unset: no cap. Reloaded on '
                    'SIGHUP.'),
    cfg.IntOpt('auto_target_window',
               default=600,
               min=1,
               help='Time constant, in seconds, of the exponentially '
                    'weighted claim rate that sizes pools with target = '
                    'auto: a claim weighs exp(-age / window).'),
    cfg.FloatOpt('auto_target_headroom',
                 default=1.5,
                 min=1.0,
                 help='Factor on the claims expected during one refill '
                      '(Little\'s law: rate x refill time) for target = '
                      'auto, so that bursts above the mean rate are still '
                      'served from the pool.'),
    cfg.FloatOpt('auto_target_refill_time',
                 default=60.0,
                 min=0.0,
                 help='Create-to-available time, in seconds, that target = '
                      'auto assumes for a pool until it has measured one of '
                      'its own creates.'),
    cfg.IntOpt('periodic_fuzzy_delay',
               default=5,
               min=0,
               help='Upper bound, in seconds, of a random delay before the '
                    'first periodic run, so that managers started together '
                    'do not hit Cinder together.'),
]


def check(conf):
    """Relations between options; returns an error text or None."""
    group = conf[GROUP]
    if conf.cluster == cluster_names.NO_CLUSTER:
        return ('[DEFAULT] cluster: "%s" is reserved (it is the cluster '
                'tag of the volumes of a manager with no cluster name); '
                'choose another name or leave it unset'
                % cluster_names.NO_CLUSTER)
    if group.claim_receipt_ttl <= group.claim_lease + group.claim_timeout:
        return ('[volume_pool] claim_receipt_ttl (%d) must be longer than '
                'claim_lease + claim_timeout (%d): a retry must still find '
                'its receipt' % (group.claim_receipt_ttl,
                                 group.claim_lease + group.claim_timeout))
    if group.service_down_time <= group.heartbeat_interval:
        return ('[volume_pool] service_down_time (%d) must be larger than '
                'heartbeat_interval (%d)' % (group.service_down_time,
                                             group.heartbeat_interval))
    return None


def register_opts(conf):
    conf.register_group(volume_pool_group)
    conf.register_opts(volume_pool_opts, group=volume_pool_group)


def list_opts():
    return {volume_pool_group: volume_pool_opts}
