"""Claim keys, manager-level, against the Cinder simulator: a keyed claim
is leased and its retry takes no second volume, even after a lost reply
or on another manager; keys are per project; bad keys change nothing.

The checks are those of ``claim_checks``: what Cinder and the tables
hold."""

import concurrent.futures
import datetime
import threading
import time

import pytest

from volume_pool import context as vp_context
from volume_pool import exception
from volume_pool.db import claims as db_claims
from volume_pool.db import models
from volume_pool.fixtures import waiting
from volume_pool.tests.unit.claim_checks import all_receipts
from volume_pool.tests.unit.claim_checks import assert_in_pool
from volume_pool.tests.unit.claim_checks import lease_tags
from volume_pool.tests.unit.claim_checks import POST
from volume_pool.tests.unit.claim_checks import PUT
from volume_pool.tests.unit.claim_checks import receipt
from volume_pool.tests.unit.claim_checks import rows_by_volume
from volume_pool.tests.unit.claim_checks import snapshot_of_world
from volume_pool.tests.unit.manager_steps import call
from volume_pool.tests.unit.manager_steps import counts
from volume_pool.tests.unit.manager_steps import CTXT
from volume_pool.tests.unit.manager_steps import fill
from volume_pool.tests.unit.manager_steps import ready

# -- keyed and unkeyed claims --------------------------------------------


def test_keyed_claim_is_leased_and_its_retry_takes_no_second_volume(
        make_manager, simulator):
    mgr = make_manager({'debian': 2})
    fill(mgr)
    simulator.reset_counts()
    before = time.time()
    result = call(mgr.claim, 'debian', name='vnf-1-root', claim_key='k1')
    assert result['claim_key'] == 'k1'
    assert result['source'] == 'pool'
    expires = datetime.datetime.strptime(result['lease_expires_at'],
                                         '%Y-%m-%dT%H:%M:%S.%fZ')
    expires = expires.replace(tzinfo=datetime.timezone.utc).timestamp()
    # claim_lease defaults to an hour, on the database's clock.
    assert before + 3500 < expires < time.time() + 3700
    volume = simulator.get_volume(result['volume_id'])
    assert volume['name'] == 'vnf-1-root'
    assert volume['metadata'] == lease_tags()  # no pool tag left
    assert result['volume_id'] not in rows_by_volume()
    held = receipt('k1')
    assert (held.state, held.volume_id) == (models.R_LEASED,
                                            result['volume_id'])
    assert ready() == 1

    again = call(mgr.claim, 'debian', name='vnf-1-root', claim_key='k1')
    assert again == result
    assert ready() == 1
    assert simulator.request_counts[PUT] == 1  # one rename, not two
    assert simulator.request_counts[POST] == 0
    assert [r.claim_key for r in all_receipts()] == ['k1']


def test_same_key_with_other_arguments_conflicts_and_changes_nothing(
        make_manager, simulator):
    mgr = make_manager({'debian': 2})
    fill(mgr)
    call(mgr.claim, 'debian', name='vnf-1', claim_key='k1')
    world = snapshot_of_world(simulator)
    for kwargs in ({'name': 'vnf-other'}, {'name': None},
                   {'name': 'vnf-1', 'create_on_miss': False}):
        with pytest.raises(exception.ClaimKeyConflict) as caught:
            call(mgr.claim, 'debian', claim_key='k1', **kwargs)
        assert caught.value.claim_key == 'k1'
    assert snapshot_of_world(simulator) == world


def test_unkeyed_claim_carries_no_lease(make_manager, simulator):
    mgr = make_manager({'debian': 1})
    fill(mgr)
    result = call(mgr.claim, 'debian', name='vnf-2')
    assert 'claim_key' not in result
    assert 'lease_expires_at' not in result
    volume = simulator.get_volume(result['volume_id'])
    assert volume['name'] == 'vnf-2'
    assert volume['metadata'] == {}
    [used] = all_receipts()
    assert (used.claim_key, used.state, used.volume_id) == (
        None, models.R_USED, result['volume_id'])
    # No lease to run out: sync leaves it with its caller.
    mgr.sync(CTXT)
    assert simulator.get_volume(result['volume_id'])['name'] == 'vnf-2'
    assert rows_by_volume() == {}


def test_claim_keys_are_scoped_to_the_callers_project(make_manager,
                                                      simulator):
    mgr = make_manager({'debian': 2})
    fill(mgr)
    alice = vp_context.RequestContext(project_id='p-alice')
    bob = vp_context.RequestContext(project_id='p-bob')
    first = call(mgr.claim, 'debian', claim_key='k', ctxt=alice)
    second = call(mgr.claim, 'debian', claim_key='k', ctxt=bob)
    assert first['volume_id'] != second['volume_id']
    assert ready() == 0
    # Bob's release gives back Bob's volume only.
    call(mgr.release, 'k', ctxt=bob)
    assert_in_pool(simulator, second['volume_id'])
    assert receipt('k', 'p-alice').state == models.R_LEASED
    assert simulator.get_volume(first['volume_id'])['metadata'] == lease_tags()
    # The admin context has no project: its release of the key is its
    # own, recorded before any claim of it, and touches nobody's volume.
    view = call(mgr.release, 'k')
    assert (view['project_id'], view['state'], view['volume_id']) == (
        None, models.R_RELEASED, None)
    assert receipt('k', 'p-alice').state == models.R_LEASED


# -- a lost reply -------------------------------------------------------------


def test_retry_after_a_lost_reply_gets_the_receipt_on_any_manager(
        make_manager, simulator):
    """A crash between the finish and the reply: the caller retries, with
    the same key, possibly on another manager process."""
    mgr = make_manager({'debian': 2})
    fill(mgr)
    simulator.reset_counts()
    result = call(mgr.claim, 'debian', name='vnf-x', claim_key='x1',
                  time_left=30)
    restarted = make_manager({'debian': 2})  # a new incarnation
    assert restarted.incarnation != mgr.incarnation
    again = call(restarted.claim, 'debian', name='vnf-x', claim_key='x1',
                 time_left=10)
    assert again == result
    assert simulator.request_counts[PUT] == 1
    assert simulator.request_counts[POST] == 0
    assert [(r.claim_key, r.volume_id) for r in all_receipts()] == [
        ('x1', result['volume_id'])]
    assert counts() == {models.AVAILABLE: 1}


# -- bad input ---------------------------------------------------------------


@pytest.mark.parametrize('kwargs', [
    {'claim_key': 'k' * 300},
    {'claim_key': 'k' * 256},
    {'claim_key': 'bad\x00key'},
    {'claim_key': 'bad\nkey'},
    {'claim_key': '\x1b[31m'},
    {'claim_key': '   '},
    {'claim_key': ''},
    {'claim_key': 42},
    {'claim_key': b'bytes-key'},
    {'claim_key': ['k']},
    {'claim_key': 'k', 'time_left': 0},
    {'claim_key': 'k', 'time_left': -1.5},
    {'claim_key': 'k', 'time_left': True},
    {'claim_key': 'k', 'time_left': False},
    {'claim_key': 'k', 'time_left': '30'},
    {'claim_key': 'k', 'time_left': float('nan')},
    {'claim_key': 'k', 'time_left': float('inf')},
    {'time_left': 0},
], ids=lambda kwargs: repr(kwargs)[:40])
def test_bad_claim_key_or_time_left_is_refused_and_changes_nothing(
        make_manager, simulator, kwargs):
    mgr = make_manager({'debian': 1})
    fill(mgr)
    world = snapshot_of_world(simulator)
    simulator.reset_counts()
    with pytest.raises(exception.InvalidClaimRequest):
        call(mgr.claim, 'debian', name='vnf-bad', **kwargs)
    assert snapshot_of_world(simulator) == world
    assert simulator.request_counts[PUT] == 0


@pytest.mark.parametrize('key', [None, '', 'k' * 300, 'a\tb', 7])
def test_bad_key_to_confirm_or_release_is_refused(make_manager, simulator,
                                                  key):
    mgr = make_manager({'debian': 1})
    fill(mgr)
    world = snapshot_of_world(simulator)
    for method in (mgr.confirm, mgr.release):
        with pytest.raises(exception.InvalidClaimRequest):
            call(method, key)
    assert snapshot_of_world(simulator) == world


def test_longest_key_is_accepted(make_manager, simulator):
    mgr = make_manager({'debian': 1})
    fill(mgr)
    key = 'k' * 255
    result = call(mgr.claim, 'debian', claim_key=key)
    assert result['claim_key'] == key
    assert call(mgr.claim, 'debian', claim_key=key) == result


# -- one key twice in one batch --------------------------------------------


def test_same_key_twice_in_one_batch_fails_neither_the_batch_nor_the_key(
        make_manager, simulator, monkeypatch):
    mgr = make_manager({'debian': 3})
    fill(mgr)
    real = db_claims.commit_steps
    gate, entered = threading.Event(), threading.Event()
    batches = []

    def gated(pool, cluster, snapshot_id, incarnation, takes=(),
              finishes=()):
        if not entered.is_set():
            entered.set()
            assert gate.wait(10)  # hold the first batch: the rest queue
        batches.append([take.claim_key for take in takes])
        return real(pool, cluster, snapshot_id, incarnation, takes,
                    finishes)

    monkeypatch.setattr(db_claims, 'commit_steps', gated)
    with concurrent.futures.ThreadPoolExecutor(4) as executor:
        leader = executor.submit(call, mgr.claim, 'debian', name='lead')
        assert entered.wait(10)
        same = [executor.submit(call, mgr.claim, 'debian', name='twin',
                                claim_key='twin') for _ in range(2)]
        other = executor.submit(call, mgr.claim, 'debian', name='other',
                                claim_key='other')
        waiting.wait_for(lambda: len(mgr.claimer._steps(
            mgr.specs['debian'])._committer._queue) == 3,
            what='three claims queued behind the first batch')
        gate.set()
        leader.result(timeout=10)
        assert sorted(batches[1]) == ['other', 'twin', 'twin']
        other_result = other.result(timeout=10)
        answers = []
        for future in same:
            try:
                answers.append(future.result(timeout=10))
            except exception.ClaimInProgress:
                pass
    assert other_result['claim_key'] == 'other'
    assert answers and all(a == answers[0] for a in answers)
    assert receipt('twin').state == models.R_LEASED
    assert counts() == {}
