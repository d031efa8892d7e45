"""Small helpers shared by the unit and functional tests."""

import socket
import time

from cinderclient import client as cinder_client
from keystoneauth1 import loading as ks_loading
from keystoneauth1 import session as ks_session


def wait_for(predicate, timeout=10.0, interval=0.05, what='condition'):
    """Poll ``predicate`` until it returns a true value; return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError('%s not met within %ss' % (what, timeout))


def free_port():
    """A loopback port nothing listens on (for a while)."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def noauth_cinder_client(endpoint, project_id, user_id='tester'):
    """A cinderclient built the way the service builds its own."""
    plugin = ks_loading.get_plugin_loader('noauth').load_from_options(
        endpoint=endpoint, project_id=project_id, user_id=user_id)
    return cinder_client.Client(
        '3.50', session=ks_session.Session(auth=plugin, timeout=30))
