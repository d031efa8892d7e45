"""``[pool:<name>]``: one section per pool named in ``enabled_pools``.

A manager of cluster X reads ``[pool:<name>@X]`` over ``[pool:<name>]``:
what that section sets wins, the rest comes from the shared section, so one
file can give each cluster its own snapshot or target.  The groups are
registered at run time, once ``enabled_pools`` is known.  For the sample
file the options are listed under ``[pool:name]``.
"""

from oslo_config import cfg

GROUP_PREFIX = 'pool:'
SAMPLE_GROUP = GROUP_PREFIX + 'name'

pool_opts = [
    cfg.StrOpt('snapshot_id',
               help='Required. Cinder snapshot every volume of this pool is '
                    'created from. Changing it rotates the pool: ready '
                    'volumes of the old snapshot are drained and replaced.'),
    cfg.IntOpt('target',
               default=1,
               min=0,
               mutable=True,
               help='Ready volumes to keep in this pool. Reloaded on SIGHUP.'),
    cfg.IntOpt('max_creating',
               default=10,
               min=1,
               mutable=True,
               help='Volumes of this pool being created at once, at most.'),
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
