"""A keyed claim answers before its finish is written, against the Cinder
simulator: the answer and the receipt agree, a retry, a confirm or a
release before the finish acts as after it, and a manager that dies
between the answer and the finish loses nothing (sync records the claim
from its volume)."""

import threading

from oslo_db import exception as db_exc
import oslo_messaging as messaging
import pytest

from volume_pool import answered_finishes
from volume_pool import exception
from volume_pool.db import api as db_api
from volume_pool.db import claims as db_claims
from volume_pool.db import clock
from volume_pool.db import managers as db_managers
from volume_pool.db import models
from volume_pool.tests.unit.claim_checks import assert_in_pool
from volume_pool.tests.unit.claim_checks import in_thread
from volume_pool.tests.unit.claim_checks import lease_tags
from volume_pool.tests.unit.claim_checks import ONE_VOLUME
from volume_pool.tests.unit.claim_checks import receipt
from volume_pool.tests.unit.claim_checks import rows_by_volume
from volume_pool.tests.unit.manager_steps import call
from volume_pool.tests.unit.manager_steps import counts
from volume_pool.tests.unit.manager_steps import CTXT
from volume_pool.tests.unit.manager_steps import fill


def _unwaited(method, *args, **kwargs):
    """An endpoint call that does not wait for the finishes (``call``
    does)."""
    try:
        return method(CTXT, *args, **kwargs)
    except messaging.ExpectedException as wrapped:
        raise wrapped.exc_info[1]


@pytest.fixture
def held_finishes(monkeypatch):
    """Answered finishes wait until the test lets them go: no claim's
    transaction carries them, and their writer waits."""
    gate = threading.Event()
    real = answered_finishes._written

    def held(write, finishes):
        assert gate.wait(30)
        return real(write, finishes)

    monkeypatch.setattr(answered_finishes, '_written', held)
    monkeypatch.setattr(answered_finishes.AnsweredFinishes, 'take_queued',
                        lambda self: [])
    yield gate
    gate.set()


def test_the_answer_goes_out_before_the_finish_and_both_agree(
        make_manager, simulator, held_finishes):
    mgr = make_manager({'debian': 2})
    fill(mgr)
    answer = _unwaited(mgr.claim, 'debian', name='vnf-a', claim_key='a')
    # Answered while the receipt still says the claim runs.
    assert receipt('a').state == models.R_CLAIMING
    assert rows_by_volume()[answer['volume_id']].status == models.CLAIMING
    assert simulator.get_volume(answer['volume_id'])['metadata'] == \
        lease_tags()
    held_finishes.set()
    assert mgr.claimer.wait_answered(30)
    recorded = receipt('a')
    assert (recorded.state, recorded.volume_id) == (models.R_LEASED,
                                                    answer['volume_id'])
    assert clock.iso(recorded.lease_expires_at) == answer['lease_expires_at']
    assert answer['volume_id'] not in rows_by_volume()
    assert call(mgr.claim, 'debian', name='vnf-a', claim_key='a') == answer


def test_the_lease_runs_from_the_answer(make_manager, simulator):
    """Not from the take: a slow rename does not shorten the lease."""
    mgr = make_manager({'debian': 1})
    fill(mgr)
    with db_api.reader() as session:
        before = clock.now(session)
    simulator.inject_fault(status=None, delay=0.5, method='PUT',
                           path=ONE_VOLUME, count=1)
    answer = call(mgr.claim, 'debian', name='vnf-l', claim_key='l')
    earliest = clock.later(before, 0.5 + mgr.claimer.claim_lease)
    assert answer['lease_expires_at'] >= clock.iso(earliest)
    assert clock.iso(receipt('l').lease_expires_at) == \
        answer['lease_expires_at']


def test_a_retry_before_the_finish_is_in_progress_then_the_same_answer(
        make_manager, simulator, held_finishes):
    mgr = make_manager({'debian': 2})
    fill(mgr)
    answer = _unwaited(mgr.claim, 'debian', name='vnf-r', claim_key='r')
    with pytest.raises(exception.ClaimInProgress):
        _unwaited(mgr.claim, 'debian', name='vnf-r', claim_key='r')
    held_finishes.set()
    assert mgr.claimer.wait_answered(30)
    assert call(mgr.claim, 'debian', name='vnf-r', claim_key='r') == answer
    assert counts() == {models.AVAILABLE: 1}


@pytest.mark.parametrize('method, state', [('confirm', models.R_USED),
                                           ('release', models.R_RELEASED)])
def test_a_confirm_or_release_right_after_the_answer_waits_for_the_finish(
        make_manager, simulator, held_finishes, monkeypatch, method, state):
    mgr = make_manager({'debian': 2})
    fill(mgr)
    answer = _unwaited(mgr.claim, 'debian', name='vnf-c', claim_key='c')
    waiting = threading.Event()
    real_wait = mgr.claimer.wait_answered

    def spied(*args, **kwargs):
        waiting.set()
        return real_wait(*args, **kwargs)

    monkeypatch.setattr(mgr.claimer, 'wait_answered', spied)
    done = in_thread(_unwaited, getattr(mgr, method), 'c')
    assert waiting.wait(10), 'the %s did not wait for the finish' % method
    held_finishes.set()
    view = done.result(timeout=30)
    assert view['state'] == state
    assert receipt('c').state == state
    if method == 'release':
        assert_in_pool(simulator, answer['volume_id'])
    else:
        assert simulator.get_volume(answer['volume_id'])['metadata'] == {}


@pytest.mark.parametrize('death', ['before the finish', 'finish failing'])
def test_a_manager_dead_after_the_answer_loses_nothing(
        make_manager, simulator, monkeypatch, death):
    """Killed between the answer and the finish (or its database gone for
    good): another manager's sync records the claim as its caller's, and
    the key's retry gets the same volume on any manager."""
    mgr = make_manager({'debian': 2})
    fill(mgr)
    if death == 'before the finish':
        monkeypatch.setattr(answered_finishes.AnsweredFinishes, 'post',
                            lambda self, finish, key, stopped: None)
    else:
        monkeypatch.setattr(
            answered_finishes, '_written',
            lambda write, finishes: (_ for _ in ()).throw(
                db_exc.DBConnectionError('the database is gone')))
    answer = call(mgr.claim, 'debian', name='vnf-k', claim_key='k')
    assert receipt('k').state == models.R_CLAIMING
    db_managers.stopped(mgr.incarnation)
    other = make_manager({'debian': 2})
    call(other.sync)
    recorded = receipt('k')
    assert (recorded.state, recorded.volume_id) == (models.R_LEASED,
                                                    answer['volume_id'])
    volume = simulator.get_volume(answer['volume_id'])
    assert (volume['name'], volume['metadata']) == ('vnf-k', lease_tags())
    assert answer['volume_id'] not in rows_by_volume()
    again = call(other.claim, 'debian', name='vnf-k', claim_key='k')
    assert again['volume_id'] == answer['volume_id']
    assert simulator.get_volume(answer['volume_id'])['status'] == 'available'


def test_a_finish_written_again_after_a_lost_reply_keeps_the_claim(
        make_manager, simulator, monkeypatch):
    """The finish committed, its reply was lost and it ran again: the
    second run finds the receipt recorded and gives nothing back."""
    mgr = make_manager({'debian': 2})
    fill(mgr)
    real = answered_finishes._written
    runs = []

    def twice(write, finishes):
        runs.append(real(write, finishes))
        return real(write, finishes)

    monkeypatch.setattr(answered_finishes, '_written', twice)
    answer = call(mgr.claim, 'debian', name='vnf-t', claim_key='t')
    assert runs and runs[0][0]['volume_id'] == answer['volume_id']
    assert receipt('t').state == models.R_LEASED
    volume = simulator.get_volume(answer['volume_id'])
    assert (volume['name'], volume['metadata']) == ('vnf-t', lease_tags())
    assert counts() == {models.AVAILABLE: 1}


def test_a_claim_past_its_time_at_the_rename_does_not_answer_first(
        make_manager, simulator, monkeypatch):
    """The rename came back after the claim's time: the finish stays on
    the path, fenced by the deadline, and the claim is undone."""
    mgr = make_manager({'debian': 1})
    fill(mgr)
    posted = []
    monkeypatch.setattr(answered_finishes.AnsweredFinishes, 'post',
                        lambda self, *args: posted.append(args))
    monkeypatch.setattr(db_claims.Take, 'left', property(lambda self: -1.0))
    with pytest.raises(exception.ClaimTimedOut):
        call(mgr.claim, 'debian', name='vnf-p', claim_key='p')
    assert posted == []
    assert counts() == {models.AVAILABLE: 1}
    assert receipt('p') is None


def test_the_next_claims_transaction_carries_the_finish(
        make_manager, simulator, monkeypatch):
    """The finish rides in the next claim's take: one transaction, and
    the writer thread writes nothing alone."""
    mgr = make_manager({'debian': 3})
    fill(mgr)
    monkeypatch.setattr(answered_finishes, 'RIDE_WAIT', 30.0)
    alone = []
    real = answered_finishes._written
    monkeypatch.setattr(answered_finishes, '_written',
                        lambda write, finishes: alone.append(finishes) or
                        real(write, finishes))
    first = _unwaited(mgr.claim, 'debian', name='vnf-1', claim_key='one')
    assert receipt('one').state == models.R_CLAIMING
    second = _unwaited(mgr.claim, 'debian', name='vnf-2', claim_key='two')
    recorded = receipt('one')
    assert (recorded.state, recorded.volume_id) == (models.R_LEASED,
                                                    first['volume_id'])
    assert first['volume_id'] not in rows_by_volume()
    assert second['volume_id'] != first['volume_id']
    assert alone == []
    assert receipt('two').state == models.R_CLAIMING


def test_a_carried_finish_whose_batch_failed_is_written_after(
        make_manager, simulator, monkeypatch):
    """The next claim's transaction failed as a whole: the finish it
    carried is queued again, and the claim after carries it."""
    mgr = make_manager({'debian': 3})
    fill(mgr)
    first = call(mgr.claim, 'debian', name='vnf-1', claim_key='one')
    monkeypatch.setattr(answered_finishes, 'RIDE_WAIT', 30.0)
    second = _unwaited(mgr.claim, 'debian', name='vnf-2', claim_key='two')
    real = db_claims.commit_steps
    failures = []

    def fail_once(*args, **kwargs):
        if not failures:
            failures.append(args)
            raise db_exc.DBConnectionError('the connection dropped')
        return real(*args, **kwargs)

    monkeypatch.setattr(db_claims, 'commit_steps', fail_once)
    with pytest.raises(exception.VolumePoolException):
        _unwaited(mgr.claim, 'debian', name='vnf-3', claim_key='three')
    assert failures
    assert receipt('two').state == models.R_CLAIMING
    third = _unwaited(mgr.claim, 'debian', name='vnf-4', claim_key='four')
    assert receipt('two').state == models.R_LEASED
    assert len({first['volume_id'], second['volume_id'],
                third['volume_id']}) == 3
