"""Cinder requests that land after the claim gave up on them: nothing
goes back to the pool, or to the next caller, before the late window of
the request has passed and a read of the volume says what it became.

A request is held in the simulator past the client's timeout (one
second), then let through: Cinder applies it late.  Time past the late
window is moved by an override; the checks are those of
``claim_checks``: what Cinder and the tables hold."""

import pytest

from volume_pool import exception
from volume_pool.db import models
from volume_pool.fixtures import waiting
from volume_pool.tests.unit.claim_checks import assert_in_pool
from volume_pool.tests.unit.claim_checks import assert_settled
from volume_pool.tests.unit.claim_checks import lease_tags
from volume_pool.tests.unit.claim_checks import ONE_VOLUME
from volume_pool.tests.unit.claim_checks import past_the_late_window
from volume_pool.tests.unit.claim_checks import receipt
from volume_pool.tests.unit.claim_checks import rows_by_volume
from volume_pool.tests.unit.manager_steps import call
from volume_pool.tests.unit.manager_steps import counts
from volume_pool.tests.unit.manager_steps import CTXT
from volume_pool.tests.unit.manager_steps import fill

PROJECT = '0123456789abcdef0123456789abcdef'
TRANSFER = r'^/os-volume-transfer$|^/volume-transfers$'
ACCEPT = '/accept$'


@pytest.fixture
def impatient_manager(make_manager, conf):
    """A manager whose Cinder requests give up after a second, with one
    ready volume; claims may move volumes into ``PROJECT``."""
    conf.set_override('timeout', 1, group='cinder')
    conf.set_override('claim_projects', [PROJECT], group='volume_pool')
    mgr = make_manager({'debian': 1})
    fill(mgr)
    return mgr


def test_a_late_rename_never_renames_the_next_callers_volume(
        impatient_manager, simulator):
    mgr = impatient_manager
    [volume_id] = rows_by_volume()
    rename = simulator.inject_fault(status=None, method='PUT',
                                    path=ONE_VOLUME, hold=True)
    with pytest.raises(exception.CinderUnavailable):
        call(mgr.claim, 'debian', name='vnf-first', claim_key='first')
    # The rename may still land: the volume waits out its late window.
    assert counts() == {models.UNCERTAIN: 1}
    with pytest.raises(exception.PoolEmpty):
        call(mgr.claim, 'debian', name='vnf-second', claim_key='second',
             create_on_miss=False)
    mgr.sync(CTXT)
    assert counts() == {models.UNCERTAIN: 1}
    rename.release()
    waiting.wait_for(lambda: simulator.get_volume(volume_id)['name'] ==
                     'vnf-first', what='the late rename landed')
    past_the_late_window(mgr)
    mgr.sync(CTXT)
    assert_in_pool(simulator, volume_id)
    assert receipt('first') is None
    second = call(mgr.claim, 'debian', name='vnf-second',
                  claim_key='second', create_on_miss=False)
    assert second['volume_id'] == volume_id
    volume = simulator.get_volume(volume_id)
    assert (volume['name'], volume['metadata']) == ('vnf-second',
                                                    lease_tags())


def test_a_transfer_applied_after_the_claim_gave_up_leaks_nothing(
        impatient_manager, simulator):
    mgr = impatient_manager
    [volume_id] = rows_by_volume()
    offer = simulator.inject_fault(status=None, method='POST',
                                   path=TRANSFER, hold=True)
    with pytest.raises(exception.VolumeTransferFailed):
        call(mgr.claim, 'debian', name='vnf-t', claim_key='t',
             project_id=PROJECT)
    assert counts() == {models.UNCERTAIN: 1}
    offer.release()
    waiting.wait_for(lambda: simulator.get_volume(volume_id)['status'] ==
                     'awaiting-transfer', what='the late transfer landed')
    mgr.sync(CTXT)  # within the window: left alone
    assert counts() == {models.UNCERTAIN: 1}
    past_the_late_window(mgr)
    mgr.sync(CTXT)
    assert_settled(mgr, simulator)
    assert list(rows_by_volume()) == [volume_id]
    assert receipt('t', project='') is None
    again = call(mgr.claim, 'debian', name='vnf-t', claim_key='t',
                 project_id=PROJECT)
    assert again['volume_id'] == volume_id
    owner = simulator.get_volume(volume_id)['os-vol-tenant-attr:tenant_id']
    assert owner == PROJECT


def test_an_accept_that_may_land_late_finds_its_transfer_withdrawn(
        impatient_manager, simulator):
    """The accept got no answer: the claim withdraws the transfer before
    it asks the receiving project, so the accept can no longer land; the
    volume waits out the late window all the same, then serves the key's
    retry."""
    mgr = impatient_manager
    [volume_id] = rows_by_volume()
    accept = simulator.inject_fault(status=None, method='POST', path=ACCEPT,
                                    hold=True)
    with pytest.raises(exception.VolumeTransferFailed):
        call(mgr.claim, 'debian', name='vnf-l', claim_key='l',
             project_id=PROJECT)
    assert counts() == {models.UNCERTAIN: 1}
    volume = simulator.get_volume(volume_id)
    assert (volume['status'], volume['os-vol-tenant-attr:tenant_id']) == (
        'available', simulator.project_id)
    # Whenever it is applied now, the accept finds no transfer.
    accept.release()
    past_the_late_window(mgr)
    mgr.sync(CTXT)
    assert_settled(mgr, simulator)
    again = call(mgr.claim, 'debian', name='vnf-l', claim_key='l',
                 project_id=PROJECT)
    assert again['volume_id'] == volume_id
    owner = simulator.get_volume(volume_id)['os-vol-tenant-attr:tenant_id']
    assert owner == PROJECT
