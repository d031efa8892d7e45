"""Confirm and the lease, manager-level, against the Cinder simulator: a
confirmed or attached volume is the caller's for good; an unconfirmed
lease runs out on the database clock and its volume goes back to the
pool, trimmed to target.

The checks are those of ``claim_checks``: what Cinder and the tables
hold."""

import pytest
import sqlalchemy as sa

from volume_pool import exception
from volume_pool.db import api as db_api
from volume_pool.db import models
from volume_pool.fixtures import waiting
from volume_pool.tests.unit.claim_checks import assert_in_pool
from volume_pool.tests.unit.claim_checks import assert_settled
from volume_pool.tests.unit.claim_checks import lease_tags
from volume_pool.tests.unit.claim_checks import PAST
from volume_pool.tests.unit.claim_checks import receipt
from volume_pool.tests.unit.claim_checks import rows_by_volume
from volume_pool.tests.unit.manager_steps import call
from volume_pool.tests.unit.manager_steps import counts
from volume_pool.tests.unit.manager_steps import CTXT
from volume_pool.tests.unit.manager_steps import fill


def expire_lease(key, project=''):
    """Move the receipt's lease into the past (the DB clock is real)."""
    table = models.ClaimReceipt
    with db_api.writer() as session:
        done = session.execute(
            sa.update(table)
            .where(table.claim_key == key,
                   table.project_id == project)
            .values(lease_expires_at=PAST)).rowcount
    assert done == 1


def test_confirm_ends_the_lease_for_good_and_is_idempotent(make_manager,
                                                           simulator):
    mgr = make_manager({'debian': 2})
    fill(mgr)
    result = call(mgr.claim, 'debian', name='vnf-c', claim_key='c1')
    view = call(mgr.confirm, 'c1')
    assert (view['state'], view['lease_expires_at'], view['volume_id']) == (
        models.R_USED, None, result['volume_id'])
    volume = simulator.get_volume(result['volume_id'])
    assert (volume['name'], volume['metadata']) == ('vnf-c', {})
    assert call(mgr.confirm, 'c1')['state'] == models.R_USED
    assert simulator.get_volume(result['volume_id'])['metadata'] == {}
    # Even with its (old) lease time in the past, sync never takes it.
    expire_lease('c1')
    mgr.sync(CTXT)
    assert result['volume_id'] not in rows_by_volume()
    assert receipt('c1').state == models.R_USED
    assert simulator.get_volume(result['volume_id'])['name'] == 'vnf-c'
    assert call(mgr.claim, 'debian', name='vnf-c', claim_key='c1') == result


def test_unconfirmed_lease_runs_out_and_the_pool_is_trimmed_to_target(
        make_manager, simulator):
    mgr = make_manager({'debian': 2})
    fill(mgr)
    result = call(mgr.claim, 'debian', name='vnf-l', claim_key='l1')
    fill(mgr)  # replenish replaced it: the return makes a surplus
    mgr.sync(CTXT)
    assert simulator.get_volume(result['volume_id'])['metadata'] == \
        lease_tags()  # the lease has not run out: untouched
    expire_lease('l1')
    mgr.sync(CTXT)
    assert receipt('l1').state == models.R_RETURNED
    # The returned volume is a pool volume again; the oldest surplus one
    # is deleted, never more: the pool is at its target.
    assert_in_pool(simulator, result['volume_id'])
    assert counts() == {models.AVAILABLE: 2, models.DELETING: 1}
    waiting.wait_for(lambda: len(simulator.list_volumes()) == 2,
                     what='the surplus volume deleted')
    mgr.sync(CTXT)
    assert_settled(mgr, simulator)
    with pytest.raises(exception.ClaimLeaseExpired):
        call(mgr.claim, 'debian', name='vnf-l', claim_key='l1')
    with pytest.raises(exception.ClaimLeaseExpired):
        call(mgr.confirm, 'l1')
    assert call(mgr.release, 'l1')['state'] == models.R_RETURNED
    assert_settled(mgr, simulator)


def test_returned_lease_below_target_deletes_nothing(make_manager,
                                                     simulator):
    mgr = make_manager({'debian': 2})
    fill(mgr)
    result = call(mgr.claim, 'debian', claim_key='l2')
    expire_lease('l2')
    mgr.sync(CTXT)
    assert_settled(mgr, simulator)
    assert result['volume_id'] in rows_by_volume()


def test_short_lease_runs_out_on_the_database_clock(make_manager,
                                                    simulator):
    mgr = make_manager({'debian': 1}, claim_lease=1)
    fill(mgr)
    result = call(mgr.claim, 'debian', name='vnf-s', claim_key='s1')

    def returned():
        mgr.sync(CTXT)
        return receipt('s1').state == models.R_RETURNED

    waiting.wait_for(returned, timeout=10, interval=0.2,
                     what='the one-second lease returned')
    assert_settled(mgr, simulator)
    assert list(rows_by_volume()) == [result['volume_id']]


def test_leased_volume_seen_attached_is_latched_used_and_kept(make_manager,
                                                              simulator):
    mgr = make_manager({'debian': 1})
    fill(mgr)
    result = call(mgr.claim, 'debian', name='vnf-u', claim_key='u1')
    simulator.attach_volume(result['volume_id'])
    mgr.sync(CTXT)
    assert receipt('u1').state == models.R_USED
    volume = simulator.get_volume(result['volume_id'])
    assert (volume['name'], volume['metadata']) == ('vnf-u', {})
    # Latched: a lease time in the past changes nothing now.
    expire_lease('u1')
    mgr.sync(CTXT)
    assert receipt('u1').state == models.R_USED
    assert rows_by_volume() == {}
    assert simulator.get_volume(result['volume_id'])['name'] == 'vnf-u'


def test_expired_lease_of_an_attached_volume_is_never_returned(
        make_manager, simulator):
    """Attached and out of lease in the same sync: used, not returned."""
    mgr = make_manager({'debian': 1})
    fill(mgr)
    result = call(mgr.claim, 'debian', name='vnf-e', claim_key='e1')
    simulator.attach_volume(result['volume_id'])
    expire_lease('e1')
    mgr.sync(CTXT)
    assert receipt('e1').state == models.R_USED
    assert rows_by_volume() == {}
    volume = simulator.get_volume(result['volume_id'])
    assert (volume['name'], volume['status']) == ('vnf-e', 'in-use')
