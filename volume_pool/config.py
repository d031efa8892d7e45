"""Command-line and config-file parsing shared by every entry point."""

from oslo_log import log as logging

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
