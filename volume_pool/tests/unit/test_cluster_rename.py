"""A renamed cluster: the stranded report, ``cluster adopt`` and ``cluster
drain``, on SQLite and the Cinder simulator; every test checks what the
table and Cinder hold afterwards."""

import datetime

from oslo_utils import uuidutils
import pytest
import sqlalchemy as sa

from volume_pool import cinder as vp_cinder
from volume_pool import cluster_names
from volume_pool import clusters
from volume_pool import pool_spec
from volume_pool import sync as vp_sync
from volume_pool.db import api as db_api
from volume_pool.db import clusters as db_clusters
from volume_pool.db import managers as db_managers
from volume_pool.db import models
from volume_pool.tests.conftest import cinder_section

# The functional layer runs these again on the real services.
pytestmark = pytest.mark.recollect

DOWN_TIME = 60


@pytest.fixture
def cinder(write_config, database, simulator, conf):
    """This manager serves cluster ``east``; a Cinder handle on the
    simulator."""
    write_config('[DEFAULT]\ncluster = east\n' + cinder_section(simulator))
    return vp_cinder.Cinder(conf)


@pytest.fixture
def snapshot(simulator):
    return simulator.add_snapshot(size=1)


def pool_volume(simulator, snapshot, cluster, status=models.AVAILABLE,
                bound=True):
    """A row of ``cluster`` and its tagged volume (``bound=False``: the
    create crashed before the volume id was saved)."""
    request_id = uuidutils.generate_uuid()
    name = 'pool-%s' % request_id[:8]
    volume_id = simulator.add_volume(
        name=name, snapshot_id=snapshot,
        metadata=vp_cinder.pool_tags('debian', cluster, request_id))
    return db_api.create_volume_row(
        request_id=request_id, volume_id=volume_id if bound else None,
        pool='debian', cluster=cluster, snapshot_id=snapshot, size=1,
        name=name, host='old-host', status=status), volume_id


def still_creating(cinder, simulator, snapshot, cluster):
    """A row and a volume Cinder is still creating (Cinder refuses to
    delete it as it is)."""
    request_id = uuidutils.generate_uuid()
    simulator.creation_delay = 600
    try:
        volume = cinder.create_volume(
            snapshot_id=snapshot, name='creating',
            metadata=vp_cinder.pool_tags('debian', cluster, request_id))
    finally:
        simulator.creation_delay = 0
    db_api.create_volume_row(
        request_id=request_id, volume_id=volume.id, pool='debian',
        cluster=cluster, snapshot_id=snapshot, size=1, name='creating',
        host='old-host', status=models.CREATING)
    return volume.id


def hold_by_stopped_manager(row, cluster):
    """The row is held by a claim of a manager that stopped."""
    db_managers.register('old-host', cluster, 'inc-stopped')
    db_managers.stopped('inc-stopped')
    now = datetime.datetime.utcnow()
    with db_api.writer() as session:
        session.execute(sa.update(models.PoolVolume)
                        .where(models.PoolVolume.id == row.id)
                        .values(status=models.CLAIMING,
                                claim_id=uuidutils.generate_uuid(),
                                incarnation='inc-stopped', claimed_at=now,
                                claim_deadline=now + datetime.timedelta(
                                    seconds=60)))


def lease(simulator, cluster, volume_id=None):
    """A claimed volume under lease, and its receipt."""
    volume_id = volume_id or simulator.add_volume(
        name='by-caller', metadata=dict(vp_cinder.lease_tags(cluster),
                                        owner='caller'))
    with db_api.writer() as session:
        session.add(models.ClaimReceipt(
            claim_id=uuidutils.generate_uuid(),
            cluster=db_api.cluster_key(cluster), project_id='',
            claim_key='key-1', fingerprint='f', state=models.R_LEASED,
            pool='debian', snapshot_id='s', volume_id=volume_id,
            source='pool'))
    return volume_id


def rows_of(cluster):
    return {r.volume_id: r.status for r in db_api.get_rows(cluster)}


def tag_of(simulator, volume_id, tag=vp_cinder.TAG_CLUSTER):
    return simulator.get_volume(volume_id)['metadata'].get(tag)


def receipts():
    with db_api.reader() as session:
        return [(r.cluster, r.claim_key, r.state) for r in session.execute(
            sa.select(models.ClaimReceipt)).scalars()]


def sync(cinder, cluster, snapshot, target=5):
    spec = pool_spec.PoolSpec(name='debian', cluster=cluster,
                          snapshot_id=snapshot, target=target)
    syncer = vp_sync.Sync(
        cinder, 'new-host', lambda request_id: False, creating_timeout=300,
        claim_timeout=30, incarnation='inc-new',
        service_down_time=DOWN_TIME)
    return syncer.run({'debian': spec}, cluster)


# -- the stranded report ----------------------------------------------------

def test_stranded_clusters_are_those_with_rows_and_no_live_manager(
        cinder, simulator, snapshot):
    for cluster, statuses in (('old', [models.AVAILABLE] * 2 +
                               [models.DELETING]),
                              (None, [models.CREATING]),
                              ('served', [models.AVAILABLE]),
                              ('stale', [models.AVAILABLE]),
                              ('east', [models.AVAILABLE])):
        for status in statuses:
            pool_volume(simulator, snapshot, cluster, status=status)
    db_managers.register('h1', 'served', 'inc-served')
    db_managers.register('h2', 'old', 'inc-old-stopped')
    db_managers.stopped('inc-old-stopped')
    db_managers.register('h3', 'stale', 'inc-stale')
    with db_api.writer() as session:
        session.execute(sa.update(models.Manager)
                        .where(models.Manager.incarnation == 'inc-stale')
                        .values(heartbeat_at=datetime.datetime(2000, 1, 1)))

    assert db_clusters.stranded('east', DOWN_TIME) == {
        'old': {models.AVAILABLE: 2, models.DELETING: 1},
        '': {models.CREATING: 1}, 'stale': {models.AVAILABLE: 1}}
    warnings = clusters.stranded_warnings('east', DOWN_TIME)
    assert warnings[0] == (
        'cluster "default" has 1 volumes in the table (1 creating) and no '
        'live manager: "volume-pool-manage cluster adopt default" or '
        '"cluster drain default".')
    assert warnings[1].startswith('cluster "old" has 3 volumes in the '
                                  'table (2 available, 1 deleting)')
    assert 'stale' in warnings[2]
    assert not any('served' in w or 'east' in w for w in warnings)
    # The cluster of a manager with no name sees "east" as stranded.
    assert set(db_clusters.stranded(None, DOWN_TIME)) == {
        'old', 'stale', 'east'}


def test_several_managers_without_coordination_warn(cinder, conf):
    assert clusters.coordination_warning(conf) is None
    db_managers.register('h1', 'east', 'inc-1')
    db_managers.register('h1', 'east', 'inc-1-restarted')
    db_managers.register('h9', 'west', 'inc-9')
    assert clusters.coordination_warning(conf) is None  # one host
    db_managers.register('h2', 'east', 'inc-2')
    assert clusters.coordination_warning(conf) == (
        '2 managers share cluster east without [coordination] '
        'backend_url: replenish is serialised by the database, but every '
        'manager syncs every pool; configure a coordination backend.')
    conf.set_override('backend_url', 'redis://localhost:6379',
                      group='coordination')
    assert clusters.coordination_warning(conf) is None


# -- adopt ------------------------------------------------------------------

def test_adopt_moves_rows_receipts_and_tags_then_sync_settles_them(
        cinder, simulator, snapshot):
    ready, ready_id = pool_volume(simulator, snapshot, 'old')
    _creating, creating_id = pool_volume(simulator, snapshot, 'old',
                                         status=models.CREATING)
    # A delete that failed: the volume is still there, the row deleting.
    _deleting, deleting_id = pool_volume(simulator, snapshot, 'old',
                                         status=models.DELETING)
    held, held_id = pool_volume(simulator, snapshot, 'old')
    hold_by_stopped_manager(held, 'old')
    orphan_id = simulator.add_volume(
        name='orphan', snapshot_id=snapshot,
        metadata=vp_cinder.pool_tags('debian', 'old', 'lost-request'))
    leased_id = lease(simulator, 'old')
    _other, other_id = pool_volume(simulator, snapshot, 'west')

    report = clusters.adopt(cinder, 'old', 'east', DOWN_TIME)

    assert (report.rows, report.receipts, report.receipts_kept,
            report.retagged, report.failed) == (4, 1, 0, 6, [])
    assert rows_of('old') == {}
    assert rows_of('east') == {
        ready_id: models.AVAILABLE, creating_id: models.CREATING,
        deleting_id: models.DELETING, held_id: models.CLAIMING}
    for volume_id in (ready_id, creating_id, deleting_id, held_id,
                      orphan_id):
        assert tag_of(simulator, volume_id) == 'east'
    assert simulator.get_volume(ready_id)['metadata'] == \
        vp_cinder.pool_tags('debian', 'east', ready.request_id)
    assert simulator.get_volume(leased_id)['metadata'] == {
        vp_cinder.TAG_LEASE: 'east', 'owner': 'caller'}
    assert receipts() == [('east', 'key-1', models.R_LEASED)]
    assert tag_of(simulator, other_id) == 'west'
    assert rows_of('west') == {other_id: models.AVAILABLE}

    # Again: nothing left to move, nothing re-tagged twice.
    again = clusters.adopt(cinder, 'old', 'east', DOWN_TIME)
    assert (again.rows, again.receipts, again.retagged, again.failed) == (
        0, 0, 0, [])

    # The sync of east settles the claim of the stopped manager, adopts
    # the orphan and finishes the failed delete (whose row the next sync
    # forgets, once Cinder no longer has the volume).
    sync(cinder, 'east', snapshot)
    assert simulator.get_volume(deleting_id) is None
    sync(cinder, 'east', snapshot)
    assert rows_of('east') == {
        ready_id: models.AVAILABLE, creating_id: models.AVAILABLE,
        held_id: models.AVAILABLE, orphan_id: models.AVAILABLE}
    assert simulator.get_volume(deleting_id) is None
    assert tag_of(simulator, held_id) == 'east'


def test_a_crash_between_rows_and_tags_is_healed_by_the_sync(
        cinder, simulator, snapshot):
    ready, ready_id = pool_volume(simulator, snapshot, None)
    held, held_id = pool_volume(simulator, snapshot, None)
    hold_by_stopped_manager(held, None)
    simulator.inject_fault(status=500, method='POST', path='/metadata',
                           count=100)

    report = clusters.adopt(cinder, 'default', 'east', DOWN_TIME)

    simulator.clear_faults()
    assert report.rows == 2 and report.retagged == 0
    assert sorted(volume_id for volume_id, _why in report.failed) == sorted(
        [ready_id, held_id])
    assert rows_of(None) == {}
    assert tag_of(simulator, ready_id) == cluster_names.NO_CLUSTER
    # East's listing misses both volumes: sync asks Cinder by id and puts
    # the rows' tags back, or settles the claim with them.
    result = sync(cinder, 'east', snapshot)
    assert result.retagged == 1 and result.released == 1
    assert rows_of('east') == {ready_id: models.AVAILABLE,
                               held_id: models.AVAILABLE}
    for volume_id, row in ((ready_id, ready), (held_id, held)):
        volume = simulator.get_volume(volume_id)
        assert volume['metadata'] == vp_cinder.pool_tags(
            'debian', 'east', row.request_id)
        assert volume['name'] == row.name
    assert clusters.adopt(cinder, 'default', 'east', DOWN_TIME).failed == []


def test_a_receipt_whose_key_the_new_cluster_uses_stays(
        cinder, simulator):
    old_lease = lease(simulator, 'old')
    lease(simulator, 'east')
    report = clusters.adopt(cinder, 'old', 'east', DOWN_TIME)
    assert (report.receipts, report.receipts_kept) == (0, 1)
    assert sorted(receipts()) == [('east', 'key-1', models.R_LEASED),
                                  ('old', 'key-1', models.R_LEASED)]
    assert tag_of(simulator, old_lease, vp_cinder.TAG_LEASE) == 'old'


@pytest.mark.parametrize('old, new', [('east', 'east'), ('default', None),
                                      ('', None)])
def test_adopt_refuses_the_own_cluster(cinder, simulator, snapshot,
                                       old, new):
    _row, volume_id = pool_volume(simulator, snapshot, new)
    with pytest.raises(clusters.ClusterRefused, match='own cluster'):
        clusters.adopt(cinder, old, new, DOWN_TIME)
    assert rows_of(new) == {volume_id: models.AVAILABLE}


def test_drain_refuses_the_own_cluster_even_with_its_managers_stopped(
        cinder, simulator, snapshot):
    _row, volume_id = pool_volume(simulator, snapshot, 'east')
    with pytest.raises(clusters.ClusterRefused, match='own cluster'):
        clusters.drain(cinder, 'east', 'east', DOWN_TIME, timeout=0)
    assert rows_of('east') == {volume_id: models.AVAILABLE}
    assert simulator.get_volume(volume_id)['status'] == 'available'


@pytest.mark.parametrize('action', ['adopt', 'drain'])
def test_a_cluster_with_a_live_manager_is_refused(cinder, simulator,
                                                  snapshot, action):
    _row, volume_id = pool_volume(simulator, snapshot, 'old')
    db_managers.register('still-there', 'old', 'inc-live')
    with pytest.raises(clusters.ClusterRefused, match='still-there'):
        if action == 'adopt':
            clusters.adopt(cinder, 'old', 'east', DOWN_TIME)
        else:
            clusters.drain(cinder, 'old', 'east', DOWN_TIME, timeout=0)
    assert rows_of('old') == {volume_id: models.AVAILABLE}
    assert rows_of('east') == {}
    volume = simulator.get_volume(volume_id)
    assert volume['status'] == 'available'
    assert volume['metadata'][vp_cinder.TAG_CLUSTER] == 'old'


# -- drain ------------------------------------------------------------------

def test_drain_deletes_volumes_and_rows_and_keeps_held_rows(
        cinder, simulator, snapshot):
    simulator.deletion_delay = 0.3  # the drain waits for the deletes
    _ready, ready_id = pool_volume(simulator, snapshot, 'old')
    creating_id = still_creating(cinder, simulator, snapshot, 'old')
    assert simulator.get_volume(creating_id)['status'] == 'creating'
    _deleting, deleting_id = pool_volume(simulator, snapshot, 'old',
                                         status=models.DELETING)
    # Created just before a crash: the row never got the volume's id.
    _unbound, unbound_id = pool_volume(simulator, snapshot, 'old',
                                       status=models.CREATING, bound=False)
    # A create that never reached Cinder.
    db_api.create_volume_row(
        request_id='never-sent', pool='debian', cluster='old',
        snapshot_id=snapshot, size=1, name='never', host='old-host')
    held, held_id = pool_volume(simulator, snapshot, 'old')
    hold_by_stopped_manager(held, 'old')
    orphan_id = simulator.add_volume(
        name='orphan', metadata=vp_cinder.pool_tags('debian', 'old', 'r'))
    attached_id = simulator.add_volume(
        name='attached', metadata=vp_cinder.pool_tags('debian', 'old', 'a'))
    simulator.attach_volume(attached_id)
    claimed_id = lease(simulator, 'old', simulator.add_volume(
        name='claimed', metadata=vp_cinder.pool_tags('debian', 'old', 'c')))
    # A half-done adopt: the row is east's, the volume still tagged old.
    _moved, moved_id = pool_volume(simulator, snapshot, 'old')
    with db_api.writer() as session:
        session.execute(sa.update(models.PoolVolume)
                        .where(models.PoolVolume.volume_id == moved_id)
                        .values(cluster='east'))

    report = clusters.drain(cinder, 'old', 'east', DOWN_TIME, timeout=10,
                            poll_interval=0.05)

    assert (report.deleted, report.held, report.spared, report.failed,
            report.pending, report.rows_left) == (5, 1, 2, 0, 0, 1)
    # The rows of four deleted volumes, and the one never created.
    assert report.dropped == 5
    assert not report.complete
    assert rows_of('old') == {held_id: models.CLAIMING}
    for volume_id in (ready_id, creating_id, deleting_id, unbound_id,
                      orphan_id):
        assert simulator.get_volume(volume_id) is None
    for volume_id in (held_id, attached_id, claimed_id, moved_id):
        assert simulator.get_volume(volume_id)['status'] != 'deleting'
    assert rows_of('east') == {moved_id: models.AVAILABLE}

    again = clusters.drain(cinder, 'old', 'east', DOWN_TIME, timeout=0)
    assert (again.deleted, again.dropped, again.held, again.rows_left) == (
        0, 0, 1, 1)
    assert rows_of('old') == {held_id: models.CLAIMING}


def test_drain_keeps_the_rows_of_volumes_cinder_still_deletes(
        cinder, simulator, snapshot):
    simulator.deletion_delay = 60
    _ready, ready_id = pool_volume(simulator, snapshot, 'old')
    report = clusters.drain(cinder, 'old', 'east', DOWN_TIME, timeout=0.2,
                            poll_interval=0.05)
    assert (report.deleted, report.pending, report.rows_left) == (1, 1, 1)
    assert not report.complete
    assert rows_of('old') == {ready_id: models.DELETING}
    assert simulator.get_volume(ready_id)['status'] == 'deleting'
    # Run again: the volume Cinder deletes already is not deleted twice.
    simulator.reset_counts()
    again = clusters.drain(cinder, 'old', 'east', DOWN_TIME, timeout=0)
    assert (again.deleted, again.failed, again.pending) == (0, 0, 1)
    assert not any(method == 'DELETE' for method, _route in
                   simulator.request_counts)


def test_drain_releases_a_row_whose_volume_is_in_use(cinder, simulator,
                                                     snapshot):
    _row, volume_id = pool_volume(simulator, snapshot, 'old')
    simulator.attach_volume(volume_id)
    report = clusters.drain(cinder, 'old', 'east', DOWN_TIME, timeout=0)
    assert (report.released, report.deleted, report.rows_left) == (1, 0, 0)
    assert report.complete
    assert rows_of('old') == {}
    volume = simulator.get_volume(volume_id)
    assert volume['status'] == 'in-use'
    assert vp_cinder.TAG_CLUSTER not in volume['metadata']


# -- the queries on every backend -------------------------------------------

def test_the_queries_on_every_database(any_database):
    for request_id, cluster in (('r1', 'old'), ('r2', 'old'),
                                ('r3', 'east')):
        db_api.create_volume_row(
            request_id=request_id, volume_id='v-' + request_id, pool='p',
            cluster=cluster, snapshot_id='s', size=1, name=request_id,
            host='h', status=models.AVAILABLE)
    # Key k-2 is used in east already: that receipt stays in old.
    with db_api.writer() as session:
        for cluster, key in (('old', 'k-1'), ('old', 'k-2'),
                             ('east', 'k-2')):
            session.add(models.ClaimReceipt(
                claim_id=uuidutils.generate_uuid(), cluster=cluster,
                project_id='', claim_key=key, fingerprint='f',
                state=models.R_USED, pool='p', snapshot_id='s',
                source='pool'))
    db_managers.register('h', 'east', 'inc-east')
    assert db_clusters.stranded('', DOWN_TIME) == {
        'old': {models.AVAILABLE: 2}}
    assert db_clusters.recorded(['v-r1', 'v-x'], ['r3', 'r-x']) == (
        {'v-r1'}, {'r3'})
    assert db_clusters.move('old', 'east') == (2, 1, 1)
    assert db_clusters.stranded('', DOWN_TIME) == {}
    assert sorted(r.request_id for r in db_api.get_rows('east')) == [
        'r1', 'r2', 'r3']
    assert sorted(receipts()) == [('east', 'k-1', models.R_USED),
                                  ('east', 'k-2', models.R_USED),
                                  ('old', 'k-2', models.R_USED)]
