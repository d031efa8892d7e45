"""The guards that decide whether a volume changes hands, each pinned by
a test that fails without it: sync never adopts a volume a receipt
holds, a transfer step starts only while the claim holds its row in
time, and a finish whose commit lost its answer is answered from the
receipt.

The checks are those of ``claim_checks``: what Cinder and the tables
hold."""

from oslo_db import exception as db_exc
import pytest

from volume_pool import exception
from volume_pool.db import claims as db_claims
from volume_pool.db import models
from volume_pool.fixtures import cinder_handles
from volume_pool.fixtures import waiting
from volume_pool.tests.unit import claim_checks
from volume_pool.tests.unit.claim_checks import all_receipts
from volume_pool.tests.unit.claim_checks import assert_in_pool
from volume_pool.tests.unit.claim_checks import in_thread
from volume_pool.tests.unit.claim_checks import lease_tags
from volume_pool.tests.unit.claim_checks import ONE_VOLUME
from volume_pool.tests.unit.claim_checks import receipt
from volume_pool.tests.unit.claim_checks import rows_by_volume
from volume_pool.tests.unit.manager_steps import call
from volume_pool.tests.unit.manager_steps import CTXT
from volume_pool.tests.unit.manager_steps import fill
from volume_pool.tests.unit.manager_steps import held_past_its_deadline

PROJECT = '0123456789abcdef0123456789abcdef'
TRANSFER_CREATE = ('POST', '/os-volume-transfer')
TRANSFER_ACCEPT = ('POST', '/os-volume-transfer/{id}/accept')


def test_sync_never_adopts_a_callers_volume_that_got_pool_tags_back(
        make_manager, simulator):
    """A late put-back PUT tagged a leased volume for the pool again,
    while the pool is below its target: sync drops the tags again and
    the next claims never get that volume."""
    mgr = make_manager({'debian': 2})
    fill(mgr)
    leased = call(mgr.claim, 'debian', name='vnf-l', claim_key='l')
    client = cinder_handles.noauth_cinder_client(simulator.endpoint,
                                                 simulator.project_id)
    client.volumes.update(leased['volume_id'], name='debian-late',
                          metadata=claim_checks.pool_tags('debian', None,
                                                       'late-request'))
    mgr.sync(CTXT)
    assert leased['volume_id'] not in rows_by_volume()
    assert simulator.get_volume(leased['volume_id'])['metadata'] == \
        lease_tags()
    assert receipt('l').state == models.R_LEASED
    other = call(mgr.claim, 'debian', create_on_miss=False)
    assert other['volume_id'] != leased['volume_id']
    with pytest.raises(exception.PoolEmpty):
        call(mgr.claim, 'debian', create_on_miss=False)


@pytest.mark.parametrize('slow_step, skipped', [
    (('PUT', ONE_VOLUME), TRANSFER_CREATE),
    (('POST', r'^/os-volume-transfer$'), TRANSFER_ACCEPT),
], ids=['before-the-offer', 'before-the-accept'])
def test_no_transfer_step_starts_after_the_claims_deadline(
        make_manager, simulator, conf, slow_step, skipped):
    """The step before answers only once the claim's deadline passed:
    the next transfer step is never sent and the volume stays in the
    pool."""
    conf.set_override('claim_projects', [PROJECT], group='volume_pool')
    mgr = make_manager({'debian': 1})
    fill(mgr)
    [volume_id] = rows_by_volume()
    method, path = slow_step
    slow = simulator.inject_fault(status=None, method=method, path=path,
                                  hold=True)
    claiming = in_thread(call, mgr.claim, 'debian', name='vnf-t',
                         claim_key='t', project_id=PROJECT, time_left=1.5)
    slow.wait_arrived()
    waiting.wait_for(held_past_its_deadline, timeout=15,
                     what="the claim's deadline passed")
    simulator.reset_counts()
    slow.release()
    with pytest.raises(exception.ClaimTimedOut):
        claiming.result(timeout=15)
    assert simulator.request_counts[skipped] == 0
    assert_in_pool(simulator, volume_id)
    volume = simulator.get_volume(volume_id)
    assert volume['os-vol-tenant-attr:tenant_id'] == simulator.project_id
    assert receipt('t') is None


def test_a_finish_whose_answer_the_database_lost_is_answered(
        make_manager, simulator, monkeypatch):
    """The finish committed but the connection broke before its answer:
    the claim answers from the receipt, not with an error for a volume
    that is already the caller's.  (An unkeyed claim: a keyed one
    answers before its finish.)"""
    mgr = make_manager({'debian': 1})
    fill(mgr)
    [volume_id] = rows_by_volume()
    real = db_claims.commit_steps

    def answer_lost(pool, cluster, snapshot_id, incarnation, takes=(),
                    finishes=()):
        result = real(pool, cluster, snapshot_id, incarnation, takes,
                      finishes)
        if finishes:
            raise db_exc.DBConnectionError('connection lost after commit')
        return result

    monkeypatch.setattr(db_claims, 'commit_steps', answer_lost)
    answer = call(mgr.claim, 'debian', name='vnf-d')
    assert answer['volume_id'] == volume_id
    [used] = all_receipts()
    assert (used.state, used.volume_id) == (models.R_USED, volume_id)
    assert rows_by_volume() == {}
    assert simulator.get_volume(volume_id)['metadata'] == {}
