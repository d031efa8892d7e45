"""Settling a held volume, function by function, against the simulator:
``settle`` acts only for the claim that holds the row, and sync's
``settle_taken`` settles every hold it took over in one pass, whatever
one of them does.

The holds are written as a manager that is gone would have left them;
the checks are what Cinder and the tables hold."""

import pytest

from volume_pool import exception
from volume_pool import handback
from volume_pool import sync
from volume_pool.db import claims as db_claims
from volume_pool.db import models
from volume_pool.db import receipts as db_receipts
from volume_pool.tests.unit.claim_checks import rows_by_volume
from volume_pool.tests.unit.manager_steps import fill

PROJECT = '0123456789abcdef0123456789abcdef'


def hold(mgr, claim_id, **take):
    """A ready row held under ``claim_id`` by a manager that is gone."""
    [row], _done = db_claims.commit_steps(
        'debian', None, mgr.specs['debian'].snapshot_id, 'dead-manager',
        [db_claims.Take(claim_id=claim_id, hold=60, **take)])
    return row


def hold_unbound(mgr, claim_id):
    """The row of a miss held before its create: no volume yet."""
    snapshot_id = mgr.specs['debian'].snapshot_id
    db_claims.write_receipt('debian', None, snapshot_id, db_claims.Take(
        claim_id=claim_id, hold=60))
    return db_claims.hold_new_volume(
        claim_id, request_id='req-%s' % claim_id, pool='debian',
        cluster=None, snapshot_id=snapshot_id, size=1,
        name='volume-pool-debian-%s' % claim_id, host='dead-host',
        incarnation='dead-manager')


def held():
    return {r.volume_id: (r.status, r.claim_id)
            for r in rows_by_volume().values()}


def test_settle_changes_nothing_for_a_claim_that_no_longer_holds_the_row(
        make_manager, simulator):
    """Under a claim id that does not hold the row (sync took it over
    meanwhile), whatever Cinder says of the volume -- ready, attached or
    in error -- settle answers NOT_HELD and leaves volume and row alone."""
    mgr = make_manager({'debian': 3})
    fill(mgr)
    ready, attached, failed = [hold(mgr, 'c%d' % n) for n in range(3)]
    simulator.attach_volume(attached.volume_id)
    simulator.set_volume_status(failed.volume_id, 'error')
    before = held()
    for row in (ready, attached, failed):
        outcome = handback.settle(mgr._cinder, row, 'not-the-holder')
        assert outcome.action == handback.NOT_HELD
    assert held() == before
    assert simulator.get_volume(failed.volume_id)['status'] == 'error'


def test_settle_deletes_its_holders_volume_in_error(make_manager,
                                                   simulator):
    """For the claim that holds the row, a volume in error is not worth a
    place in the pool: its row goes ``deleting`` and the volume is
    deleted."""
    mgr = make_manager({'debian': 1})
    fill(mgr)
    row = hold(mgr, 'c1')
    simulator.set_volume_status(row.volume_id, 'error')
    outcome = handback.settle(mgr._cinder, row, 'c1')
    assert outcome.action == handback.LET_GO
    assert rows_by_volume()[row.volume_id].status == models.DELETING
    assert simulator.get_volume(row.volume_id) is None


def test_a_claim_into_a_project_whose_volume_is_gone_everywhere_ends(
        make_manager, simulator):
    """The pool's user does not find the volume, nor does the project
    the claim was into: the volume is gone, its row is let go and the
    claim gave nothing."""
    mgr = make_manager({'debian': 1})
    fill(mgr)
    row = hold(mgr, 'c1', claim_key='k', target_project=PROJECT)
    simulator.remove_volume(row.volume_id)
    outcome = handback.settle(mgr._cinder, row, 'c1')
    assert (outcome.action, outcome.reason) == (handback.LET_GO,
                                                'the volume is gone')
    assert rows_by_volume() == {}
    assert db_receipts.get_by_claim('c1') is None


def test_a_volume_the_project_cannot_be_asked_about_stays_held(
        make_manager, simulator, monkeypatch):
    """The pool's user does not find the volume and the manager cannot
    act as the receiving project (an auth that cannot be scoped to it):
    settle cannot tell where the volume went, so the row and the receipt
    stay as they are, for a later try."""
    mgr = make_manager({'debian': 1})
    fill(mgr)
    row = hold(mgr, 'c1', claim_key='k', target_project=PROJECT)
    simulator.remove_volume(row.volume_id)

    def cannot_act_as(project_id):
        raise exception.ConfigError(reason='cannot act as %s' % project_id)

    monkeypatch.setattr(mgr._cinder, 'as_project', cannot_act_as)
    before = held()
    with pytest.raises(exception.CinderUnavailable):
        handback.settle(mgr._cinder, row, 'c1')
    assert held() == before
    assert db_receipts.get_by_claim('c1').state == models.R_CLAIMING


def test_sync_settles_every_hold_it_took_over_in_one_pass(make_manager,
                                                          simulator):
    """settle_taken goes through every hold: a miss whose create never
    reached Cinder is forgotten, one whose create the listing shows is
    bound and given back, one Cinder fails to settle now is kept for the
    next pass, and those after them are given back all the same."""
    mgr = make_manager({'debian': 2})
    fill(mgr)
    never_created = hold_unbound(mgr, 'c-never')
    created = hold_unbound(mgr, 'c-made')
    made = simulator.add_volume(
        snapshot_id=mgr.specs['debian'].snapshot_id, name=created.name)
    failing, ready = hold(mgr, 'c-fail'), hold(mgr, 'c-ok')
    simulator.inject_fault(status=500, method='GET',
                           path='^/volumes/%s$' % failing.volume_id)
    taken = [(never_created, models.R_CLAIMING),
             (failing, models.R_CLAIMING),
             (created, models.R_CLAIMING),
             (ready, models.R_CLAIMING)]
    by_request = {created.request_id: mgr._cinder.get_volume(made)}
    handback.settle_taken(mgr._cinder, 'debian', taken, by_request,
                          lambda row: None, sync.SyncReport())
    assert held() == {
        failing.volume_id: (models.CLAIMING, 'c-fail'),
        made: (models.AVAILABLE, None),
        ready.volume_id: (models.AVAILABLE, None)}
