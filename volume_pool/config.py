"""Command-line and config-file parsing shared by every entry point."""

from oslo_config import cfg
from oslo_log import log as logging
from oslo_service import opts as service_opts

from volume_pool import conf as vp_conf
from volume_pool import version
from volume_pool.conf import opts

CONF = vp_conf.CONF
PROJECT = 'volume-pool'
_log_options_registered = False


def parse_args(argv, default_config_files=None, description=None):
    """Parse ``argv`` (without the program name) into ``CONF``."""
    global _log_options_registered
    if not _log_options_registered:
        logging.register_options(CONF)
        _log_options_registered = True
    opts.set_defaults()
    CONF(argv,
         project=PROJECT,
         version=version.version_string(),
         default_config_files=default_config_files,
         description=description)


def own_conf(path):
    """A ConfigOpts of its own with the service's options, parsed from
    ``path`` alone: several managers in one process (the benchmark), or
    a service beside a console script that parses ``CONF`` anew (tests).
    """
    conf = cfg.ConfigOpts()
    for module in (vp_conf.default, vp_conf.volume_pool, vp_conf.cinder,
                   vp_conf.database, vp_conf.coordination, vp_conf.metrics):
        module.register_opts(conf)
    service_opts.register_service_opts(conf)
    # oslo.messaging registers [oslo_messaging_tracing] on the global CONF
    # only, and its RPC server reads it from the server's.
    tracing = 'oslo_messaging_tracing'
    if tracing in CONF:
        conf.register_opts([CONF._get_opt_info(name, tracing)['opt']
                            for name in CONF[tracing]], group=tracing)
    conf(['--config-file', str(path)], project=PROJECT,
         default_config_files=[])
    return conf
