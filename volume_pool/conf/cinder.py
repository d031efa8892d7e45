"""``[cinder]``: how to reach Cinder, loaded through keystoneauth1.

Auth, session and adapter options are keystoneauth1's own, so any auth
plugin loads the same way: ``password``, ``v3applicationcredential``, or
python-cinderclient's ``noauth`` for a Cinder without Keystone.
"""

from keystoneauth1 import loading as ks_loading
from oslo_config import cfg

GROUP = 'cinder'
DEFAULT_SERVICE_TYPE = 'volumev3'
DEFAULT_TIMEOUT = 30


def _make_group():
    return cfg.OptGroup(
        GROUP, title='Cinder options',
        help='Connection to the Block Storage service. Auth, session and '
             'adapter options come from keystoneauth1.')


cinder_group = _make_group()

cinder_opts = [
    cfg.StrOpt('api_version',
               default='3.50',
               help='Cinder API microversion the manager requests.'),
    cfg.IntOpt('list_page_size',
               default=1000,
               min=1,
               help='Volumes asked for per page when sync lists a pool. '
                    'Cinder caps pages at its osapi_max_limit (1000 by '
                    'default).'),
    cfg.IntOpt('connection_pool_size',
               default=64,
               min=1,
               help='HTTP connections to Cinder kept open for reuse. '
                    'Claims run in parallel, up to [DEFAULT] '
                    'executor_thread_pool_size (64 by default) at once; a '
                    'request beyond this many opens and closes a '
                    'connection of its own.'),
]


def register_opts(conf):
    # A group of its own per ConfigOpts: oslo.config copies a registered
    # OptGroup shallowly, so a shared one would share its options, and an
    # auth plugin loaded on a private ConfigOpts would leak into CONF.
    conf.register_group(_make_group())
    conf.register_opts(cinder_opts, group=cinder_group)
    ks_loading.register_session_conf_options(conf, GROUP)
    ks_loading.register_auth_conf_options(conf, GROUP)
    ks_loading.register_adapter_conf_options(conf, GROUP)
    conf.set_default('service_type', DEFAULT_SERVICE_TYPE, group=GROUP)
    conf.set_default('timeout', DEFAULT_TIMEOUT, group=GROUP)


def list_opts():
    """Our options plus keystoneauth1's, with the password plugin's shown."""
    opts = list(cinder_opts)
    opts += ks_loading.get_session_conf_options()
    opts += ks_loading.get_auth_common_conf_options()
    opts += ks_loading.get_auth_plugin_conf_options('password')
    opts += ks_loading.get_adapter_conf_options(include_deprecated=False)
    return {cinder_group: _unique(opts)}


def _unique(opts):
    seen = set()
    result = []
    for opt in opts:
        if opt.dest not in seen:
            seen.add(opt.dest)
            result.append(opt)
    return result
