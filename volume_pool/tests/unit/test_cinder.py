"""The Cinder handle keeps its HTTP connections for concurrent claims."""

import concurrent.futures

import pytest

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
