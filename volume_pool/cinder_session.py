"""The keystoneauth session of a Cinder handle, from ``[cinder]``.

keystoneauth1's loading reads the auth plugin and the session's TLS and
timeout options; this module adds what the service needs on top: a
handle scoped to another project (claims into a project) and a
connection pool as large as the claims that run at once.
"""

import os
import urllib.request

from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import loading as ks_loading
from keystoneauth1 import session as ks_session
from oslo_config import cfg

from volume_pool import exception
from volume_pool.conf import cinder as cinder_conf


def load(conf, project_id=None):
    """``(auth, session)`` of ``[cinder]``, acting as ``project_id`` when
    given.  Raises ConfigError for an incomplete ``[cinder]``."""
    group = cinder_conf.GROUP
    if not conf[group].auth_type:
        raise exception.ConfigError(
            reason='[cinder] auth_type is required (password, '
                   'v3applicationcredential, noauth, ...)')
    try:
        auth = ks_loading.load_auth_from_conf_options(conf, group)
    except ks_exc.MissingRequiredOptions as exc:
        raise exception.ConfigError(reason='[cinder] %s' % exc)
    except ks_exc.NoMatchingPlugin as exc:
        raise exception.ConfigError(reason='[cinder] auth_type: %s' % exc)
    if project_id is not None:
        auth = _auth_for_project(conf, project_id)
    options = conf[group]
    # Every call has a timeout: a running thread cannot be cancelled.
    session = ks_loading.load_session_from_conf_options(
        conf, group, auth=auth,
        timeout=options.timeout or cinder_conf.DEFAULT_TIMEOUT)
    _keep_connections(session, options.connection_pool_size)
    _read_environment_once(session)
    return auth, session


# Auth options that pin a scope other than a project id; dropped when the
# service acts as another project (claims into a project, RPC 1.3).
_SCOPE_OPTIONS = ('project_name', 'project_domain_id', 'project_domain_name',
                  'domain_id', 'domain_name', 'system_scope', 'trust_id')


def _auth_for_project(conf, project_id):
    """``[cinder]``'s credentials, scoped to ``project_id`` instead.

    Works with plugins that take a ``project_id``: python-cinderclient's
    ``noauth`` (the project is in the URL) and Keystone's ``password`` or
    ``token`` plugins when that user has a role in the project.  An
    application credential is bound to its own project: not supported.
    """
    group = cinder_conf.GROUP
    auth_type = conf[group].auth_type
    loader = ks_loading.get_plugin_loader(auth_type)
    names = {opt.dest for opt in loader.get_options()}
    # An application credential is bound to the project it was made in.
    if ('project_id' not in names or
            'applicationcredential' in auth_type.replace('_', '')):
        raise exception.ConfigError(
            reason='[cinder] auth_type %s cannot act as another project; '
                   'claims into a project need noauth, password or token'
                   % auth_type)
    values = {}
    for name in names:
        try:
            values[name] = conf[group][name]
        except cfg.NoSuchOptError:
            continue
    values.update(dict.fromkeys(_SCOPE_OPTIONS), project_id=project_id)
    return loader.load_from_options(**{k: v for k, v in values.items()
                                       if k in names})


def _keep_connections(session, size):
    """Keep up to ``size`` connections per Cinder endpoint open.

    keystoneauth's requests session keeps 10: concurrent claims beyond
    that would open and close a connection per request.  The TLS settings
    loaded from ``[cinder]`` carry over.
    """
    adapter = ks_session.TCPKeepAliveAdapter(
        pool_connections=size, pool_maxsize=size,
        tls_ciphers=session.tls_ciphers,
        tls_min_version=session.tls_min_version)
    for scheme in ('http://', 'https://'):
        session.session.mount(scheme, adapter)


def _read_environment_once(session):
    """Stop requests reading the environment on every request, when what
    it would find there can be settled once.

    With ``trust_env`` (the default) requests walks every environment
    variable twice per request looking for proxies, looks for a
    ``.netrc`` and reads ``REQUESTS_CA_BUNDLE``: a quarter of the CPU of a
    claim's Cinder call.  A daemon's environment does not change.  When
    it names no proxy and there is no netrc file, the CA bundle it names
    (if any, and if ``[cinder]`` sets none) is set on the session once and
    requests stops looking; with a proxy or a netrc file, requests keeps
    reading the environment, as before.
    """
    home = os.path.expanduser('~')
    netrc_files = [os.environ.get('NETRC')] + [
        os.path.join(home, name) for name in ('.netrc', '_netrc')]
    if urllib.request.getproxies() or any(
            path and os.path.exists(path) for path in netrc_files):
        return
    bundle = (os.environ.get('REQUESTS_CA_BUNDLE') or
              os.environ.get('CURL_CA_BUNDLE'))
    if bundle and session.verify is True:
        session.verify = bundle
    session.session.trust_env = False
