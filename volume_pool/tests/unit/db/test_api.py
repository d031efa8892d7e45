"""The pool table's API on SQLite, MariaDB and PostgreSQL."""

import concurrent.futures
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
