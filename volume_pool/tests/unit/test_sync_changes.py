"""Sync between two full listings: only the volumes Cinder changed since
the last listing are listed (``updated_at=gte:``, microversion 3.60), what
they show is settled, and what they do not show is left for the next full
listing -- which still finds a volume deleted behind the pool's back."""

import datetime
import logging

import pytest
import sqlalchemy as sa

from volume_pool import exception
from volume_pool.db import api as db_api
from volume_pool.db import models
from volume_pool.fixtures import seeding
from volume_pool.tests.unit.manager_steps import call
from volume_pool.tests.unit.manager_steps import wait_for

FULL = 600
HOUR = 3600


class Clock:
    """The Sync's clock, moved by the test."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def quiet_pool(make_manager, simulator):
    """A manager whose pool of three ready volumes has been quiet in
    Cinder for an hour, after its first (full) sync; its Sync's clock."""
    def make(**options):
        options.setdefault('full_sync_interval', FULL)
        mgr = make_manager({'debian': 3}, **options)
        seeding.seed_pool(simulator, 'debian', mgr.snapshots['debian'], 3)
        simulator.age_volumes(HOUR)
        clock = Clock()
        mgr.syncer._clock = clock
        mgr.syncer.run(mgr.specs, mgr.cluster)
        simulator.reset_counts()
        return mgr, clock
    return make


def _listed_changes(simulator):
    """For each listing since the last reset: True if it asked for the
    changes only."""
    return ['updated_at' in query for query in simulator.list_queries]


def _volume_ids():
    return sorted(r.volume_id for r in db_api.get_rows(None))


def test_the_first_sync_lists_in_full_the_next_ones_the_changes(
        quiet_pool, simulator):
    mgr, clock = quiet_pool()
    report = mgr.syncer.run(mgr.specs, mgr.cluster)
    assert not [k for k, v in report.as_dict().items() if v]
    query, = simulator.list_queries
    assert query['updated_at'].startswith('gte:')
    assert query['_version'] == '3.60'
    assert 'with_count' not in query
    clock.now += FULL
    mgr.syncer.run(mgr.specs, mgr.cluster)
    assert _listed_changes(simulator) == [True, False]


def test_a_changed_status_is_settled_between_full_listings(quiet_pool,
                                                           simulator):
    mgr, clock = quiet_pool()
    broken, taken, kept = _volume_ids()
    simulator.set_volume_status(broken, 'error')
    simulator.attach_volume(taken)
    report = mgr.syncer.run(mgr.specs, mgr.cluster)
    assert _listed_changes(simulator) == [True]
    assert (report.deleted, report.removed) == (1, 1)
    assert [r.volume_id for r in db_api.get_rows(
        None, status=models.AVAILABLE)] == [kept]
    wait_for(lambda: simulator.get_volume(broken) is None)
    assert 'volume_pool' not in simulator.get_volume(taken)['metadata']


def test_a_volume_deleted_behind_the_pools_back_waits_for_the_full_listing(
        quiet_pool, simulator):
    mgr, clock = quiet_pool()
    gone = _volume_ids()[0]
    simulator.remove_volume(gone)
    mgr.syncer.run(mgr.specs, mgr.cluster)
    # Not listed: an absence from the changes tells nothing.
    assert gone in _volume_ids()
    # A claim meanwhile never hands it out: its hand-over finds it gone
    # (Cinder answers 404) and takes the next ready volume.
    handed = [call(mgr.claim, 'debian', name='vm-%d' % n,
                   create_on_miss=False)['volume_id'] for n in range(2)]
    assert gone not in handed
    with pytest.raises(exception.PoolEmpty):
        call(mgr.claim, 'debian', create_on_miss=False)
    assert db_api.get_rows(None) == []


def test_the_full_listing_drops_a_volume_deleted_behind_the_pools_back(
        quiet_pool, simulator):
    mgr, clock = quiet_pool()
    gone = _volume_ids()[0]
    simulator.remove_volume(gone)
    for _ in range(3):
        clock.now += FULL / 4
        mgr.syncer.run(mgr.specs, mgr.cluster)
        assert gone in _volume_ids()
    clock.now += FULL / 4
    report = mgr.syncer.run(mgr.specs, mgr.cluster)
    assert _listed_changes(simulator) == [True, True, True, False]
    assert report.removed == 1
    assert gone not in _volume_ids()


def test_a_deleting_row_goes_once_its_volume_is_gone(quiet_pool, simulator):
    mgr, clock = quiet_pool()
    row = db_api.get_rows(None)[0]
    db_api.mark_deleting(row.id, from_statuses=(models.AVAILABLE,))
    simulator.remove_volume(row.volume_id)
    report = mgr.syncer.run(mgr.specs, mgr.cluster)
    assert _listed_changes(simulator) == [True]
    assert report.removed == 1
    assert row.volume_id not in _volume_ids()


def test_a_tagged_volume_without_row_is_adopted_from_the_changes(
        quiet_pool, simulator):
    mgr, clock = quiet_pool()
    row = db_api.get_rows(None)[0]
    db_api.delete_row(row.id, status=row.status)
    simulator.set_volume_status(row.volume_id, 'available')  # a change
    report = mgr.syncer.run(mgr.specs, mgr.cluster)
    assert _listed_changes(simulator) == [True]
    assert report.adopted == 1
    assert row.volume_id in _volume_ids()


def test_a_cinder_older_than_3_60_gets_full_listings_said_once(
        make_manager, simulator, caplog):
    simulator.max_version = '3.59'
    mgr = make_manager({'debian': 2}, full_sync_interval=FULL)
    seeding.seed_pool(simulator, 'debian', mgr.snapshots['debian'], 2)
    caplog.set_level(logging.INFO, logger='volume_pool.cinder')
    for _ in range(3):
        mgr.syncer.run(mgr.specs, mgr.cluster)
    assert _listed_changes(simulator) == [False] * 3
    said = [r for r in caplog.records if '3.59' in r.getMessage()]
    assert len(said) == 1


def test_no_full_listing_interval_lists_in_full_every_time(quiet_pool,
                                                           simulator):
    mgr, clock = quiet_pool(full_sync_interval=0)
    mgr.syncer.run(mgr.specs, mgr.cluster)
    assert _listed_changes(simulator) == [False]


def test_a_failed_listing_is_followed_by_a_full_one(quiet_pool, simulator):
    mgr, clock = quiet_pool()
    simulator.inject_fault(status=503, method='GET', path='/volumes/detail')
    report = mgr.syncer.run(mgr.specs, mgr.cluster)
    assert report.errors == 1
    mgr.syncer.run(mgr.specs, mgr.cluster)
    mgr.syncer.run(mgr.specs, mgr.cluster)
    # (The refused listing reached no handler: it is not in the queries.)
    assert _listed_changes(simulator) == [False, True]


def test_a_cinder_clock_set_back_is_followed_by_a_full_listing(quiet_pool,
                                                               simulator):
    mgr, clock = quiet_pool()
    simulator.wall_offset = -2 * HOUR
    mgr.syncer.run(mgr.specs, mgr.cluster)
    mgr.syncer.run(mgr.specs, mgr.cluster)
    assert _listed_changes(simulator) == [True, False]


def test_a_new_snapshot_drains_through_a_full_listing(quiet_pool,
                                                      simulator):
    mgr, clock = quiet_pool()
    spec = mgr.specs['debian']
    mgr.specs['debian'] = spec.__class__(
        **dict(vars(spec), snapshot_id=simulator.add_snapshot()))
    report = mgr.syncer.run(mgr.specs, mgr.cluster)
    assert _listed_changes(simulator) == [False]
    assert report.deleted == 3


def test_a_pool_not_settled_by_the_last_full_listing_gets_one(
        make_manager, simulator):
    mgr = make_manager({'debian': 2, 'ubuntu': 2}, full_sync_interval=FULL)
    for pool in mgr.specs:
        seeding.seed_pool(simulator, pool, mgr.snapshots[pool], 2)
    simulator.age_volumes(HOUR)
    mgr.syncer.run(mgr.specs, mgr.cluster,
                   owns=lambda pool: pool == 'debian')
    mgr.syncer.run(mgr.specs, mgr.cluster,
                   owns=lambda pool: pool == 'debian')
    # The ring gives this manager 'ubuntu' too.
    mgr.syncer.run(mgr.specs, mgr.cluster)
    # (Each pool listed alone: they are few.)
    assert _listed_changes(simulator) == [False, True, False, False]


def test_the_changes_listing_error_is_a_cinder_error(quiet_pool, simulator):
    mgr, clock = quiet_pool()
    mgr.syncer.run(mgr.specs, mgr.cluster)
    simulator.max_version = '3.59'  # downgraded under the manager
    report = mgr.syncer.run(mgr.specs, mgr.cluster)
    assert report.errors == 1
    mgr.syncer.run(mgr.specs, mgr.cluster)
    assert _listed_changes(simulator)[-1] is False


def test_a_change_stamped_just_before_the_cursor_is_still_listed(
        quiet_pool, simulator):
    """A change Cinder stamped before the last listing's latest change,
    but committed after that listing was read: within the cursor's
    margin, the next listing of the changes shows it."""
    mgr, _clock = quiet_pool()
    broken, _taken, _kept = _volume_ids()
    simulator.set_volume_status(broken, 'error')
    # Every volume an hour and a half minute older: the error's stamp
    # is now 30 s before the cursor (the others' latest change, an hour
    # ago, when the pool was seeded), the rest an hour older still.
    simulator.age_volumes(HOUR + 30)
    report = mgr.syncer.run(mgr.specs, mgr.cluster)
    assert _listed_changes(simulator) == [True]
    assert report.deleted == 1
    assert [r.status for r in db_api.get_rows(None)
            if r.volume_id == broken] == [models.DELETING]


def test_a_sync_with_an_error_is_followed_by_a_full_listing(quiet_pool,
                                                            simulator):
    """The listing worked but a volume could not be settled (its delete
    refused): the next run lists in full, not the changes since."""
    mgr, clock = quiet_pool()
    broken, _taken, _kept = _volume_ids()
    simulator.set_volume_status(broken, 'error')
    simulator.inject_fault(status=503, method='DELETE', count=5)
    report = mgr.syncer.run(mgr.specs, mgr.cluster)
    assert report.errors >= 1
    simulator.clear_faults()
    mgr.syncer.run(mgr.specs, mgr.cluster)
    assert _listed_changes(simulator) == [True, False]


def test_a_creating_row_past_its_timeout_is_read_between_full_listings(
        quiet_pool, simulator):
    """A create that stays ``creating`` in Cinder changes nothing there,
    so no listing of the changes shows it: once ``creating_timeout`` has
    passed, sync reads its volume by id and deletes it as stuck, without
    waiting for the next full listing."""
    mgr, clock = quiet_pool()
    stuck = _volume_ids()[0]
    simulator.set_volume_status(stuck, 'creating')  # and hangs there
    simulator.age_volumes(2 * HOUR)  # older than the cursor: unlisted
    table = models.PoolVolume
    with db_api.writer() as session:
        session.execute(sa.update(table).where(table.volume_id == stuck)
                        .values(status=models.CREATING,
                                created_at=datetime.datetime(2000, 1, 1)))
    report = mgr.syncer.run(mgr.specs, mgr.cluster)
    assert _listed_changes(simulator) == [True]
    assert report.deleted == 1
    assert stuck not in {r.volume_id for r in db_api.get_rows(
        None, status=models.CREATING)}
    wait_for(lambda: simulator.get_volume(stuck) is None)


def test_a_cinder_that_cannot_say_its_microversions_gets_a_full_listing(
        quiet_pool, simulator, monkeypatch, caplog):
    """Whether Cinder lists the changes is asked once; when it cannot
    answer, this sync lists in full, with no error, and says why."""
    mgr, clock = quiet_pool()

    def unknown():
        raise exception.CinderUnavailable(reason='versions refused')
    monkeypatch.setattr(mgr.syncer._cinder, 'lists_changes', unknown)
    caplog.set_level(logging.INFO, logger='volume_pool.sync')
    report = mgr.syncer.run(mgr.specs, mgr.cluster)
    assert report.errors == 0
    assert _listed_changes(simulator) == [False]
    assert any('could not say which microversions' in r.getMessage()
               for r in caplog.records)


def test_a_pool_whose_settling_failed_leaves_the_next_one_settled(
        make_manager, simulator):
    """In a run of the changes, a pool that Cinder fails (a volume read
    by id refused) is skipped with an error; the pools after it are
    settled in the same run."""
    mgr = make_manager({'alpha': 1, 'beta': 1}, full_sync_interval=FULL)
    for pool in ('alpha', 'beta'):
        seeding.seed_pool(simulator, pool, mgr.snapshots[pool], 1)
    simulator.age_volumes(HOUR)
    mgr.syncer._clock = Clock()
    mgr.syncer.run(mgr.specs, mgr.cluster)
    simulator.reset_counts()
    simulator.age_volumes(HOUR)  # older than the cursor: unlisted
    rows = {r.pool: r.volume_id for r in db_api.get_rows(None)}
    table = models.PoolVolume
    with db_api.writer() as session:  # its delete's answer was lost
        session.execute(sa.update(table)
                        .where(table.volume_id == rows['alpha'])
                        .values(status=models.DELETING))
    simulator.inject_fault(status=500, method='GET',
                           path='^/volumes/%s$' % rows['alpha'], count=20)
    simulator.set_volume_status(rows['beta'], 'error')
    report = mgr.syncer.run(mgr.specs, mgr.cluster)
    assert _listed_changes(simulator) == [True]
    assert (report.errors, report.deleted) == (1, 1)
    wait_for(lambda: simulator.get_volume(rows['beta']) is None)
