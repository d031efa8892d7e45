"""The pool table's API on SQLite, MariaDB and PostgreSQL."""

import datetime

from oslo_db import exception as db_exc
from oslo_utils import uuidutils
import pytest

from volume_pool.db import api as db_api
from volume_pool.db import managers as db_managers
from volume_pool.db import models

# The functional layer runs these again on the real services.
pytestmark = pytest.mark.recollect


def _add(pool='debian', cluster=None, status=models.AVAILABLE,
         snapshot_id='snap-1', volume_id=True):
    request_id = uuidutils.generate_uuid()
    return db_api.create_volume_row(
        request_id=request_id,
        volume_id=uuidutils.generate_uuid() if volume_id else None,
        pool=pool, cluster=cluster, snapshot_id=snapshot_id, size=1,
        name='volume-pool-%s-%s' % (pool, request_id[:8]), host='h1',
        status=status)


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


def test_a_manager_of_a_thousand_long_named_pools_registers(any_database):
    # About 100 KiB of {pool: snapshot_id}: more than MariaDB's TEXT holds.
    pools = {'%s-%04d' % ('p' * 58, n): uuidutils.generate_uuid()
             for n in range(1000)}
    db_managers.register('big', 'scale', 'big-1', pools=pools)
    assert db_managers.heartbeat('big-1', pools)
    [(_host, _incarnation, seen)] = db_managers.pool_views('scale', 60)
    assert seen == pools
