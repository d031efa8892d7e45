"""Entry point for oslo-config-generator and the Sphinx config reference."""

from oslo_config import cfg
from oslo_log import log as logging

from volume_pool.conf import cinder
from volume_pool.conf import coordination
from volume_pool.conf import database
from volume_pool.conf import default
from volume_pool.conf import healthcheck
from volume_pool.conf import metrics
from volume_pool.conf import pool
from volume_pool.conf import volume_pool

_MODULES = (default, volume_pool, pool, cinder, coordination, metrics,
            healthcheck)

_EXTRA_DEFAULT_LOG_LEVELS = [
    'keystoneauth=WARN',
    'cinderclient=WARN',
    'oslo_service.periodic_task=INFO',
    'tooz=INFO',
]


def list_opts():
    """Return ``[(group, [opts])]`` for every option group of the service."""
    merged = {}
    for module in _MODULES:
        for group, opts in module.list_opts().items():
            merged.setdefault(group, []).extend(opts)
    return list(merged.items())


def set_defaults():
    """Project defaults of the libraries' options (the generator hook)."""
    database.register_opts(cfg.CONF)
    logging.set_defaults(
        default_log_levels=(logging.get_default_log_levels() +
                            _EXTRA_DEFAULT_LOG_LEVELS))
