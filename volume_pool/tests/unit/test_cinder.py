"""The Cinder handle keeps its HTTP connections for concurrent claims,
and says which failed requests Cinder may still apply."""

import concurrent.futures

import pytest

from volume_pool import exception
from volume_pool.fixtures import cinder_handles

CONCURRENT = 24


def _renames_at_once(simulator, handle, volumes):
    """Rename every volume at once: the simulator holds the requests
    until all of them are there, so each needs a connection of its own.
    Returns the connections the simulator accepted meanwhile."""
    before = simulator.connections
    held = simulator.inject_fault(status=None, method='PUT', hold=True,
                                  count=len(volumes))
    with concurrent.futures.ThreadPoolExecutor(len(volumes)) as ex:
        renames = [ex.submit(handle.update_volume, v, name='n-' + v,
                             metadata={}) for v in volumes]
        held.wait_arrived(len(volumes))
        held.release()
        renamed = [r.result() for r in renames]
    assert [v.name for v in renamed] == ['n-' + v for v in volumes]
    return simulator.connections - before


@pytest.mark.parametrize('size, kept', [(None, 24), (10, 10)])
def test_concurrent_requests_keep_up_to_connection_pool_size(
        simulator, size, kept):
    options = {'connection_pool_size': size} if size else {}
    handle = cinder_handles.make_cinder(
        simulator.endpoint, simulator.project_id, **options)
    volumes = [simulator.add_volume(size=1) for _ in range(CONCURRENT)]
    assert _renames_at_once(simulator, handle, volumes) == CONCURRENT
    # The next burst reuses the connections the handle kept, and opens
    # new ones only beyond them.
    assert _renames_at_once(simulator, handle, volumes) == CONCURRENT - kept


def _handle_in(monkeypatch, tmp_path, environment, **options):
    """A Cinder handle made under ``environment`` (and a home dir of its
    own, so the machine's ~/.netrc does not count)."""
    for name in ('http_proxy', 'https_proxy', 'no_proxy', 'HTTP_PROXY',
                 'HTTPS_PROXY', 'NO_PROXY', 'ALL_PROXY', 'all_proxy',
                 'NETRC', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE'):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv('HOME', str(tmp_path))
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return cinder_handles.make_cinder('http://127.0.0.1:1/v3', 'project',
                                      **options)._session


def test_environment_is_read_once_when_it_names_no_proxy(monkeypatch,
                                                          tmp_path):
    session = _handle_in(monkeypatch, tmp_path,
                         {'REQUESTS_CA_BUNDLE': '/etc/bundle.pem'})
    assert session.session.trust_env is False
    # The bundle requests would have read on each request is the
    # session's own now.
    assert session.verify == '/etc/bundle.pem'
    # [cinder] cafile wins over the environment, as in requests.
    session = _handle_in(monkeypatch, tmp_path,
                         {'REQUESTS_CA_BUNDLE': '/etc/bundle.pem'},
                         cafile='/etc/cinder-ca.pem')
    assert session.verify == '/etc/cinder-ca.pem'
    assert _handle_in(monkeypatch, tmp_path, {}).verify is True


@pytest.mark.parametrize('environment', [
    {'https_proxy': 'http://proxy:3128'}, {'HTTP_PROXY': 'http://p:1'}])
def test_a_proxy_keeps_requests_reading_the_environment(
        monkeypatch, tmp_path, environment):
    session = _handle_in(monkeypatch, tmp_path, environment)
    assert session.session.trust_env is True


def test_a_netrc_file_keeps_requests_reading_the_environment(monkeypatch,
                                                             tmp_path):
    (tmp_path / '.netrc').write_text('machine cinder login a password b\n')
    assert _handle_in(monkeypatch, tmp_path, {}).session.trust_env is True


@pytest.mark.parametrize('fault, late', [
    (dict(status=503), False),                # Cinder answered: refused
    (dict(status=500), False),
    (dict(status=504), True),                 # a gateway gave up on it
    (dict(status=502), True),
    (dict(status=None, lose_answer=True), True),   # applied, no answer
], ids=['503', '500', '504', '502', 'connection-lost'])
def test_a_request_without_an_answer_may_land_late(simulator, fault, late):
    """Only a request Cinder never answered may still be applied: the
    error says so, and the claimer waits out its late window."""
    handle = cinder_handles.make_cinder(simulator.endpoint,
                                        simulator.project_id)
    volume_id = simulator.add_volume(name='v')
    simulator.inject_fault(method='PUT', **fault)
    with pytest.raises(exception.CinderUnavailable) as caught:
        handle.update_volume(volume_id, name='renamed', metadata={})
    assert exception.may_land_late(caught.value) is late
