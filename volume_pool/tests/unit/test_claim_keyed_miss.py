"""Keyed claims that miss, manager-level, against the Cinder simulator:
the created volume carries the pool tags until it is leased, so a
create or tag that fails leaves it in the pool, never leaked.

The checks are those of ``claim_checks``: what Cinder and the tables
hold."""

import pytest

from volume_pool import cinder as vp_cinder
from volume_pool import exception
from volume_pool.db import models
from volume_pool.fixtures import waiting
from volume_pool.tests.unit.claim_checks import assert_settled
from volume_pool.tests.unit.claim_checks import lease_tags
from volume_pool.tests.unit.claim_checks import ONE_VOLUME
from volume_pool.tests.unit.claim_checks import past_the_late_window
from volume_pool.tests.unit.claim_checks import POST
from volume_pool.tests.unit.claim_checks import receipt
from volume_pool.tests.unit.claim_checks import rows_by_volume
from volume_pool.tests.unit.manager_steps import call
from volume_pool.tests.unit.manager_steps import counts
from volume_pool.tests.unit.manager_steps import CTXT
from volume_pool.tests.unit.manager_steps import fill
from volume_pool.tests.unit.manager_steps import ready


def record_bodies(simulator, monkeypatch):
    """Keep (method, path, body) of every request the simulator serves."""
    seen = []
    handle = simulator.handle

    def recording(method, path, query, body, project=None, **kwargs):
        seen.append((method, path, body))
        return handle(method, path, query, body, project=project, **kwargs)

    monkeypatch.setattr(simulator, 'handle', recording)
    return seen


def test_keyed_miss_creates_with_the_pool_tags_first_and_replays(
        make_manager, simulator, monkeypatch):
    mgr = make_manager({'debian': 0})
    seen = record_bodies(simulator, monkeypatch)
    result = call(mgr.claim, 'debian', name='vnf-m', claim_key='m1')
    assert (result['source'], result['claim_key']) == ('created', 'm1')
    [create] = [body for method, path, body in seen
                if (method, path) == ('POST', '/volumes')]
    metadata = create['volume']['metadata']
    assert metadata[vp_cinder.TAG_POOL] == 'debian'
    assert metadata[vp_cinder.TAG_REQUEST]
    [rename] = [body for method, path, body in seen if method == 'PUT']
    assert rename['volume']['metadata'] == lease_tags()
    volume = simulator.get_volume(result['volume_id'])
    assert (volume['name'], volume['metadata']) == ('vnf-m', lease_tags())
    assert receipt('m1').state == models.R_LEASED
    assert rows_by_volume() == {}
    again = call(mgr.claim, 'debian', name='vnf-m', claim_key='m1')
    assert again == result
    assert len([1 for method, path, _ in seen
                if (method, path) == ('POST', '/volumes')]) == 1
    assert len(simulator.list_volumes()) == 1


def test_keyed_miss_whose_lease_put_fails_leaves_the_volume_in_the_pool(
        make_manager, simulator):
    mgr = make_manager({'debian': 1})  # empty: the claim misses
    # The PUT after the create, then the undo's PUT back, both fail.
    simulator.inject_fault(status=503, method='PUT', path=ONE_VOLUME,
                           count=2)
    with pytest.raises(exception.CinderUnavailable):
        call(mgr.claim, 'debian', name='vnf-m', claim_key='m2')
    [volume] = simulator.list_volumes()
    assert volume['metadata'][vp_cinder.TAG_POOL] == 'debian'
    assert counts() == {models.UNCERTAIN: 1}
    simulator.reset_counts()
    mgr.replenish(CTXT)
    assert simulator.request_counts[POST] == 0  # no replacement
    past_the_late_window(mgr)
    mgr.sync(CTXT)
    waiting.wait_for(lambda: (mgr.sync(CTXT), ready() == 1)[1],
                     what='the created volume ready in the pool')
    assert_settled(mgr, simulator)
    assert list(rows_by_volume()) == [volume['id']]
    assert receipt('m2') is None
    again = call(mgr.claim, 'debian', name='vnf-m', claim_key='m2')
    assert (again['volume_id'], again['source']) == (volume['id'], 'pool')


def test_keyed_miss_whose_create_answer_is_lost_is_not_leaked(
        make_manager, simulator):
    mgr = make_manager({'debian': 1})
    cinder = mgr.claimer._cinder
    real_create = cinder.create_volume

    def lost_answer(**kwargs):
        real_create(**kwargs)  # Cinder made it; the answer never came
        raise exception.CinderUnavailable(reason='connection reset')

    # Not monkeypatch.undo(): that would undo the database fixture too.
    cinder.create_volume = lost_answer
    try:
        with pytest.raises(exception.CinderUnavailable):
            call(mgr.claim, 'debian', name='vnf-lost', claim_key='m3')
    finally:
        del cinder.create_volume
    [volume] = simulator.list_volumes()
    assert volume['metadata'][vp_cinder.TAG_POOL] == 'debian'
    assert counts() == {models.UNCERTAIN: 1}
    with pytest.raises(exception.ClaimInProgress):
        call(mgr.claim, 'debian', name='vnf-lost', claim_key='m3')
    simulator.reset_counts()
    mgr.replenish(CTXT)
    assert simulator.request_counts[POST] == 0
    past_the_late_window(mgr)
    mgr.sync(CTXT)
    assert_settled(mgr, simulator)
    assert list(rows_by_volume()) == [volume['id']]
    again = call(mgr.claim, 'debian', name='vnf-lost', claim_key='m3')
    assert again['volume_id'] == volume['id']


def test_claim_past_many_vanished_volumes_creates_one(make_manager,
                                                      simulator):
    mgr = make_manager({'debian': 5})
    fill(mgr)
    for volume_id in rows_by_volume():
        simulator.remove_volume(volume_id)
    result = call(mgr.claim, 'debian', name='vnf-v', claim_key='v1')
    assert result['source'] == 'created'
    assert rows_by_volume() == {}
    assert receipt('v1').state == models.R_LEASED
