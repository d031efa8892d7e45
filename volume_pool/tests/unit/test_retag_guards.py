"""A row's volume that the cluster's listing missed, guard by guard
(``volume_pool.retag.confirm_gone``): a volume in use or being deleted is
let go untouched, and a volume an earlier release tagged gets only the
tags it lacks, by a merge, never a rewrite that would undo a claim's
rename made meanwhile.  On the simulator and SQLite."""

from volume_pool import cinder as vp_cinder
from volume_pool import retag
from volume_pool import sync
from volume_pool.db import api as db_api
from volume_pool.db import models
from volume_pool.tests.unit import claim_checks

POOL = 'debian'
PUT = ('PUT', '/volumes/{id}')
MERGE = ('POST', '/volumes/{id}/metadata')


def row_of(mgr, volume_id, request_id):
    db_api.create_volume_row(
        request_id=request_id, volume_id=volume_id, pool=POOL, cluster=None,
        snapshot_id=mgr.snapshots[POOL], size=1, name='pool-volume',
        host='mgr-1', status=models.AVAILABLE)
    [row] = [r for r in db_api.get_rows(None) if r.volume_id == volume_id]
    return row


def untagged_volume(mgr, simulator, request_id):
    """A pool volume a late request stripped of its tags."""
    return simulator.add_volume(snapshot_id=mgr.snapshots[POOL],
                                name='vnf-a-caller-named', metadata={})


def test_a_volume_in_use_is_let_go_untouched(make_manager, simulator):
    mgr = make_manager({POOL: 1})
    volume_id = untagged_volume(mgr, simulator, 'req-used')
    simulator.attach_volume(volume_id)
    row = row_of(mgr, volume_id, 'req-used')
    simulator.reset_counts()
    assert retag.confirm_gone(mgr._cinder, row, sync.SyncReport()) is None
    assert simulator.request_counts[PUT] == 0
    assert simulator.get_volume(volume_id)['metadata'] == {}


def test_a_volume_that_lost_its_tags_gets_them_back(make_manager,
                                                    simulator):
    mgr = make_manager({POOL: 1})
    volume_id = untagged_volume(mgr, simulator, 'req-lost')
    row = row_of(mgr, volume_id, 'req-lost')
    report = sync.SyncReport()
    volume = retag.confirm_gone(mgr._cinder, row, report)
    assert volume.metadata == claim_checks.pool_tags(POOL, None, 'req-lost')
    assert report.retagged == 1
    assert simulator.get_volume(volume_id)['name'] == 'pool-volume'


def test_an_earlier_releases_volume_gets_its_missing_tags_by_a_merge(
        make_manager, simulator):
    """Pool and request tags, no cluster or deployment tag: only those
    two are added (a merge a concurrent claim's rename wins over), and
    the volume's name is left alone."""
    mgr = make_manager({POOL: 1})
    earlier = {vp_cinder.TAG_POOL: POOL,
               vp_cinder.TAG_REQUEST: 'req-earlier'}
    volume_id = simulator.add_volume(snapshot_id=mgr.snapshots[POOL],
                                     name='its-own-name', metadata=earlier)
    row = row_of(mgr, volume_id, 'req-earlier')
    simulator.reset_counts()
    report = sync.SyncReport()
    volume = retag.confirm_gone(mgr._cinder, row, report)
    assert (simulator.request_counts[PUT], simulator.request_counts[MERGE],
            report.retagged) == (0, 1, 1)
    expected = claim_checks.pool_tags(POOL, None, 'req-earlier')
    assert volume.metadata == expected
    assert simulator.get_volume(volume_id)['metadata'] == expected
    assert simulator.get_volume(volume_id)['name'] == 'its-own-name'
