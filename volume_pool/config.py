"""Command-line and config-file parsing shared by every entry point."""

import argparse
import re

from oslo_config import cfg
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
    check_values(CONF)


class InvalidValue(cfg.Error):
    """A value its option's type or range refuses, said in one line that
    names the group, the option and the file."""


# oslo.config's text: "Value for option NAME from LocationInfo(location=
# <Locations.user: (4, True)>, detail='FILE') is not valid: WHY".
_REFUSED = re.compile(r"^Value for option \S+ (?:from (?P<where>.*?) )?"
                      r"is not valid: (?P<why>.*)$", re.S)
_DETAIL = re.compile(r"detail='(?P<detail>[^']*)'")


def describe_invalid(group, option, exc):
    """``[group] option: why (in FILE)`` for oslo.config's error ``exc``,
    without its internals."""
    text = str(exc)
    found = _REFUSED.match(text)
    why = found.group('why') if found else text
    where = _DETAIL.search(found.group('where') or '') if found else None
    return '[%s] %s: %s%s' % (group or 'DEFAULT', option, why,
                              ' (in %s)' % where.group('detail')
                              if where else '')


def check_values(conf):
    """Read every registered option once: a value that its type or range
    refuses stops the command here, with :class:`InvalidValue`, instead of
    when a task first reads it."""
    for name in list(conf):
        try:
            value = conf[name]
        except (cfg.ConfigSourceValueError, ValueError) as exc:
            raise InvalidValue(describe_invalid(None, name, exc))
        if not isinstance(value, cfg.ConfigOpts.GroupAttr):
            continue
        for option in list(value):
            try:
                value[option]
            except (cfg.ConfigSourceValueError, ValueError) as exc:
                raise InvalidValue(describe_invalid(name, option, exc))


def at_least(minimum):
    """An argparse type: an integer no smaller than ``minimum``."""
    def parse(text):
        try:
            number = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError('%r is not a whole number'
                                             % text)
        if number < minimum:
            raise argparse.ArgumentTypeError(
                '%d is below %d' % (number, minimum))
        return number
    parse.__name__ = 'integer'  # argparse names the type in its errors
    return parse


def own_conf(path):
    """A ConfigOpts of its own with the service's options, parsed from
    ``path`` alone: several managers in one process (the benchmark), or
    a service beside a console script that parses ``CONF`` anew (tests).
    """
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    # oslo.messaging registers [oslo_messaging_tracing] on the global CONF
    # only, and its RPC server reads it from the server's.
    tracing = 'oslo_messaging_tracing'
    if tracing in CONF:
        conf.register_opts([CONF._get_opt_info(name, tracing)['opt']
                            for name in CONF[tracing]], group=tracing)
    conf(['--config-file', str(path)], project=PROJECT,
         default_config_files=[])
    return conf
