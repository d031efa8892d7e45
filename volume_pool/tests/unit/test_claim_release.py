"""Release, manager-level, against the Cinder simulator: a keyed claim
given back puts its volume in the pool once, however often it is
retried; an attached volume is never taken back.

The checks are those of ``claim_checks``: what Cinder and the tables
hold."""

import pytest

from volume_pool import exception
from volume_pool.db import models
from volume_pool.tests.unit.claim_checks import assert_in_pool
from volume_pool.tests.unit.claim_checks import assert_settled
from volume_pool.tests.unit.claim_checks import ONE_VOLUME
from volume_pool.tests.unit.claim_checks import receipt
from volume_pool.tests.unit.claim_checks import rows_by_volume
from volume_pool.tests.unit.claim_checks import snapshot_of_world
from volume_pool.tests.unit.manager_steps import call
from volume_pool.tests.unit.manager_steps import counts
from volume_pool.tests.unit.manager_steps import CTXT
from volume_pool.tests.unit.manager_steps import fill


def test_release_gives_the_volume_back_and_is_idempotent(make_manager,
                                                         simulator):
    mgr = make_manager({'debian': 2})
    fill(mgr)
    result = call(mgr.claim, 'debian', name='vnf-r', claim_key='r1')
    volume_id = result['volume_id']
    view = call(mgr.release, 'r1')
    assert (view['state'], view['volume_id'], view['claim_key']) == (
        models.R_RELEASED, volume_id, 'r1')
    assert_in_pool(simulator, volume_id)
    assert_settled(mgr, simulator)
    world = snapshot_of_world(simulator)
    again = call(mgr.release, 'r1')
    assert again['state'] == models.R_RELEASED
    assert snapshot_of_world(simulator) == world
    # The claim is over: its retry and its confirm say so.
    with pytest.raises(exception.ClaimReleased):
        call(mgr.claim, 'debian', name='vnf-r', claim_key='r1')
    with pytest.raises(exception.ClaimReleased):
        call(mgr.confirm, 'r1')
    assert snapshot_of_world(simulator) == world
    mgr.sync(CTXT)
    assert_settled(mgr, simulator)


def test_release_of_an_attached_volume_is_refused_and_the_claim_is_used(
        make_manager, simulator):
    mgr = make_manager({'debian': 2})
    fill(mgr)
    result = call(mgr.claim, 'debian', name='vnf-a', claim_key='a1')
    simulator.attach_volume(result['volume_id'])
    for _ in range(2):
        with pytest.raises(exception.ClaimNotReleasable) as caught:
            call(mgr.release, 'a1')
        assert caught.value.claim_key == 'a1'
        assert receipt('a1').state == models.R_USED
        assert result['volume_id'] not in rows_by_volume()
    volume = simulator.get_volume(result['volume_id'])
    assert (volume['name'], volume['status']) == ('vnf-a', 'in-use')
    assert counts() == {models.AVAILABLE: 1}
    # A retry still gets its volume.
    assert call(mgr.claim, 'debian', name='vnf-a', claim_key='a1') == result


def test_confirm_of_an_unknown_key_is_not_found_its_release_recorded(
        make_manager, simulator):
    mgr = make_manager({'debian': 1})
    fill(mgr)
    world = snapshot_of_world(simulator)
    with pytest.raises(exception.ClaimNotFound) as caught:
        call(mgr.confirm, 'nobody')
    assert caught.value.claim_key == 'nobody'
    assert snapshot_of_world(simulator) == world
    # A release comes first when its caller gave up before any manager
    # saw the claim: recorded, it holds no volume.
    view = call(mgr.release, 'nobody')
    assert (view['state'], view['volume_id'], view['pool']) == (
        models.R_RELEASED, None, None)
    volumes, rows, _receipts = snapshot_of_world(simulator)
    assert (volumes, rows) == world[:2]


def test_release_of_a_created_volume_puts_it_in_the_pool(make_manager,
                                                        simulator):
    mgr = make_manager({'debian': 1})  # empty: the claim misses
    result = call(mgr.claim, 'debian', name='vnf-new', claim_key='n1')
    assert result['source'] == 'created'
    assert call(mgr.release, 'n1')['state'] == models.R_RELEASED
    assert_in_pool(simulator, result['volume_id'])
    assert rows_by_volume()[result['volume_id']].name.startswith(
        mgr.specs['debian'].volume_name_prefix)
    mgr.sync(CTXT)
    assert_settled(mgr, simulator)


def test_release_retried_after_a_cinder_error_finishes_or_says_so(
        make_manager, simulator):
    mgr = make_manager({'debian': 1})
    fill(mgr)
    result = call(mgr.claim, 'debian', name='vnf-rr', claim_key='rr')
    simulator.inject_fault(status=503, method='GET', path=ONE_VOLUME,
                           count=1)
    with pytest.raises(exception.CinderUnavailable):
        call(mgr.release, 'rr')
    try:
        view = call(mgr.release, 'rr')
    except exception.ClaimInProgress:
        return  # "ask again later": honest
    assert view['state'] == models.R_RELEASED
    assert_in_pool(simulator, result['volume_id'])
