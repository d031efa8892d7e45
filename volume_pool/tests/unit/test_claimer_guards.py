"""The claimer's own guards (``volume_pool.claims``), each pinned by a
test that fails without it: a claim into a project the manager cannot
act as is refused before any volume is touched, a ready volume taken
behind the pool's back is never handed out, and a finish the
database committed is the caller's answer however its reply was lost.

The checks are those of ``claim_checks``: what Cinder and the tables
hold."""

import pytest

from volume_pool import exception
from volume_pool.db import claims as db_claims
from volume_pool.db import models
from volume_pool.tests.unit.claim_checks import all_receipts
from volume_pool.tests.unit.claim_checks import assert_in_pool
from volume_pool.tests.unit.claim_checks import lease_tags
from volume_pool.tests.unit.claim_checks import receipt
from volume_pool.tests.unit.claim_checks import rows_by_volume
from volume_pool.tests.unit.manager_steps import call
from volume_pool.tests.unit.manager_steps import fill

PROJECT = '0123456789abcdef0123456789abcdef'


def test_a_claim_into_a_project_the_manager_cannot_act_as_is_refused(
        make_manager, simulator, conf, monkeypatch):
    """The ``[cinder]`` auth cannot be scoped to the receiving project:
    the caller gets VolumeTransferFailed (its volume "stays in the
    pool"), no receipt is written and the ready volume stays in the
    pool."""
    conf.set_override('claim_projects', [PROJECT], group='volume_pool')
    mgr = make_manager({'debian': 1})
    fill(mgr)
    [volume_id] = rows_by_volume()

    def cannot_act_as(project_id):
        raise exception.ConfigError(reason='cannot act as %s' % project_id)

    monkeypatch.setattr(mgr._cinder, 'as_project', cannot_act_as)
    with pytest.raises(exception.VolumeTransferFailed):
        call(mgr.claim, 'debian', name='vnf-p', claim_key='p',
             project_id=PROJECT)
    assert all_receipts() == []
    assert_in_pool(simulator, volume_id)


def test_a_volume_reserved_behind_the_pools_back_is_never_handed_out(
        make_manager, simulator):
    """Cinder answers the hand-over with the volume ``reserved`` (an
    attach under way), not attached yet: it is somebody else's, so the
    claim drops its row and finds the pool empty."""
    mgr = make_manager({'debian': 1})
    fill(mgr)
    [volume_id] = rows_by_volume()
    simulator.set_volume_status(volume_id, 'reserved')
    with pytest.raises(exception.PoolEmpty):
        call(mgr.claim, 'debian', name='vnf-x', create_on_miss=False)
    assert rows_by_volume() == {}
    assert simulator.get_volume(volume_id)['status'] == 'reserved'


def test_a_finish_retried_after_its_commit_is_answered_from_the_receipt(
        make_manager, simulator, monkeypatch):
    """The finish committed, then ran again (a retried transaction) and
    found its row gone: no error, the claim answers what the receipt
    recorded, since the volume is already the caller's."""
    mgr = make_manager({'debian': 1})
    fill(mgr)
    [volume_id] = rows_by_volume()
    real = db_claims.commit_steps

    def committed_then_retried(pool, cluster, snapshot_id, incarnation,
                               takes=(), finishes=()):
        result = real(pool, cluster, snapshot_id, incarnation, takes,
                      finishes)
        if finishes:
            return real(pool, cluster, snapshot_id, incarnation, (),
                        finishes)
        return result

    monkeypatch.setattr(db_claims, 'commit_steps', committed_then_retried)
    answer = call(mgr.claim, 'debian', name='vnf-r', claim_key='r')
    assert answer['volume_id'] == volume_id
    assert receipt('r').state == models.R_LEASED
    assert rows_by_volume() == {}
    assert simulator.get_volume(volume_id)['metadata'] == lease_tags()
