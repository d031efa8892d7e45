"""The guards that decide whether a volume changes hands, each pinned by
a test that fails without it: sync never adopts a volume a receipt
holds, a transfer step starts only while the claim holds its row in
time, and a finish whose commit lost its answer is answered from the
receipt.

The checks are those of ``claim_checks``: what Cinder and the tables
hold."""

from oslo_db import exception as db_exc
import pytest

from volume_pool import cinder as vp_cinder
from volume_pool import exception
from volume_pool.db import claims as db_claims
from volume_pool.db import models
from volume_pool.fixtures import cinder_handles
from volume_pool.tests.unit.claim_checks import LEASE_TAGS
from volume_pool.tests.unit.claim_checks import receipt
from volume_pool.tests.unit.claim_checks import rows_by_volume
from volume_pool.tests.unit.manager_steps import call
from volume_pool.tests.unit.manager_steps import CTXT
from volume_pool.tests.unit.manager_steps import fill

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
                          metadata=vp_cinder.pool_tags('debian', None,
                                                       'late-request'))
    mgr.sync(CTXT)
    assert leased['volume_id'] not in rows_by_volume()
    assert simulator.get_volume(leased['volume_id'])['metadata'] == \
        LEASE_TAGS
    assert receipt('l').state == models.R_LEASED
    other = call(mgr.claim, 'debian', create_on_miss=False)
    assert other['volume_id'] != leased['volume_id']
    with pytest.raises(exception.PoolEmpty):
        call(mgr.claim, 'debian', create_on_miss=False)


def test_a_finish_whose_answer_the_database_lost_is_answered(
        make_manager, simulator, monkeypatch):
    """The finish committed but the connection broke before its answer:
    the claim answers from the receipt, not with an error for a volume
    that is already the caller's."""
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
    answer = call(mgr.claim, 'debian', name='vnf-d', claim_key='d')
    assert answer['volume_id'] == volume_id
    assert receipt('d').state == models.R_LEASED
    assert rows_by_volume() == {}
    assert simulator.get_volume(volume_id)['metadata'] == LEASE_TAGS
