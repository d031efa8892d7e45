"""Confirm, release and sync's lease pass (``volume_pool.leases``),
guard by guard, each pinned by a test that fails without it: a confirm
stands though Cinder keeps the lease tag, a claim into a project is
never released, every attached leased volume is latched used whatever
else is listed with it, a lease tag Cinder will not drop or a return
Cinder fails holds back no other return, a manager returns the expired
leases of the pools it owns and only those, and announces a return only
when the volume is back in its pool.

The checks are those of ``claim_checks``: what Cinder and the tables
hold."""

import datetime

import pytest
import sqlalchemy as sa

from volume_pool import exception
from volume_pool import leases
from volume_pool import notifications
from volume_pool.db import api as db_api
from volume_pool.db import models
from volume_pool.fixtures import cinder_handles
from volume_pool.tests.unit.claim_checks import lease_tags
from volume_pool.tests.unit.claim_checks import receipt
from volume_pool.tests.unit.claim_checks import rows_by_volume
from volume_pool.tests.unit.manager_steps import call
from volume_pool.tests.unit.manager_steps import fill
from volume_pool.tests.unit.test_claim_lease import expire_lease

PROJECT = '0123456789abcdef0123456789abcdef'


def lease_ran_out_in(year, key):
    """The receipt's lease ran out in ``year``: an order among leases."""
    table = models.ClaimReceipt
    with db_api.writer() as session:
        session.execute(sa.update(table).where(table.claim_key == key)
                        .values(lease_expires_at=datetime.datetime(
                            year, 1, 1)))


def test_a_confirm_stands_though_cinder_keeps_the_lease_tag(
        make_manager, simulator):
    """Cinder fails to drop the lease tag: the confirm is recorded all
    the same and answered ``used`` (sync drops the tag later)."""
    mgr = make_manager({'debian': 1})
    fill(mgr)
    result = call(mgr.claim, 'debian', name='vnf-c', claim_key='c1')
    simulator.inject_fault(status=500, path='^/volumes/%s/metadata'
                           % result['volume_id'], count=20)
    assert call(mgr.confirm, 'c1')['state'] == models.R_USED
    assert receipt('c1').state == models.R_USED


def test_a_claim_into_a_project_is_never_released(make_manager, simulator,
                                                  conf):
    """Answered in time, the volume is the receiving project's: its
    release is refused, not answered as if the volume were back in the
    pool."""
    conf.set_override('claim_projects', [PROJECT], group='volume_pool')
    mgr = make_manager({'debian': 1})
    fill(mgr)
    result = call(mgr.claim, 'debian', name='vnf-p', claim_key='p1',
                  project_id=PROJECT)
    simulator.reset_counts()
    with pytest.raises(exception.ClaimNotReleasable):
        call(mgr.release, 'p1')
    assert simulator.request_counts == {}  # refused without a look
    assert receipt('p1').state == models.R_USED
    assert rows_by_volume() == {}
    volume = simulator.get_volume(result['volume_id'])
    assert volume['os-vol-tenant-attr:tenant_id'] == PROJECT


def test_a_volume_moved_to_a_project_it_was_not_claimed_into_stays(
        make_manager, simulator):
    """Someone transferred a leased volume to another project: the pool
    brings volumes back only from the project a claim put them in, never
    from one it was not asked to act as."""
    mgr = make_manager({'debian': 1})
    fill(mgr)
    result = call(mgr.claim, 'debian', name='vnf-m', claim_key='m1')
    giver = cinder_handles.noauth_cinder_client(simulator.endpoint,
                                                simulator.project_id)
    offer = giver.transfers.create(result['volume_id'])
    cinder_handles.noauth_cinder_client(
        simulator.endpoint, PROJECT).transfers.accept(offer.id,
                                                      offer.auth_key)
    with pytest.raises(exception.ClaimNotReleasable) as caught:
        call(mgr.release, 'm1')
    assert PROJECT in str(caught.value)
    volume = simulator.get_volume(result['volume_id'])
    assert volume['os-vol-tenant-attr:tenant_id'] == PROJECT
    assert receipt('m1').state == models.R_USED


def test_an_attached_volume_is_latched_used_past_stray_lease_tags(
        make_manager, simulator):
    """Volumes with a lease tag but no claim (made or tagged by hand),
    listed before and after a caller's attached volume, are passed over:
    the caller's volume is still latched used and loses its lease tag."""
    simulator.add_volume(name='stray-before', metadata=lease_tags())
    mgr = make_manager({'debian': 1})
    fill(mgr)
    result = call(mgr.claim, 'debian', name='vnf-a', claim_key='a1')
    simulator.add_volume(name='stray-after', metadata=lease_tags())
    simulator.attach_volume(result['volume_id'])
    keeper = leases.LeaseKeeper(mgr._cinder, mgr.host, mgr.incarnation)
    report = keeper.run(None)
    assert report['latched'] == 1
    assert receipt('a1').state == models.R_USED
    assert simulator.get_volume(result['volume_id'])['metadata'] == {}


def test_an_attached_volume_is_latched_used_between_idle_leases(
        make_manager, simulator):
    """Three leased volumes, the middle one attached: the idle ones
    before and after it are passed over, the attached one is latched."""
    mgr = make_manager({'debian': 3})
    fill(mgr)
    claimed = [call(mgr.claim, 'debian', name='vnf-%d' % n,
                    claim_key='k%d' % n) for n in range(3)]
    simulator.attach_volume(claimed[1]['volume_id'])
    keeper = leases.LeaseKeeper(mgr._cinder, mgr.host, mgr.incarnation)
    keeper.run(None)
    assert [receipt('k%d' % n).state for n in range(3)] == [
        models.R_LEASED, models.R_USED, models.R_LEASED]


def test_a_lease_tag_cinder_will_not_drop_holds_back_no_return(
        make_manager, simulator):
    """Dropping the lease tag of a used volume fails in Cinder: counted
    as an error, and the pass still returns the lease that ran out."""
    mgr = make_manager({'debian': 2})
    fill(mgr)
    used = call(mgr.claim, 'debian', name='vnf-u', claim_key='u1')
    expiring = call(mgr.claim, 'debian', name='vnf-e', claim_key='e1')
    simulator.attach_volume(used['volume_id'])
    expire_lease('e1')
    simulator.inject_fault(status=500, path='^/volumes/%s/metadata'
                           % used['volume_id'], count=20)
    keeper = leases.LeaseKeeper(mgr._cinder, mgr.host, mgr.incarnation)
    report = keeper.run(None)
    assert report['errors'] == 1
    assert receipt('u1').state == models.R_USED
    assert receipt('e1').state == models.R_RETURNED
    assert expiring['volume_id'] in rows_by_volume()


def test_a_return_cinder_fails_holds_back_no_other_return(make_manager,
                                                          simulator):
    """Two leases ran out; Cinder fails on the volume of the older one:
    counted as an error and left for the next pass, and the other lease
    is returned all the same."""
    mgr = make_manager({'debian': 2})
    fill(mgr)
    failing = call(mgr.claim, 'debian', name='vnf-f', claim_key='f1')
    other = call(mgr.claim, 'debian', name='vnf-o', claim_key='o1')
    lease_ran_out_in(2000, 'f1')
    lease_ran_out_in(2001, 'o1')
    simulator.inject_fault(status=500, path='^/volumes/%s'
                           % failing['volume_id'], count=20)
    keeper = leases.LeaseKeeper(mgr._cinder, mgr.host, mgr.incarnation)
    report = keeper.run(None)
    assert (report['returned'], report['errors']) == (1, 1)
    assert receipt('o1').state == models.R_RETURNED
    assert other['volume_id'] in rows_by_volume()
    assert receipt('f1').state != models.R_RETURNED


def test_a_manager_returns_the_expired_leases_of_its_own_pools_only(
        make_manager, simulator):
    """The pools of a cluster are shared out among its managers: a lease
    that ran out in a pool this manager does not own (listed first, the
    older) is the owner's to return and stays leased here; the one of
    its own pool is returned."""
    mgr = make_manager({'debian': 1, 'ubuntu': 1})
    fill(mgr)
    fill(mgr, pool='ubuntu')
    ours = call(mgr.claim, 'debian', name='vnf-o', claim_key='o1')
    theirs = call(mgr.claim, 'ubuntu', name='vnf-t', claim_key='t1')
    lease_ran_out_in(2000, 't1')
    lease_ran_out_in(2001, 'o1')
    keeper = leases.LeaseKeeper(mgr._cinder, mgr.host, mgr.incarnation)
    report = keeper.run(None, owns=lambda pool: pool == 'debian')
    assert report['returned'] == 1
    assert receipt('o1').state == models.R_RETURNED
    assert ours['volume_id'] in rows_by_volume()
    assert receipt('t1').state == models.R_LEASED
    assert theirs['volume_id'] not in rows_by_volume()
    assert simulator.get_volume(theirs['volume_id'])['metadata'] == \
        lease_tags()


def test_an_expired_lease_whose_volume_is_gone_is_not_announced_returned(
        make_manager, simulator, monkeypatch):
    """The volume of an expired lease was deleted in Cinder: nothing goes
    back to the pool, so no ``claim.returned`` notification is sent and
    the pass counts no return."""
    mgr = make_manager({'debian': 1})
    fill(mgr)
    result = call(mgr.claim, 'debian', name='vnf-g', claim_key='g1')
    expire_lease('g1')
    simulator.remove_volume(result['volume_id'])
    sent = []
    monkeypatch.setattr(notifications, 'claim_returned',
                        lambda host, receipt, reason: sent.append(receipt))
    keeper = leases.LeaseKeeper(mgr._cinder, mgr.host, mgr.incarnation)
    report = keeper.run(None)
    assert (report['returned'], sent) == (0, [])
    assert receipt('g1').state != models.R_RETURNED
    assert rows_by_volume() == {}
