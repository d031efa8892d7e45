"""The pool table's API on SQLite, MariaDB and PostgreSQL."""

import concurrent.futures
import datetime
import threading

from oslo_db import exception as db_exc
from oslo_utils import uuidutils
import pytest

from volume_pool.db import api as db_api
from volume_pool.db import models


def _add(pool='debian', cluster=None, status=models.AVAILABLE,
         snapshot_id='snap-1', volume_id=True):
    request_id = uuidutils.generate_uuid()
    return db_api.create_volume_row(
        request_id=request_id,
        volume_id=uuidutils.generate_uuid() if volume_id else None,
        pool=pool, cluster=cluster, snapshot_id=snapshot_id, size=1,
        name='volume-pool-%s-%s' % (pool, request_id[:8]), host='h1',
        status=status)


def test_claim_takes_oldest_ready_and_moves_it_to_claiming(any_database):
    first = _add()
    _add()
    _add(status=models.CREATING)
    row = db_api.claim_available('debian', None, 'claim-1')
    assert row.id == first.id
    assert row.status == models.CLAIMING
    assert row.claim_id == 'claim-1'
    counts = db_api.count_by_pool(None)['debian']['snap-1']
    assert counts == {models.AVAILABLE: 1, models.CLAIMING: 1,
                      models.CREATING: 1}


def test_claim_respects_pool_cluster_and_snapshot(any_database):
    _add(pool='windows')
    _add(cluster='east')
    _add(snapshot_id='old-snap')
    assert db_api.claim_available('debian', None, 'c', 'snap-1') is None
    assert db_api.claim_available('debian', 'east', 'c').cluster == 'east'
    assert db_api.claim_available('debian', None, 'c2').snapshot_id == \
        'old-snap'


def test_finish_removes_row_and_release_restores_it(any_database):
    _add()
    _add()
    one = db_api.claim_available('debian', None, 'claim-1')
    two = db_api.claim_available('debian', None, 'claim-2')
    assert not db_api.finish_claim(one.id, 'claim-2')  # wrong claim id
    assert db_api.finish_claim(one.id, 'claim-1')
    assert db_api.release_claim(two.id, 'claim-2')
    rows = db_api.get_rows(None, pool='debian')
    assert [(r.id, r.status, r.claim_id) for r in rows] == [
        (two.id, models.AVAILABLE, None)]


def test_concurrent_claims_never_hand_out_a_row_twice(any_database):
    total = 40
    for _ in range(total):
        _add()
    barrier = threading.Barrier(8)

    def claimer(n):
        barrier.wait()
        taken = []
        while True:
            row = db_api.claim_available('debian', None, 'claim-%d' % n)
            if row is None:
                return taken
            taken.append(row.volume_id)

    with concurrent.futures.ThreadPoolExecutor(8) as executor:
        results = list(executor.map(claimer, range(8)))
    claimed = [v for taken in results for v in taken]
    assert len(claimed) == total
    assert len(set(claimed)) == total
    assert db_api.claim_available('debian', None, 'late') is None


def test_batched_claims_take_the_oldest_rows_in_order(any_database):
    first, second = _add(), _add()
    _add(status=models.CREATING)
    rows, done = db_api.settle_claims('debian', None, ['a', 'b', 'c'], [],
                                      snapshot_id='snap-1')
    assert done == []
    assert [r.id if r else None for r in rows] == [first.id, second.id,
                                                   None]
    assert [(r.claim_id, r.status) for r in rows[:2]] == [
        ('a', models.CLAIMING), ('b', models.CLAIMING)]
    stored = {r.id: (r.status, r.claim_id)
              for r in db_api.get_rows(None, pool='debian')}
    assert stored[first.id] == (models.CLAIMING, 'a')
    assert stored[second.id] == (models.CLAIMING, 'b')
    assert db_api.finish_claims([(first.id, 'a'), (second.id, 'a')]) == [
        True, False]
    # One transaction finishes a claim and takes for another.
    third = _add()
    rows, done = db_api.settle_claims('debian', None, ['d'],
                                      [(second.id, 'b')])
    assert done == [True]
    assert (rows[0].id, rows[0].claim_id) == (third.id, 'd')
    assert db_api.finish_claims([(third.id, 'd')]) == [True]
    assert [r.status for r in db_api.get_rows(None, pool='debian')] == [
        models.CREATING]


def test_concurrent_batched_claims_never_hand_out_a_row_twice(any_database):
    total = 60
    for _ in range(total):
        _add()
    barrier = threading.Barrier(6)

    def claimer(n):
        barrier.wait()
        taken = []
        for batch in range(100):
            rows, _done = db_api.settle_claims(
                'debian', None, ['c-%d-%d-%d' % (n, batch, i)
                                 for i in range(4)], [])
            taken += [r.volume_id for r in rows if r is not None]
            if rows[-1] is None:
                return taken
        return taken

    with concurrent.futures.ThreadPoolExecutor(6) as executor:
        claimed = [v for taken in executor.map(claimer, range(6))
                   for v in taken]
    assert len(claimed) == total
    assert len(set(claimed)) == total


def test_conditional_transitions(any_database):
    row = _add(status=models.CREATING, volume_id=False)
    assert db_api.set_volume_id(row.id, 'vol-1')
    assert db_api.mark_available(row.id, size=3)
    assert not db_api.mark_available(row.id)  # already available
    assert not db_api.mark_deleting(row.id,
                                    from_statuses=(models.CREATING,))
    assert db_api.mark_deleting(row.id, from_statuses=(models.AVAILABLE,))
    assert not db_api.delete_row(row.id, status=models.AVAILABLE)
    assert db_api.delete_row(row.id, status=models.DELETING)
    assert db_api.get_rows(None) == []


def test_volume_id_is_unique(any_database):
    row = _add()
    with pytest.raises(db_exc.DBDuplicateEntry):
        db_api.create_volume_row(
            request_id=uuidutils.generate_uuid(), volume_id=row.volume_id,
            pool='debian', cluster=None, snapshot_id='s', size=1, name='n',
            host='h', status=models.AVAILABLE)


def test_pool_names_include_unconfigured_pools(database):
    _add(pool='old')
    _add(pool='debian', cluster='east')
    assert db_api.pool_names(None) == {'old'}
    assert db_api.pool_names('east') == {'debian'}


def test_gb_by_pool_sums_ready_and_creating_sizes(any_database):
    _add()                                   # 1 GiB ready
    _add(status=models.CREATING)             # 1 GiB creating
    db_api.create_volume_row(                # size not known yet
        request_id=uuidutils.generate_uuid(), pool='debian', cluster=None,
        snapshot_id='snap-1', size=None, name='n', host='h1')
    _add(status=models.DELETING)             # leaving: not counted
    _add(pool='windows', cluster='east')     # another cluster
    assert db_api.gb_by_pool(None) == {'debian': (2, 1, 1)}
    assert db_api.gb_by_pool('east') == {'windows': (1, 0, 1)}


def test_demand_rows_are_per_host_and_updated_in_place(any_database):
    at = datetime.datetime(2026, 11, 25, 5, 0, 0)
    db_api.publish_demand(None, 'debian', 'h1', score=2.5, score_at=at)
    db_api.publish_demand(None, 'debian', 'h2', score=1.0, score_at=at,
                          last_claim_at=at, refill_time=12.5)
    later = at + datetime.timedelta(seconds=30)
    db_api.publish_demand(None, 'debian', 'h1', score=4.0, score_at=later,
                          last_claim_at=later, refill_time=20.0)
    db_api.publish_demand('east', 'debian', 'h1', score=9.0, score_at=at)
    rows = db_api.get_demand(None)['debian']
    assert [(r.host, r.score, r.score_at, r.last_claim_at, r.refill_time)
            for r in rows] == [('h1', 4.0, later, later, 20.0),
                               ('h2', 1.0, at, at, 12.5)]
    assert all(r.created_at is not None for r in rows)
    assert [r.score for r in db_api.get_demand('east')['debian']] == [9.0]
