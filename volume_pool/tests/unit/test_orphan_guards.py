"""Orphans (tagged volumes no row records), guard by guard: a volume a row
already names, by id or by its create's request, is never adopted a
second time; only the rows that can still be handed out count against
the target; and every volume that is not adopted counts for nothing, so
that a pool adopts up to its target, exactly.  On the simulator and
SQLite, through :class:`volume_pool.orphans.Orphans` itself."""

import dataclasses

from oslo_utils import timeutils
import pytest

from volume_pool import orphans
from volume_pool import sync
from volume_pool.db import api as db_api
from volume_pool.db import models
from volume_pool.tests.unit import claim_checks
from volume_pool.tests.unit.manager_steps import call
from volume_pool.tests.unit.manager_steps import fill

POOL = 'debian'


class NoRotation:
    """The peers of a sync run: no snapshot rotation waits."""

    def rotation_waits(self, spec):
        return False


def settle(mgr, listed, spec=None):
    """Hand the volumes (ids, read now, or volumes as a listing showed
    them) to Orphans as one listing of the pool; returns the run's
    report."""
    keeper = orphans.Orphans(mgr._cinder, 'mgr-1', creating_timeout=600,
                             peers=NoRotation())
    report = sync.SyncReport()
    volumes = [mgr._cinder.get_volume(v) if isinstance(v, str) else v
               for v in listed]
    keeper.settle({POOL: volumes}, {POOL: spec or mgr.specs[POOL]}, None,
                  report)
    return report


def orphan(mgr, simulator, request_id, **kwargs):
    return simulator.add_volume(
        snapshot_id=mgr.snapshots[POOL],
        metadata=claim_checks.pool_tags(POOL, None, request_id), **kwargs)


def rows_of(volume_id):
    return [r for r in db_api.get_rows(None) if r.volume_id == volume_id]


def test_a_volume_whose_create_a_row_awaits_is_not_adopted(make_manager,
                                                           simulator):
    """The row of a create whose answer has not come back names its
    request, not yet the volume: the volume is that row's, not an
    orphan (a second row would hand it out twice)."""
    mgr = make_manager({POOL: 3})
    db_api.create_volume_row(
        request_id='req-awaited', pool=POOL, cluster=None,
        snapshot_id=mgr.snapshots[POOL], size=1, name='n', host='mgr-1')
    volume_id = orphan(mgr, simulator, 'req-awaited')
    report = settle(mgr, [volume_id])
    assert report.adopted == 0
    assert rows_of(volume_id) == []
    assert len(db_api.get_rows(None)) == 1


def test_a_volume_a_row_names_is_not_adopted_again(make_manager, simulator):
    """Recorded by id under another request (adopted before with a
    request of its own): still not an orphan."""
    mgr = make_manager({POOL: 3})
    volume_id = orphan(mgr, simulator, 'req-of-the-volume')
    db_api.create_volume_row(
        request_id='req-of-the-row', volume_id=volume_id, pool=POOL,
        cluster=None, snapshot_id=mgr.snapshots[POOL], size=1, name='n',
        host='mgr-1', status=models.AVAILABLE)
    assert settle(mgr, [volume_id]).adopted == 0
    assert len(rows_of(volume_id)) == 1


def test_a_row_being_deleted_does_not_count_against_the_target(
        make_manager, simulator):
    mgr = make_manager({POOL: 1})
    going = orphan(mgr, simulator, 'req-going')
    db_api.create_volume_row(
        request_id='req-going', volume_id=going, pool=POOL, cluster=None,
        snapshot_id=mgr.snapshots[POOL], size=1, name='n', host='mgr-1',
        status=models.DELETING)
    volume_id = orphan(mgr, simulator, 'req-lost')
    assert settle(mgr, [volume_id]).adopted == 1
    assert [r.status for r in rows_of(volume_id)] == [models.AVAILABLE]


def listed_as(mgr, volume_id, **fields):
    """The volume as a listing showed it, ``fields`` changed."""
    return dataclasses.replace(mgr._cinder.get_volume(volume_id), **fields)


def _deleting(mgr, simulator):
    return listed_as(mgr, orphan(mgr, simulator, 'req-deleting'),
                     status='deleting')


def _attached(mgr, simulator):
    volume_id = orphan(mgr, simulator, 'req-attached')
    simulator.attach_volume(volume_id)
    return volume_id


def _young_creating_of_a_full_pool(mgr, simulator):
    """Not adoptable (the pool is full by then) and still creating: left
    for a later sync."""
    return listed_as(mgr, orphan(mgr, simulator, 'req-creating'),
                     status='creating',
                     created=timeutils.utcnow().isoformat())


def _in_error(mgr, simulator):
    volume_id = orphan(mgr, simulator, 'req-error')
    simulator.set_volume_status(volume_id, 'error')
    return volume_id


@pytest.mark.parametrize('first', [_deleting, _attached, _in_error],
                         ids=lambda f: f.__name__.strip('_'))
def test_a_volume_not_adopted_counts_for_nothing(make_manager, simulator,
                                                 first):
    """Listed first, a volume that is not adopted (being deleted,
    attached, in error) leaves the count as it was: of the two orphans
    after it, exactly one is adopted, the pool's target."""
    mgr = make_manager({POOL: 1})
    skipped = first(mgr, simulator)
    ready = [orphan(mgr, simulator, 'req-%d' % n) for n in range(2)]
    report = settle(mgr, [skipped, *ready])
    assert report.adopted == 1
    assert len(db_api.get_rows(None)) == 1
    skipped_id = skipped if isinstance(skipped, str) else skipped.id
    assert rows_of(skipped_id) == []


def test_a_young_creating_volume_of_a_full_pool_counts_for_nothing(
        make_manager, simulator):
    """Adopted first, one volume fills the pool; a young creating orphan
    then waits, and the last orphan is deleted (not adopted)."""
    mgr = make_manager({POOL: 1})
    first = orphan(mgr, simulator, 'req-first')
    waiting = _young_creating_of_a_full_pool(mgr, simulator)
    last = orphan(mgr, simulator, 'req-last')
    report = settle(mgr, [first, waiting, last])
    assert (report.adopted, report.deleted) == (1, 1)
    assert [r.volume_id for r in db_api.get_rows(None)] == [first]
    assert simulator.get_volume(waiting.id) is not None


def test_an_adopted_volume_counts_once(make_manager, simulator):
    """Target 2, three orphans: two adopted, the third deleted."""
    mgr = make_manager({POOL: 2})
    volumes = [orphan(mgr, simulator, 'req-%d' % n) for n in range(3)]
    report = settle(mgr, volumes)
    assert (report.adopted, report.deleted) == (2, 1)
    assert {r.volume_id for r in db_api.get_rows(None)} == set(volumes[:2])


def test_an_orphan_adopted_keeps_its_request(make_manager, simulator):
    mgr = make_manager({POOL: 1})
    volume_id = orphan(mgr, simulator, 'req-kept')
    settle(mgr, [volume_id])
    assert [r.request_id for r in rows_of(volume_id)] == ['req-kept']


def test_a_failed_delete_is_counted_as_an_error(make_manager, simulator):
    mgr = make_manager({POOL: 1})
    kept, extra = (orphan(mgr, simulator, 'req-%d' % n) for n in range(2))
    simulator.inject_fault(status=500, method='DELETE',
                           path='^/volumes/%s$' % extra, count=20)
    report = settle(mgr, [kept, extra])
    assert (report.adopted, report.deleted, report.errors) == (1, 0, 1)
    assert simulator.get_volume(extra) is not None



def test_a_young_creating_volume_of_another_snapshot_counts_for_nothing(
        make_manager, simulator):
    """Made from a snapshot the pool no longer uses and still creating:
    left for a later sync, and the orphan after it is adopted."""
    mgr = make_manager({POOL: 1})
    old_snapshot = simulator.add_snapshot(size=1)
    waiting = listed_as(mgr, orphan(mgr, simulator, 'req-old'),
                        status='creating', snapshot_id=old_snapshot,
                        created=timeutils.utcnow().isoformat())
    current = orphan(mgr, simulator, 'req-current')
    report = settle(mgr, [waiting, current])
    assert (report.adopted, report.deleted) == (1, 0)
    assert [r.volume_id for r in db_api.get_rows(None)] == [current]


def test_a_volume_another_sync_adopted_first_fills_a_place(
        make_manager, simulator, monkeypatch):
    """Target 1: the first orphan's row is written by another sync
    between this sync's read of the rows and its own adoption; the
    second orphan is then one too many, and is deleted, not adopted."""
    mgr = make_manager({POOL: 1})
    first, second = (orphan(mgr, simulator, 'req-%d' % n) for n in range(2))
    create_row = db_api.create_volume_row

    def adopted_meanwhile(**row):
        if row['volume_id'] == first:
            create_row(**row)  # the other sync wins the race
        return create_row(**row)
    monkeypatch.setattr(db_api, 'create_volume_row', adopted_meanwhile)
    report = settle(mgr, [first, second])
    assert (report.adopted, report.deleted) == (0, 1)
    assert [r.volume_id for r in db_api.get_rows(None)] == [first]


@pytest.mark.parametrize('status', [404, 500])
def test_a_callers_volume_cinder_fails_to_untag_holds_back_nothing(
        make_manager, simulator, status):
    """A claimed volume a late request gave the pool tags back: reading
    it fails (gone, or Cinder errs); the other orphans are settled all
    the same and the caller's volume is not adopted."""
    mgr = make_manager({POOL: 1})
    fill(mgr)
    claimed = call(mgr.claim, POOL, name='vnf-c', claim_key='c1')
    volume = listed_as(mgr, claimed['volume_id'], metadata=(
        claim_checks.pool_tags(POOL, None, 'req-late')))
    extra = orphan(mgr, simulator, 'req-extra')
    simulator.inject_fault(status=status, method='GET',
                           path='^/volumes/%s$' % claimed['volume_id'],
                           count=20)
    report = settle(mgr, [volume, extra])
    assert report.adopted == 1
    assert [r.volume_id for r in db_api.get_rows(None)] == [extra]
