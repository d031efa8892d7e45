"""Configuration options, one module per option group (the masakari shape).

Importing this package registers every static option on ``CONF``: the
groups of the option modules :func:`volume_pool.conf.opts.option_modules`
finds, and oslo.service's service options.  The per-pool
``[pool:<name>]`` groups are registered by
:func:`volume_pool.conf.pool.register_pool_opts` once the pool names are
known, because their names come from ``[volume_pool] enabled_pools``.
"""

from oslo_config import cfg

from volume_pool.conf import opts

CONF = cfg.CONF

opts.register_opts(CONF)
