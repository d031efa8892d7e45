"""During a rolling upgrade this code runs beside a newer release on its
schema: rows and receipts in states it does not know are left alone."""

from oslo_utils import uuidutils

from volume_pool.db import api as db_api
from volume_pool.db import models
from volume_pool.tests.unit import claim_checks
from volume_pool.tests.unit import manager_steps as tm


def _tagged_volume(simulator, mgr, pool='debian'):
    request_id = uuidutils.generate_uuid()
    volume_id = simulator.add_volume(
        snapshot_id=mgr.snapshots[pool],
        metadata=claim_checks.pool_tags(pool, None, request_id))
    return volume_id, request_id


def _receipt(volume_id, state, mgr, pool='debian'):
    with db_api.writer() as session:
        session.add(models.ClaimReceipt(
            claim_id=uuidutils.generate_uuid(), cluster='', project_id='p',
            claim_key='k-' + volume_id, fingerprint='f', state=state,
            pool=pool, snapshot_id=mgr.snapshots[pool], volume_id=volume_id,
            source='pool'))


def test_unknown_row_and_receipt_states_survive_sync_and_claims(
        make_manager, simulator):
    mgr = make_manager({'debian': 2})
    tm.fill(mgr)
    parked_volume, request_id = _tagged_volume(simulator, mgr)
    db_api.create_volume_row(
        request_id=request_id, volume_id=parked_volume, pool='debian',
        cluster=None, snapshot_id=mgr.snapshots['debian'], size=1,
        name='parked', host='newer', status='parked')
    # One whose volume the newer release has just deleted, not yet its row.
    db_api.create_volume_row(
        request_id=uuidutils.generate_uuid(), volume_id='gone-volume',
        pool='debian', cluster=None, snapshot_id=mgr.snapshots['debian'],
        size=1, name='parked-2', host='newer', status='parked')
    escrowed_volume, _request = _tagged_volume(simulator, mgr)
    _receipt(escrowed_volume, 'escrowed', mgr)
    for _ in range(3):
        mgr.sync(tm.CTXT)
    claimed = {tm.call(mgr.claim, 'debian')['volume_id'] for _ in range(2)}
    assert parked_volume not in claimed and escrowed_volume not in claimed
    mgr.sync(tm.CTXT)
    rows = {r.volume_id: r.status for r in db_api.get_rows(None)}
    assert rows[parked_volume] == rows['gone-volume'] == 'parked'
    assert escrowed_volume not in rows  # neither adopted ...
    alive = {v['id'] for v in simulator.list_volumes()
             if v['status'] != 'deleting'}
    assert {parked_volume, escrowed_volume} <= alive  # ... nor deleted
    with db_api.reader() as session:
        states = {r.state for r in session.query(models.ClaimReceipt)}
    assert 'escrowed' in states
