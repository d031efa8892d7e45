"""Two deployments in one Cinder project: each lists, adopts, trims and
deletes only the volumes that carry its own identity, made at ``db sync``
and kept in its database."""

from oslo_utils import uuidutils
import pytest

from volume_pool import cinder as vp_cinder
from volume_pool import clusters
from volume_pool import sync
from volume_pool.db import api as db_api
from volume_pool.db import deployment as db_deployment
from volume_pool.db import models
from volume_pool.tests.conftest import cinder_section
from volume_pool.tests.unit import claim_checks
from volume_pool.tests.unit.manager_steps import call
from volume_pool.tests.unit.manager_steps import CTXT
from volume_pool.tests.unit.manager_steps import fill

OTHER = 'another-deployments-identity'


def others_volumes(simulator, snapshot, count, cluster=None):
    """``count`` ready pool volumes of deployment ``OTHER``: tagged as
    this deployment tags its own, but for the identity."""
    return {simulator.add_volume(
        name='other-%d' % index, snapshot_id=snapshot,
        metadata=vp_cinder.pool_tags('debian', cluster, 'other-r%d' % index,
                                     OTHER))
        for index in range(count)}


def untouched(simulator, volume_ids):
    """Every volume still in Cinder, with the other deployment's tags."""
    for volume_id in volume_ids:
        volume = simulator.get_volume(volume_id)
        assert volume is not None, volume_id
        assert volume['metadata'][vp_cinder.TAG_DEPLOYMENT] == OTHER
        assert volume['status'] == 'available'


def test_the_identity_is_made_once_and_kept(database):
    identity = db_deployment.identity()
    assert uuidutils.is_uuid_like(identity)
    assert db_deployment.identity() == identity


def test_every_pool_volume_carries_the_deployment(make_manager, simulator):
    mgr = make_manager({'debian': 2})
    fill(mgr)
    identity = db_deployment.identity()
    for row in db_api.get_rows(None):
        metadata = simulator.get_volume(row.volume_id)['metadata']
        assert metadata == claim_checks.pool_tags('debian', None,
                                                  row.request_id)
        assert metadata[vp_cinder.TAG_DEPLOYMENT] == identity


@pytest.mark.parametrize('per_pool_listings', [sync.PER_POOL_LISTINGS, 0],
                         ids=['pool-listing', 'cluster-listing'])
def test_sync_never_adopts_trims_or_deletes_another_deployments_volumes(
        make_manager, simulator, monkeypatch, per_pool_listings):
    monkeypatch.setattr(sync, 'PER_POOL_LISTINGS', per_pool_listings)
    # The other deployment's pool is fuller than this one's target: an
    # adoption would take some and delete the rest as a surplus.
    mgr = make_manager({'debian': 1})
    theirs = others_volumes(simulator, mgr.snapshots['debian'], 3)
    fill(mgr)
    for _ in range(3):
        mgr.sync(CTXT)
        mgr.replenish(CTXT)
    untouched(simulator, theirs)
    rows = db_api.get_rows(None)
    assert len(rows) == 1
    assert not {row.volume_id for row in rows} & theirs


def test_a_claim_never_takes_another_deployments_volume(make_manager,
                                                       simulator):
    mgr = make_manager({'debian': 0})
    theirs = others_volumes(simulator, mgr.snapshots['debian'], 2)
    mgr.sync(CTXT)
    result = call(mgr.claim, 'debian', name='vnf-1')
    assert result['source'] == 'created'
    assert result['volume_id'] not in theirs
    untouched(simulator, theirs)


def test_a_drained_cluster_spares_another_deployments_volumes(
        write_config, database, simulator, conf):
    write_config('[DEFAULT]\ncluster = east\n' + cinder_section(simulator))
    cinder = vp_cinder.Cinder(conf, deployment=db_deployment.identity())
    snapshot = simulator.add_snapshot(size=1)
    theirs = others_volumes(simulator, snapshot, 2, cluster='old')
    mine = simulator.add_volume(
        name='mine', snapshot_id=snapshot,
        metadata=claim_checks.pool_tags('debian', 'old', 'mine-r'))
    report = clusters.drain(cinder, 'old', 'east', 60, timeout=5)
    assert report.deleted == 1
    assert simulator.get_volume(mine) is None
    untouched(simulator, theirs)


def test_an_earlier_releases_volumes_are_taken_over_by_their_rows(
        make_manager, simulator):
    """Volumes tagged before the identity existed: the one a row names is
    this deployment's and gets the tag; one no row names could be any
    deployment's and is left alone."""
    mgr = make_manager({'debian': 1})
    snapshot = mgr.snapshots['debian']
    earlier = vp_cinder.pool_tags('debian', None, 'r-named')
    named = simulator.add_volume(name='named', snapshot_id=snapshot,
                                 metadata=earlier)
    db_api.create_volume_row(
        request_id='r-named', volume_id=named, pool='debian', cluster=None,
        snapshot_id=snapshot, size=1, name='named', host='earlier',
        status=models.AVAILABLE)
    unnamed = simulator.add_volume(
        name='unnamed', snapshot_id=snapshot,
        metadata=vp_cinder.pool_tags('debian', None, 'r-unnamed'))
    mgr.sync(CTXT)
    assert simulator.get_volume(named)['metadata'] == \
        claim_checks.pool_tags('debian', None, 'r-named')
    assert [row.volume_id for row in db_api.get_rows(None)] == [named]
    mgr.sync(CTXT)  # now in the deployment's listing: kept as it is
    assert [(row.volume_id, row.status) for row in db_api.get_rows(None)] \
        == [(named, models.AVAILABLE)]
    assert simulator.get_volume(unnamed)['metadata'] == \
        vp_cinder.pool_tags('debian', None, 'r-unnamed')
