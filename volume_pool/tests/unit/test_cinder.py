"""The Cinder handle keeps its HTTP connections for concurrent claims."""

import concurrent.futures

import pytest

from volume_pool.bench import services


def kept_connections(handle, endpoint):
    """Idle connections the handle keeps open to ``endpoint``'s host."""
    adapter = handle._session.session.get_adapter(endpoint)
    pools = list(adapter.poolmanager.pools._container.values())
    assert len(pools) == 1
    return sum(1 for conn in list(pools[0].pool.queue) if conn is not None)


@pytest.mark.parametrize('size, kept', [(None, 24), (10, 10)])
def test_concurrent_requests_keep_up_to_connection_pool_size(
        simulator, size, kept):
    options = {'connection_pool_size': size} if size else {}
    handle = services.make_cinder(simulator.endpoint, simulator.project_id,
                                  **options)
    volumes = [simulator.add_volume(size=1) for _ in range(24)]
    # Every request waits, so 24 requests are open at once.
    simulator.inject_fault(status=None, delay=0.3, count=24)
    with concurrent.futures.ThreadPoolExecutor(24) as ex:
        renamed = list(ex.map(
            lambda v: handle.update_volume(v, name='n-' + v, metadata={}),
            volumes))
    assert [v.name for v in renamed] == ['n-' + v for v in volumes]
    assert kept_connections(handle, simulator.endpoint) == kept
