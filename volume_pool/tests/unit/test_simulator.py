"""The Cinder simulator answers python-cinderclient as Cinder does."""

from cinderclient import exceptions as cinder_exc
import pytest
import requests

from volume_pool.fixtures import cinder_handles


@pytest.fixture
def client(simulator):
    return cinder_handles.noauth_cinder_client(simulator.endpoint,
                                        simulator.project_id)


def test_create_from_snapshot_goes_creating_then_available(simulator,
                                                          client):
    now = [1000.0]
    simulator.clock = lambda: now[0]
    simulator.creation_delay = 0.3
    snapshot = simulator.add_snapshot(size=2)
    volume = client.volumes.create(None, snapshot_id=snapshot, name='v',
                                   metadata={'k': 'v'})
    assert (volume.status, volume.size) == ('creating', 2)
    now[0] += 0.29
    assert client.volumes.get(volume.id).status == 'creating'
    now[0] += 0.01
    volume = client.volumes.get(volume.id)
    assert volume.status == 'available'
    assert volume.metadata == {'k': 'v'}


def test_create_checks_snapshot_and_size(simulator, client):
    with pytest.raises(cinder_exc.NotFound):
        client.volumes.create(1, snapshot_id='no-such-snapshot')
    snapshot = simulator.add_snapshot(size=5)
    with pytest.raises(cinder_exc.BadRequest):
        client.volumes.create(1, snapshot_id=snapshot)


def test_metadata_filter_is_server_side(simulator, client):
    for n in range(6):
        simulator.add_volume(metadata={'volume_pool': 'a' if n % 2 else 'b'})
    simulator.reset_counts()
    found = client.volumes.list(search_opts={'metadata': {'volume_pool':
                                                          'a'}})
    assert len(found) == 3
    assert all(v.metadata['volume_pool'] == 'a' for v in found)
    assert simulator.request_counts[('GET', '/volumes/detail')] == 1


def test_limit_and_marker_page_exactly(simulator, client):
    ids = {simulator.add_volume() for _ in range(25)}
    seen, marker, pages = [], None, 0
    while True:
        page = client.volumes.list(limit=10, marker=marker)
        pages += 1
        seen.extend(v.id for v in page)
        if len(page) < 10:
            break
        marker = page[-1].id
    assert pages == 3
    assert len(seen) == 25 and set(seen) == ids


def test_plain_list_follows_next_links(simulator, client):
    simulator.max_limit = 4
    for _ in range(10):
        simulator.add_volume()
    simulator.reset_counts()
    assert len(client.volumes.list()) == 10
    assert simulator.request_counts[('GET', '/volumes/detail')] == 3


def test_update_replaces_metadata_like_cinder(simulator, client):
    volume_id = simulator.add_volume(metadata={'volume_pool': 'a', 'x': '1'})
    body = client.volumes.update(volume_id, name='new', metadata={})
    assert body['volume']['name'] == 'new'
    assert simulator.get_volume(volume_id)['metadata'] == {}


def test_delete_then_404_and_in_use_refused(simulator, client):
    volume_id = simulator.add_volume()
    client.volumes.delete(volume_id)
    with pytest.raises(cinder_exc.NotFound):
        client.volumes.get(volume_id)
    busy = simulator.add_volume()
    simulator.attach_volume(busy)
    with pytest.raises(cinder_exc.BadRequest):
        client.volumes.delete(busy)


def test_quota_gives_413_with_retry_after(simulator, client):
    simulator.quota_volumes = 1
    snapshot = simulator.add_snapshot()
    client.volumes.create(1, snapshot_id=snapshot)
    with pytest.raises(cinder_exc.OverLimit) as info:
        client.volumes.create(1, snapshot_id=snapshot)
    assert info.value.code == 413
    response = requests.post(
        '%s/%s/volumes' % (simulator.endpoint, simulator.project_id),
        json={'volume': {'size': 1}}, timeout=5)
    assert response.status_code == 413
    assert response.headers['Retry-After'] == '0'
    assert 'overLimit' in response.json()


def test_injected_faults_then_recovery(simulator, client):
    simulator.inject_fault(status=500, method='GET', path='^/volumes/',
                           count=1)
    volume_id = simulator.add_volume()
    with pytest.raises(cinder_exc.ClientException) as info:
        client.volumes.get(volume_id)
    assert info.value.code == 500
    assert client.volumes.get(volume_id).id == volume_id


def test_fail_next_creates_ends_in_error(simulator, client):
    simulator.fail_next_creates(1)
    snapshot = simulator.add_snapshot()
    first = client.volumes.create(1, snapshot_id=snapshot)
    second = client.volumes.create(1, snapshot_id=snapshot)
    assert client.volumes.get(first.id).status == 'error'
    assert client.volumes.get(second.id).status == 'available'


def test_microversion_is_echoed_and_bounded(simulator):
    url = '%s/%s/volumes' % (simulator.endpoint, simulator.project_id)
    ok = requests.get(url, headers={'OpenStack-API-Version': 'volume 3.50'},
                      timeout=5)
    assert ok.headers['OpenStack-API-Version'] == 'volume 3.50'
    too_new = requests.get(url, timeout=5, headers={
        'OpenStack-API-Version': 'volume 3.99'})
    assert too_new.status_code == 406
    # Any project id is served (noauth), each seeing its own volumes.
    simulator.add_volume()
    other = requests.get(url.replace(simulator.project_id, 'ab12'),
                         timeout=5)
    assert (other.status_code, other.json()) == (200, {'volumes': []})
    malformed = requests.get(url.replace(simulator.project_id, 'a.b'),
                             timeout=5)
    assert malformed.status_code == 404


def test_transfer_gives_the_volume_to_the_accepting_project(simulator,
                                                            client):
    other_project = 'f' * 32
    other = cinder_handles.noauth_cinder_client(simulator.endpoint,
                                                other_project)
    volume_id = simulator.add_volume(name='t')
    transfer = client.transfers.create(volume_id, name='hand-over')
    assert transfer.auth_key and transfer.volume_id == volume_id
    assert client.volumes.get(volume_id).status == 'awaiting-transfer'
    with pytest.raises(cinder_exc.BadRequest):
        other.transfers.accept(transfer.id, 'wrong-key')
    assert client.volumes.get(volume_id).status == 'awaiting-transfer'
    other.transfers.accept(transfer.id, transfer.auth_key)
    volume = other.volumes.get(volume_id)
    assert volume.status == 'available'
    assert getattr(volume, 'os-vol-tenant-attr:tenant_id') == other_project
    assert [v.id for v in other.volumes.list()] == [volume_id]
    assert volume_id not in [v.id for v in client.volumes.list()]
    assert volume_id in [v.id for v in client.volumes.list(
        search_opts={'all_tenants': 1})]
    with pytest.raises(cinder_exc.NotFound):  # consumed by the accept
        other.transfers.accept(transfer.id, transfer.auth_key)


def test_deleted_transfer_frees_the_volume(simulator, client):
    volume_id = simulator.add_volume()
    transfer = client.transfers.create(volume_id)
    assert [t.id for t in client.transfers.list()] == [transfer.id]
    client.transfers.delete(transfer.id)
    assert client.volumes.get(volume_id).status == 'available'
    assert client.transfers.list() == []
    simulator.attach_volume(volume_id)
    with pytest.raises(cinder_exc.BadRequest):  # only available volumes
        client.transfers.create(volume_id)


def test_faults_are_injected_on_transfers(simulator, client):
    volume_id = simulator.add_volume()
    simulator.inject_fault(status=503, method='POST', path='/accept$')
    transfer = client.transfers.create(volume_id)
    with pytest.raises(cinder_exc.ClientException) as info:
        client.transfers.accept(transfer.id, transfer.auth_key)
    assert info.value.code == 503
    client.transfers.accept(transfer.id, transfer.auth_key)
    assert simulator.request_counts[
        ('POST', '/os-volume-transfer/{id}/accept')] == 2


def test_a_member_sees_only_its_projects_volumes(simulator, client):
    """Cinder's member role: another project's volume is a 404 and no
    answer names a volume's project; a transfer still hands it over."""
    other_project = 'fedcba9876543210fedcba9876543210'
    other = cinder_handles.noauth_cinder_client(simulator.endpoint,
                                                other_project)
    volume_id = simulator.add_volume(name='given')
    simulator.admin = False
    mine = client.volumes.get(volume_id)
    assert not hasattr(mine, 'os-vol-tenant-attr:tenant_id')
    with pytest.raises(cinder_exc.NotFound):
        other.volumes.get(volume_id)
    assert other.volumes.list(search_opts={'all_tenants': 1}) == []
    transfer = client.transfers.create(volume_id)
    other.transfers.accept(transfer.id, transfer.auth_key)
    with pytest.raises(cinder_exc.NotFound):
        client.volumes.get(volume_id)
    assert other.volumes.get(volume_id).status == 'available'
    with pytest.raises(cinder_exc.Forbidden):
        other.volumes.reset_state(volume_id, 'error')


def test_a_lost_answer_is_applied_all_the_same(simulator, client):
    volume_id = simulator.add_volume(name='before')
    simulator.inject_fault(method='PUT', path='^/volumes/', lose_answer=True)
    with pytest.raises(requests.ConnectionError):
        requests.put('%s/%s/volumes/%s' % (simulator.endpoint,
                                            simulator.project_id, volume_id),
                     json={'volume': {'name': 'after'}}, timeout=5)
    assert simulator.get_volume(volume_id)['name'] == 'after'
