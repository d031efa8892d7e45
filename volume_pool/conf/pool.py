"""``[pool:<name>]``: one section per pool named in ``enabled_pools``.

A manager of cluster X reads ``[pool:<name>@X]`` over ``[pool:<name>]``:
what that section sets wins, the rest comes from the shared section, so one
file can give each cluster its own snapshot or target.  The groups are
registered at run time, once ``enabled_pools`` is known.  For the sample
file the options are listed under ``[pool:name]``.
"""

from oslo_config import cfg
from oslo_config import types

GROUP_PREFIX = 'pool:'
SAMPLE_GROUP = GROUP_PREFIX + 'name'
AUTO = 'auto'
MAX_MISS_CREATES_DEFAULT = 10


class Target(types.ConfigType):
    """A non-negative integer, or ``auto`` (sized from the claim rate)."""

    def __init__(self):
        super().__init__(type_name='integer or "auto"')
        self._integer = types.Integer(min=0)

    def __call__(self, value):
        if isinstance(value, str) and value.strip().lower() == AUTO:
            return AUTO
        try:
            return self._integer(value)
        except ValueError as exc:
            raise ValueError('%s (a number of volumes, or "auto")' % exc)

    def __eq__(self, other):
        return self.__class__ == other.__class__

    def _formatter(self, value):
        return str(value)


pool_opts = [
    cfg.StrOpt('snapshot_id',
               help='Required. Cinder snapshot every volume of this pool is '
                    'created from. Changing it rotates the pool: ready '
                    'volumes of the old snapshot are drained and replaced.'),
    cfg.Opt('target',
            type=Target(),
            default=1,
            mutable=True,
            help='Ready volumes to keep in this pool, or "auto": keep '
                 'enough to cover the claims expected during one refill, '
                 'ceil(claim rate x refill time x '
                 '[volume_pool] auto_target_headroom), bounded by '
                 'min_ready and max_ready (max_ready is required). The '
                 'claim rate is exponentially weighted over '
                 '[volume_pool] auto_target_window; the refill time is the '
                 'measured create-to-available time, '
                 '[volume_pool] auto_target_refill_time until the first '
                 'volume is measured. Reloaded on SIGHUP.'),
    cfg.IntOpt('min_ready',
               default=0,
               min=0,
               mutable=True,
               help='Ready volumes an idle pool keeps (see idle_ttl), and '
                    'the lower bound of target = auto. Must not exceed a '
                    'fixed target nor max_ready.'),
    cfg.IntOpt('max_ready',
               min=0,
               mutable=True,
               help='Cap: ready plus creating volumes of this pool, at '
                    'most. Unset: no cap. Required by target = auto, as '
                    'its upper bound.'),
    cfg.IntOpt('max_ready_gb',
               min=0,
               mutable=True,
               help='Cap: GiB of the ready plus creating volumes of this '
                    'pool, at most. Unset: no cap. A volume whose size is '
                    'not known yet counts as the size option, else as the '
                    'largest volume the pool has recorded; a pool that has '
                    'recorded none creates one volume first to learn it.'),
    cfg.IntOpt('idle_ttl',
               default=0,
               min=0,
               mutable=True,
               help='Seconds without a claim after which the pool is idle: '
                    'sync deletes its ready volumes above min_ready that '
                    'have been ready at least this long, oldest first, and '
                    'replenish keeps only min_ready. The first claim '
                    'restores the target. A pool never claimed counts from '
                    'when a manager first served it. 0: never idle.'),
    cfg.IntOpt('max_creating',
               default=10,
               min=1,
               mutable=True,
               help='Volumes of this pool being created at once, at most.'),
    cfg.IntOpt('max_miss_creates',
               default=MAX_MISS_CREATES_DEFAULT,
               min=0,
               mutable=True,
               help='Claims of this pool that may be creating a volume on '
                    'a miss (an empty pool, create_on_miss) at once, per '
                    'manager: past it a miss gets PoolEmpty at once instead '
                    'of a new volume, so a burst of misses cannot use up '
                    'the Cinder quota. Each manager of the cluster counts '
                    'its own: the cluster may create this many times its '
                    'managers at once. 0: a miss never creates. Replenish '
                    'is bounded by max_creating instead.'),
    cfg.IntOpt('size',
               min=1,
               help='Volume size in GiB. Unset: the size of the snapshot.'),
    cfg.StrOpt('volume_type',
               help='Cinder volume type of the pool volumes. Unset: the '
                    "snapshot's volume type / Cinder's default."),
    cfg.StrOpt('availability_zone',
               help='Availability zone of the pool volumes.'),
    cfg.StrOpt('name_prefix',
               help='Prefix of the Cinder name of a ready pool volume. '
                    'Unset: "volume-pool-<pool name>-". A claim may rename '
                    'the volume.'),
]


def group_name(pool_name, cluster=None):
    """``pool:NAME``, or ``pool:NAME@CLUSTER`` for a cluster's override."""
    name = GROUP_PREFIX + pool_name
    return '%s@%s' % (name, cluster) if cluster else name


def register_pool_opts(conf, pool_name, cluster=None):
    """Register the options of one pool's section (idempotent)."""
    conf.register_opts(pool_opts, group=group_name(pool_name, cluster))


def list_opts():
    return {SAMPLE_GROUP: pool_opts}
