"""Configuration options, one module per option group (the masakari shape).

Importing this package registers every static option on ``CONF``; the
per-pool ``[pool:<name>]`` groups are registered by
:func:`volume_pool.conf.pool.register_pool_opts` once the pool names are
known, because their names come from ``[volume_pool] enabled_pools``.
"""

from oslo_config import cfg
from oslo_service import opts as service_opts

from volume_pool.conf import cinder
from volume_pool.conf import coordination
from volume_pool.conf import database
from volume_pool.conf import default
from volume_pool.conf import healthcheck
from volume_pool.conf import metrics
from volume_pool.conf import volume_pool

CONF = cfg.CONF

default.register_opts(CONF)
volume_pool.register_opts(CONF)
cinder.register_opts(CONF)
database.register_opts(CONF)
coordination.register_opts(CONF)
metrics.register_opts(CONF)
healthcheck.register_opts(CONF)
# graceful_shutdown_timeout and friends, read by Service.stop().
service_opts.register_service_opts(CONF)
