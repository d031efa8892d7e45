"""``[database]``: oslo.db options, defaulting to a single-node SQLite."""

from oslo_config import cfg
from oslo_db import options as oslo_db_options

_DEFAULT_SQL_CONNECTION = 'sqlite:///$state_path/volume_pool.sqlite'


# A manager needs few connections: a claim holds one only for its two short
# transactions, never across the Cinder call.  oslo.db's own defaults (5 +
# 50 overflow) let a few managers under load exhaust a MariaDB's
# max_connections (151), which the functional tests saw.
_DEFAULT_MAX_POOL_SIZE = 10
_DEFAULT_MAX_OVERFLOW = 10


def register_opts(conf):
    # On the option objects, so the sample config shows them too.
    cfg.set_defaults(oslo_db_options.database_opts,
                     connection=_DEFAULT_SQL_CONNECTION,
                     max_pool_size=_DEFAULT_MAX_POOL_SIZE,
                     max_overflow=_DEFAULT_MAX_OVERFLOW)
    oslo_db_options.set_defaults(conf)


def list_opts():
    # oslo.db lists its own options under its namespace; nothing to add.
    return {}
