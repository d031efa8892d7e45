"""Managers that share a cluster: a change of a pool's snapshot deletes
the old volumes only once every live manager has the new snapshot, and
managers without a coordination backend say that they share."""

import dataclasses

from volume_pool import cinder as vp_cinder
from volume_pool.db import api as db_api
from volume_pool.db import managers as db_managers
from volume_pool.fixtures import costs
from volume_pool.tests.unit import claim_checks
from volume_pool.tests.unit import manager_steps as tm


def _rotate(mgr, simulator, pool='debian'):
    """The operator's change of snapshot_id, as a restart applies it
    (the manager's record included)."""
    new = simulator.add_snapshot(size=1)
    mgr.specs = dict(mgr.specs)
    mgr.specs[pool] = dataclasses.replace(mgr.specs[pool], snapshot_id=new)
    db_managers.heartbeat(mgr.incarnation, mgr._snapshots())
    return new


def _snapshots_in_cinder(simulator, pool='debian'):
    return sorted(v['snapshot_id'] for v in tm.tagged(simulator, pool)
                  if v['status'] != 'deleting')


def test_old_volumes_stay_while_a_live_manager_has_the_old_snapshot(
        make_manager, simulator):
    mgr = make_manager({'debian': 2})
    tm.fill(mgr)
    old = mgr.snapshots['debian']
    db_managers.register('peer', None, 'peer-1', pools={'debian': old})
    new = _rotate(mgr, simulator)
    mgr.sync(tm.CTXT)
    assert _snapshots_in_cinder(simulator) == [old, old]
    assert {r.snapshot_id for r in db_api.get_rows(None)} == {old}
    # The peer takes the new config: now every live manager agrees.
    db_managers.heartbeat('peer-1', {'debian': new})
    mgr.sync(tm.CTXT)
    assert old not in _snapshots_in_cinder(simulator)


def test_a_manager_that_does_not_say_blocks_the_rotation(make_manager,
                                                         simulator):
    mgr = make_manager({'debian': 1})
    tm.fill(mgr)
    old = mgr.snapshots['debian']
    db_managers.register('older', None, 'older-1')  # code that says nothing
    _rotate(mgr, simulator)
    mgr.sync(tm.CTXT)
    assert _snapshots_in_cinder(simulator) == [old]
    # Once it stops, the rotation goes on.
    db_managers.stopped('older-1')
    mgr.sync(tm.CTXT)
    assert _snapshots_in_cinder(simulator) == []


def test_a_manager_with_the_old_config_keeps_the_new_volumes(make_manager,
                                                             simulator):
    mgr = make_manager({'debian': 2})
    old = mgr.snapshots['debian']
    new = _rotate(mgr, simulator)
    tm.fill(mgr)  # two volumes of the new snapshot
    # This manager goes back to the old config while a peer has the new.
    db_managers.register('peer', None, 'peer-1', pools={'debian': new})
    mgr.specs = dict(mgr.specs)
    mgr.specs['debian'] = dataclasses.replace(mgr.specs['debian'],
                                              snapshot_id=old)
    db_managers.heartbeat(mgr.incarnation, mgr._snapshots())
    mgr.sync(tm.CTXT)
    assert _snapshots_in_cinder(simulator) == [new, new]
    assert len(db_api.get_rows(None)) == 2


def test_a_manager_without_the_pool_does_not_block(make_manager, simulator):
    mgr = make_manager({'debian': 1})
    tm.fill(mgr)
    db_managers.register('peer', None, 'peer-1', pools={'other': 'x'})
    new = _rotate(mgr, simulator)
    mgr.sync(tm.CTXT)
    tm.fill(mgr)
    assert _snapshots_in_cinder(simulator) == [new]


def test_peers_without_coordination_are_logged_once(make_manager, caplog):
    mgr = make_manager({'debian': 1})
    mgr.sync(tm.CTXT)
    assert 'share cluster' not in caplog.text
    db_managers.register('peer', None, 'peer-1', pools={'debian': 'x'})
    # A predecessor under this host name that died is no peer.
    db_managers.register(mgr.host, None, 'dead-predecessor')
    mgr.sync(tm.CTXT)
    mgr.sync(tm.CTXT)
    assert caplog.text.count('Managers peer share cluster (none)') == 1
    assert mgr.host not in caplog.text.split('share cluster')[0]


def test_volumes_without_the_cluster_tag_are_tagged_again(make_manager,
                                                          simulator):
    """An earlier release tagged no cluster without a cluster name."""
    mgr = make_manager({'debian': 2})
    tm.fill(mgr)
    for volume in tm.tagged(simulator):
        with simulator._lock:
            del simulator._store.volumes[volume['id']]['metadata'][
                vp_cinder.TAG_CLUSTER]
    mgr.sync(tm.CTXT)
    tags = [v['metadata'].get(vp_cinder.TAG_CLUSTER)
            for v in tm.tagged(simulator)]
    assert tags == ['default', 'default']
    assert len(db_api.get_rows(None)) == 2


def test_a_pool_never_takes_volumes_tagged_in_another_case(make_manager,
                                                           simulator):
    """Cinder's filter matches "DEBIAN" for "debian": not the pool's."""
    mgr = make_manager({'debian': 1})
    tm.fill(mgr)
    other = simulator.add_volume(
        snapshot_id=mgr.snapshots['debian'],
        metadata=claim_checks.pool_tags('DEBIAN', None, 'r-other'))
    assert [v.id for v in mgr._cinder.list_volumes(
        {vp_cinder.TAG_POOL: 'debian'})] == [
            r.volume_id for r in db_api.get_rows(None)]
    mgr.sync(tm.CTXT)
    assert simulator.get_volume(other)['status'] == 'available'
    assert len(db_api.get_rows(None)) == 1


def test_a_create_of_an_earlier_release_is_found_by_its_request(
        make_manager, simulator):
    """Its manager died before it saved the volume id, and it tagged no
    cluster: the cluster's listing misses the volume, its request tag
    does not."""
    mgr = make_manager({'debian': 1})
    db_managers.register('old', None, 'old-1')
    db_managers.stopped('old-1')
    db_api.create_volume_row(
        request_id='req-old', pool='debian', cluster=None,
        snapshot_id=mgr.snapshots['debian'], size=1, name='old-create',
        host='old', incarnation='old-1')
    volume_id = simulator.add_volume(
        snapshot_id=mgr.snapshots['debian'],
        metadata={vp_cinder.TAG_POOL: 'debian',
                  vp_cinder.TAG_REQUEST: 'req-old'})
    mgr.sync(tm.CTXT)
    mgr.sync(tm.CTXT)
    assert [(r.volume_id, r.request_id) for r in db_api.get_rows(None)] == [
        (volume_id, 'req-old')]
    assert simulator.get_volume(volume_id)['metadata'][
        vp_cinder.TAG_CLUSTER] == 'default'


def test_the_heartbeat_writes_the_pools_only_when_they_changed(
        make_manager, simulator):
    mgr = make_manager({'debian': 2})
    with costs.statements() as quiet:
        mgr.heartbeat()
    new = simulator.add_snapshot(size=1)
    mgr.specs = dict(mgr.specs)
    mgr.specs['debian'] = dataclasses.replace(mgr.specs['debian'],
                                              snapshot_id=new)
    with costs.statements() as changed:
        mgr.heartbeat()
    assert ['pools' in s for s in quiet] == [False]
    assert ['pools' in s for s in changed] == [True]
    [(_host, _inc, pools)] = db_managers.pool_views(None, 60)
    assert pools == {'debian': new}


def test_a_rotation_deletes_an_old_volume_whose_row_still_says_creating(
        make_manager, simulator):
    """Its create finished in Cinder, its row was not updated yet: the
    rotation deletes it like a ready one."""
    import sqlalchemy as sa

    from volume_pool.db import models
    mgr = make_manager({'debian': 2})
    tm.fill(mgr)
    old = mgr.snapshots['debian']
    made = sorted(r.volume_id for r in db_api.get_rows(None))[0]
    table = models.PoolVolume
    with db_api.writer() as session:
        session.execute(sa.update(table).where(table.volume_id == made)
                        .values(status=models.CREATING))
    _rotate(mgr, simulator)
    mgr.sync(tm.CTXT)
    assert old not in _snapshots_in_cinder(simulator)
