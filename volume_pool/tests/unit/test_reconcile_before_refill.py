"""Reconcile before creating: a manager refills a pool only once a sync of
its own has listed the pool in Cinder and adopted the tagged volumes that
have no row (volume_pool.reconciled).

A table that lacks rows (a database restored from an older backup) shows
the pools emptier than Cinder holds them; a refill before that sync would
create volumes the sync then finds in surplus and deletes.
"""

import logging

import pytest

from volume_pool import sync
from volume_pool.db import api as db_api
from volume_pool.db import models
from volume_pool.fixtures import seeding
from volume_pool.tests.unit.claim_checks import POST
from volume_pool.tests.unit.manager_steps import call
from volume_pool.tests.unit.manager_steps import CTXT
from volume_pool.tests.unit.manager_steps import ready
from volume_pool.tests.unit.manager_steps import settle
from volume_pool.tests.unit.manager_steps import tagged
from volume_pool.tests.unit.manager_steps import wait_for

DELETE = ('DELETE', '/volumes/{id}')
LISTING = r'^/volumes/detail$'
METADATA = r'^/volumes/[0-9a-f-]+/metadata$'
WAITING = 'waiting for the first sync with Cinder'


def restored(simulator, mgr, pool, count):
    """``count`` ready volumes of ``pool`` in Cinder whose rows the table
    lacks, as after a restore of an older backup; returns their ids."""
    ids = seeding.seed_pool(simulator, pool, mgr.specs[pool].snapshot_id,
                            count)
    for row in db_api.get_rows(None, pool=pool):
        db_api.delete_row(row.id, status=row.status)
    return set(ids)


def rows_of(pool='debian'):
    return {r.volume_id: r.status for r in db_api.get_rows(None, pool=pool)}


def status_of(mgr, pool='debian'):
    return {p['name']: p for p in call(mgr.pool_status)}[pool]


def creating():
    """The rows of the creates replenish queued: written before it returns,
    whereas the creates themselves reach Cinder from its workers."""
    return [r for r in db_api.get_rows(None) if r.status == models.CREATING]


def quiet(mgr, simulator):
    """Cinder was asked to create nothing and delete nothing (once every
    create queued is answered)."""
    settle(mgr)
    return (simulator.request_counts[POST],
            simulator.request_counts[DELETE]) == (0, 0)


@pytest.mark.parametrize('per_pool_listings', [sync.PER_POOL_LISTINGS, 0],
                         ids=['per-pool', 'cluster'])
def test_a_start_on_a_table_missing_rows_creates_and_deletes_nothing(
        make_manager, simulator, monkeypatch, per_pool_listings):
    # Listed pool by pool, or the whole cluster in one listing.
    monkeypatch.setattr(sync, 'PER_POOL_LISTINGS', per_pool_listings)
    mgr = make_manager({'debian': 3, 'windows': 2})
    volumes = {pool: restored(simulator, mgr, pool, mgr.specs[pool].target)
               for pool in ('debian', 'windows')}
    simulator.reset_counts()
    mgr.replenish(CTXT)  # before any sync: every pool looks empty
    assert rows_of('debian') == rows_of('windows') == {}
    mgr.sync(CTXT)
    for pool, ids in volumes.items():
        assert rows_of(pool) == dict.fromkeys(ids, models.AVAILABLE)
    for _round in range(2):
        mgr.replenish(CTXT)
        assert creating() == []
        mgr.sync(CTXT)
    assert quiet(mgr, simulator), simulator.request_counts
    for pool, ids in volumes.items():
        assert {v['id'] for v in tagged(simulator, pool)} == ids
        assert set(rows_of(pool)) == ids


def test_a_sync_that_cannot_list_cinder_keeps_refills_held(make_manager,
                                                           simulator):
    mgr = make_manager({'debian': 3})
    kept = restored(simulator, mgr, 'debian', 2)
    simulator.reset_counts()
    simulator.inject_fault(status=503, method='GET', path=LISTING, count=10)
    mgr.sync(CTXT)  # skipped: Cinder did not answer the listing
    mgr.replenish(CTXT)
    assert rows_of() == {}
    assert quiet(mgr, simulator)
    simulator.clear_faults()
    mgr.sync(CTXT)
    assert rows_of() == dict.fromkeys(kept, models.AVAILABLE)
    mgr.replenish(CTXT)  # released: only the one volume the pool lacks
    wait_for(lambda: ready() == 3, what='the pool full')
    assert simulator.request_counts[POST] == 1
    assert simulator.request_counts[DELETE] == 0
    assert kept < {v['id'] for v in tagged(simulator)}


def test_a_pool_whose_orphans_sync_could_not_settle_stays_held(
        make_manager, simulator):
    # The listing worked, but an orphan's settling failed at Cinder: the
    # orphans after it are neither adopted nor deleted, so the pool is not
    # reconciled yet.
    mgr = make_manager({'debian': 3})
    kept = restored(simulator, mgr, 'debian', 2)
    attached = sorted(kept)[0]
    simulator.attach_volume(attached)  # its pool tags are dropped
    simulator.inject_fault(status=500, method='PUT', path=METADATA,
                           count=10)
    simulator.reset_counts()
    mgr.sync(CTXT)
    mgr.replenish(CTXT)
    assert creating() == []
    assert status_of(mgr)['reason'].startswith(WAITING)
    simulator.clear_faults()
    mgr.sync(CTXT)
    assert rows_of() == dict.fromkeys(kept - {attached}, models.AVAILABLE)
    mgr.replenish(CTXT)
    wait_for(lambda: ready() == 3, what='the pool full')
    assert simulator.request_counts[POST] == 2


def test_a_claim_on_an_empty_pool_before_the_first_sync_gets_a_volume(
        make_manager, simulator):
    mgr = make_manager({'debian': 2})
    simulator.reset_counts()
    claimed = call(mgr.claim, 'debian', name='vm-1')
    assert claimed['source'] == 'created'
    assert simulator.get_volume(claimed['volume_id'])['name'] == 'vm-1'
    mgr.replenish(CTXT)  # the miss is not a refill: that still waits
    assert rows_of() == {}
    settle(mgr)
    assert simulator.request_counts[POST] == 1


def test_pool_status_says_a_short_pool_waits_for_the_first_sync(
        make_manager, simulator):
    mgr = make_manager({'debian': 2})
    kept = restored(simulator, mgr, 'debian', 1)
    mgr.replenish(CTXT)
    status = status_of(mgr)
    assert (status['ready'], status['creating']) == (0, 0)
    assert status['reason'].startswith(WAITING), status['reason']
    mgr.sync(CTXT)
    status = status_of(mgr)
    assert status['ready'] == 1
    assert status['reason'] == 'waiting for the next replenish'
    mgr.replenish(CTXT)
    wait_for(lambda: ready() == 2, what='the pool full')
    assert status_of(mgr)['reason'] == 'full'
    assert kept < set(rows_of())


def test_a_pool_taken_over_later_waits_for_this_managers_sync(
        make_manager, simulator, monkeypatch):
    # With coordination, sync settles only the pools this manager owns on
    # the ring: one it takes over later (its owner died) is refilled only
    # once this manager's own sync has reconciled it.
    owned = {'debian'}
    mgr = make_manager({'debian': 1, 'windows': 2})
    monkeypatch.setattr(mgr.coordination, 'ownership',
                        lambda: owned.__contains__)
    kept = restored(simulator, mgr, 'windows', 1)
    mgr.sync(CTXT)
    mgr.replenish(CTXT)
    wait_for(lambda: ready('debian') == 1, what='debian full')
    owned.add('windows')  # its owner died
    simulator.reset_counts()
    mgr.replenish(CTXT)
    assert quiet(mgr, simulator)
    assert status_of(mgr, 'windows')['reason'].startswith(WAITING)
    mgr.sync(CTXT)
    assert rows_of('windows') == dict.fromkeys(kept, models.AVAILABLE)
    mgr.replenish(CTXT)
    wait_for(lambda: ready('windows') == 2, what='windows full')
    assert simulator.request_counts[POST] == 1


def test_the_operators_refill_reconciles_the_pool_first(make_manager,
                                                         simulator):
    mgr = make_manager({'debian': 3})
    kept = restored(simulator, mgr, 'debian', 2)
    simulator.reset_counts()
    assert call(mgr.refill, 'debian') == 1  # the one Cinder lacks
    assert kept < set(rows_of())
    wait_for(lambda: ready() == 3, what='the pool full')
    assert simulator.request_counts[POST] == 1
    assert simulator.request_counts[DELETE] == 0
    assert call(mgr.refill, 'debian') == 0


def test_held_and_released_are_said_once_per_pool(make_manager, simulator,
                                                  caplog):
    caplog.set_level(logging.INFO, logger='volume_pool.reconciled')
    mgr = make_manager({'debian': 1, 'windows': 1})
    for _run in range(3):
        mgr.replenish(CTXT)
    mgr.sync(CTXT)
    mgr.sync(CTXT)
    lines = [r.getMessage() for r in caplog.records
             if r.name == 'volume_pool.reconciled']
    assert lines == [
        'Pool debian is not refilled until a sync has reconciled it with '
        'Cinder (its volumes listed, those without a row adopted).',
        'Pool windows is not refilled until a sync has reconciled it with '
        'Cinder (its volumes listed, those without a row adopted).',
        'Pool debian is reconciled with Cinder: replenish refills it.',
        'Pool windows is reconciled with Cinder: replenish refills it.']
