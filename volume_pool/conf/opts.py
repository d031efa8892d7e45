"""Option modules, found once: registered on CONF, listed for the generator.

Every module of :mod:`volume_pool.conf` but this one is an option module:
its ``list_opts()`` returns ``{group: [opts]}`` for oslo-config-generator
and the Sphinx config reference, and its ``register_opts(conf)``
registers its groups on a ``ConfigOpts``.  A module whose groups are
known only at run time (``pool``: one group per enabled pool) has no
``register_opts``.  A new module is found here, as in masakari: no list
of them to keep in step anywhere else.
"""

import functools
import importlib
import os
import pkgutil

from oslo_config import cfg
from oslo_log import log as logging
from oslo_service import opts as service_opts

from volume_pool.conf import database

_EXTRA_DEFAULT_LOG_LEVELS = [
    'keystoneauth=WARN',
    'cinderclient=WARN',
    'oslo_service.periodic_task=INFO',
    'tooz=INFO',
]


@functools.cache
def option_modules():
    """Every option module of the package, imported, by name."""
    directory = os.path.dirname(os.path.abspath(__file__))
    return tuple(importlib.import_module('%s.%s' % (__package__, info.name))
                 for info in pkgutil.iter_modules([directory])
                 if not info.ispkg and info.name != 'opts')


def register_opts(conf):
    """Register every static option group on ``conf``, and oslo.service's
    service options (``graceful_shutdown_timeout`` and friends, which
    ``Service.stop()`` reads)."""
    for module in option_modules():
        register = getattr(module, 'register_opts', None)
        if register is not None:
            register(conf)
    service_opts.register_service_opts(conf)


def list_opts():
    """Return ``[(group, [opts])]`` for every option group of the service."""
    merged = {}
    for module in option_modules():
        for group, opts in module.list_opts().items():
            merged.setdefault(group, []).extend(opts)
    return list(merged.items())


def set_defaults():
    """Project defaults of the libraries' options (the generator hook)."""
    database.register_opts(cfg.CONF)
    logging.set_defaults(
        default_log_levels=(logging.get_default_log_levels() +
                            _EXTRA_DEFAULT_LOG_LEVELS))
