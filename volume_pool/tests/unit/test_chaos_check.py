"""The chaos soak's invariant checker, on hand-made end states: a clean
run passes, and each violation it must catch is built and caught."""

import dataclasses

import pytest

from volume_pool.tests.chaos import check
from volume_pool.tests.chaos import record as rec

LEASE = 20.0


def volume(volume_id, pool=None, status='available', **metadata):
    if pool:
        metadata[check.TAG_POOL] = pool
    return {'id': volume_id, 'name': volume_id, 'status': status,
            'metadata': metadata}


def row(volume_id, pool='p1', status='available'):
    return {'volume_id': volume_id, 'pool': pool, 'status': status}


def receipt(key, state, volume_id, pool='p1'):
    return {'claim_key': key, 'state': state, 'volume_id': volume_id,
            'pool': pool}


def key(name, plan, outcome, answers=(), sent_at=0.0, **kwargs):
    return rec.KeyRecord(key=name, pool='p1', plan=plan, sent_at=sent_at,
                         answers=list(answers), outcome=outcome,
                         attempts=max(1, len(answers)), **kwargs)


class State:
    """A settled run that keeps the invariant; tests break one thing."""

    def __init__(self):
        self.pools = {'p1': 3}
        self.golden = {'golden'}
        self.volumes = [volume('golden'),
                        volume('v1', 'p1'), volume('v2', 'p1'),
                        volume('v5', 'p1'),    # returned by k4's lease
                        volume('v3'),          # k1's
                        volume('v4')]          # k2's, then k3's
        self.rows = [row('v1'), row('v2'), row('v5')]
        self.records = [
            key('k1', rec.CONFIRM, rec.CONFIRMED, [('v3', 1.0)]),
            key('k2', rec.RELEASE, rec.RELEASED, [('v4', 1.0)],
                released_at=2.0),
            key('k3', rec.CONFIRM, rec.CONFIRMED, [('v4', 5.0)],
                sent_at=4.0),
            key('k4', rec.ABANDON, rec.ABANDONED, [('v5', 1.0)]),
            key('k5', rec.CONFIRM, rec.UNANSWERED,
                errors=['ClaimTimedOut', 'ClaimTimedOut']),
            # Its answer was lost; the lease brought the volume back.
            key('k6', rec.CONFIRM, rec.UNANSWERED, errors=['ClaimTimedOut']),
        ]
        self.receipts = [receipt('k1', 'used', 'v3'),
                         receipt('k2', 'released', 'v4'),
                         receipt('k3', 'used', 'v4'),
                         receipt('k4', 'returned', 'v5'),
                         receipt('k6', 'returned', 'v1')]

    def record(self, name):
        return next(r for r in self.records if r.key == name)

    def check(self, receipts=True):
        return check.check(self.records, self.volumes, self.rows,
                           self.receipts if receipts else None,
                           pools=self.pools, golden=self.golden, lease=LEASE)


@pytest.fixture
def state():
    return State()


def kinds(report):
    return sorted({v.kind for v in report.violations})


def test_a_settled_run_keeps_the_invariant(state):
    report = state.check()
    assert report.violations == []
    assert report.ok and report.notes == []
    figures = report.figures
    assert figures['volumes'] == {'golden': 1, 'pool': 3, 'held': 2,
                                  'total': 6}
    assert figures['pools'] == {'p1': {'ready': 3, 'target': 3}}
    assert figures['outcomes'] == {'unanswered': 2, 'confirmed': 2,
                                   'released': 1, 'abandoned': 1,
                                   'uncertain': 0, 'attached': 0,
                                   'kept': 0}
    assert figures['answered'] == 4 and figures['keys'] == 6
    assert figures['errors'] == {'ClaimTimedOut': 3}
    assert figures['receipts'] == {'used': 2, 'released': 1, 'returned': 2}


def test_a_key_with_two_volumes(state):
    state.record('k1').answers.append(('v9', 3.0))
    report = state.check()
    assert kinds(report) == [check.DUPLICATE]
    assert 'k1 got 2 volumes' in report.violations[0].message


def test_a_confirmed_volume_handed_out_again(state):
    state.records.append(key('k7', rec.CONFIRM, rec.UNCERTAIN,
                             [('v3', 30.0)]))
    state.receipts.append(receipt('k7', 'used', 'v3'))
    report = state.check()
    assert kinds(report) == [check.DUPLICATE]
    messages = [v.message for v in report.violations]
    assert any('went to key k1 (confirmed) and then to key k7' in m
               for m in messages)
    assert any('held by 2 keys' in m for m in messages)


def test_a_volume_handed_out_before_its_release(state):
    state.record('k2').released_at = 10.0
    report = state.check()
    assert kinds(report) == [check.DUPLICATE]
    assert 'went to key k2 (released) and then to key k3' in (
        report.violations[0].message)


@pytest.mark.parametrize('answered_at, ok', [(LEASE + 1.0, True),
                                             (LEASE / 2, False)])
def test_an_abandoned_volume_goes_on_only_after_its_lease(state,
                                                          answered_at, ok):
    state.records.append(key('k7', rec.CONFIRM, rec.CONFIRMED,
                             [('v5', answered_at)], sent_at=answered_at))
    state.receipts.append(receipt('k7', 'used', 'v5'))
    state.rows = [r for r in state.rows if r['volume_id'] != 'v5']
    state.pools['p1'] = 2
    assert state.check().ok is ok


def test_a_volume_nobody_holds_is_a_leak(state):
    state.volumes.append(volume('v8', name='lost-claim'))
    report = state.check()
    assert kinds(report) == [check.LEAK]
    assert report.figures['volumes']['leak'] == 1


def test_a_tagged_volume_without_a_row_is_a_leak(state):
    state.volumes.append(volume('v8', 'p1', volume_pool_request='r-8'))
    report = state.check()
    assert kinds(report) == [check.LEAK]
    assert 'volume_pool=p1' in report.violations[0].message


def test_a_row_without_its_volume_and_a_pool_below_target(state):
    state.volumes = [v for v in state.volumes if v['id'] != 'v2']
    report = state.check()
    assert kinds(report) == [check.POOL]
    messages = sorted(v.message for v in report.violations)
    assert messages == ['pool p1 has 2 ready volumes, target 3',
                        'row of pool p1 names volume v2 that Cinder does '
                        'not have']


def test_a_pool_above_target(state):
    state.volumes.append(volume('v8', 'p1'))
    state.rows.append(row('v8'))
    assert [v.message for v in state.check().violations] == [
        'pool p1 has 4 ready volumes, target 3']


def test_a_confirmed_volume_given_back_or_gone(state):
    state.receipts[0] = receipt('k1', 'returned', 'v3')
    assert kinds(state.check()) == [check.LEAK, check.LOST]
    state.receipts[0] = receipt('k1', 'used', 'v3')
    state.volumes = [v for v in state.volumes if v['id'] != 'v3']
    report = state.check()
    assert kinds(report) == [check.LOST]
    assert 'v3 held by key k1 is gone' in report.violations[0].message


def test_an_answered_key_without_a_receipt(state):
    state.receipts = [r for r in state.receipts if r['claim_key'] != 'k4']
    report = state.check()
    assert kinds(report) == [check.LOST]
    assert 'k4 was answered volume v5 but has no receipt' in (
        report.violations[0].message)


def test_a_receipt_that_disagrees_with_the_answer(state):
    state.receipts[0] = receipt('k1', 'used', 'v4')
    assert check.DUPLICATE in kinds(state.check())


def test_an_unanswered_key_must_not_hold_a_volume(state):
    state.receipts[-1] = receipt('k6', 'used', 'v1')
    report = state.check()
    assert check.LEAK in kinds(report)
    assert any('k6 was never answered but its receipt holds volume v1'
               in v.message for v in report.violations)


def test_abandoned_or_released_keys_must_not_still_hold(state):
    state.receipts[1] = receipt('k2', 'used', 'v4')
    state.receipts[3] = receipt('k4', 'used', 'v5')
    report = state.check()
    assert check.LEAK in kinds(report)
    assert sum('by the claimer but its receipt is used' in v.message
               for v in report.violations) == 2


def test_half_done_work_is_unsettled(state):
    state.receipts[3] = receipt('k4', 'leased', 'v5')
    state.rows[0] = row('v1', status='claiming')
    report = state.check()
    assert check.UNSETTLED in kinds(report)
    messages = ' | '.join(v.message for v in report.violations)
    assert 'receipt of key k4 still leased' in messages
    assert 'row of volume v1 in pool p1 is claiming' in messages


def test_a_receipt_of_a_key_nobody_sent(state):
    state.receipts.append(receipt('stranger', 'returned', None))
    report = state.check()
    assert kinds(report) == [check.LEAK]
    assert 'unknown key stranger' in report.violations[0].message


def test_an_unlearnt_unkeyed_key_may_leave_a_receipt_holding_nothing(state):
    state.records.append(key(check.UNKEYED_PREFIX + '1', rec.KEEP,
                             rec.UNANSWERED, keyed=False,
                             errors=['CinderUnavailable']))
    state.receipts.append(receipt('made-by-client', 'returned', 'v1'))
    report = state.check()
    assert report.ok and report.notes == [
        'receipt of unknown key made-by-client (returned, volume v1)']
    state.receipts[-1] = receipt('made-by-client', 'used', 'v9')
    state.volumes.append(volume('v9'))
    assert check.LEAK in kinds(state.check())


def test_a_held_volume_renamed_for_another_key(state):
    # A late rename meant for k2's claim landed on k1's volume.
    for record in state.records:
        record.name = 'chaos-' + record.key
    state.volumes[4]['name'] = 'chaos-k1'
    state.volumes[5]['name'] = 'chaos-k3'  # v4: k2's, then k3's
    assert state.check().ok
    state.volumes[4]['name'] = 'chaos-k2'
    report = state.check()
    assert kinds(report) == [check.DUPLICATE]
    assert 'volume v3 of key k1 carries the name key k2 asked for' in (
        report.violations[0].message)
    state.volumes[4]['name'] = 'pool-volume'
    assert kinds(state.check()) == [check.LOST]


def test_a_volume_in_a_pool_and_held(state):
    state.rows.append(row('v3'))
    state.volumes[4] = volume('v3', 'p1')
    state.pools['p1'] = 4
    report = state.check()
    assert kinds(report) == [check.DUPLICATE]
    assert 'v3 is in pool p1 and held by key k1' in (
        report.violations[0].message)


def test_deleting_volumes_and_stale_tags_are_notes(state):
    state.volumes.append(volume('v9', status='deleting'))
    state.volumes[4] = volume('v3', volume_pool_lease='default')
    report = state.check()
    assert report.ok
    assert report.figures['volumes']['deleting'] == 1
    assert len(report.notes) == 2


def test_without_receipts_the_claimer_record_decides(state):
    assert state.check(receipts=False).ok
    state.record('k1').outcome = rec.RELEASED
    state.record('k1').released_at = 2.0
    assert kinds(state.check(receipts=False)) == [check.LEAK]


def test_a_record_survives_a_round_trip(state):
    original = state.record('k2')
    copy = rec.KeyRecord.from_dict(dataclasses.asdict(original))
    assert copy == original
    assert copy.volume_ids == ['v4'] and copy.first_answer_at == 1.0


def test_errors_no_fault_explains(state):
    expected = {'ClaimTimedOut'}
    assert check.check(state.records, state.volumes, state.rows,
                       state.receipts, pools=state.pools,
                       golden=state.golden, lease=LEASE,
                       expected_errors=expected).ok
    state.record('k5').errors += ['TypeError', 'TypeError']
    state.record('k6').errors.append('TypeError')
    report = check.check(state.records, state.volumes, state.rows,
                         state.receipts, pools=state.pools,
                         golden=state.golden, lease=LEASE,
                         expected_errors=expected)
    assert [(v.kind, v.message) for v in report.violations] == [
        (check.ERROR, '2 keys saw TypeError')]


def test_a_run_where_nothing_was_answered(state):
    records = [key('k%d' % n, rec.CONFIRM, rec.UNANSWERED,
                   errors=['ClaimTimedOut']) for n in range(3)]
    report = check.check(records, state.volumes[:4], state.rows, [],
                         pools=state.pools, golden=state.golden)
    assert [v.message for v in report.violations] == [
        'none of the 3 keys was answered']


def hand_v5_again(state, answered_at):
    """k7 gets v5, which k4 had left to its lease."""
    state.records.append(key('k7', rec.CONFIRM, rec.CONFIRMED,
                             [('v5', answered_at)], sent_at=answered_at))
    state.receipts.append(receipt('k7', 'used', 'v5'))
    state.rows = [r for r in state.rows if r['volume_id'] != 'v5']
    state.pools['p1'] = 2


@pytest.mark.parametrize('lease_until', [35.0, None])
def test_a_hand_out_inside_a_lease_that_ended_early(state, lease_until):
    # k4's claim took 15 s: its lease runs from the answer (to 35 s), so
    # v5 going to k7 at 25 s (25 s after k4 sent) is inside k4's lease.
    k4 = state.record('k4')
    k4.answers, k4.lease_until = [('v5', 15.0)], lease_until
    hand_v5_again(state, 25.0)
    report = state.check()
    assert kinds(report) == [check.DUPLICATE]
    assert 'went to key k4 (abandoned) and then to key k7' in (
        report.violations[0].message)


def test_a_hand_out_after_the_answered_lease_is_fine(state):
    k4 = state.record('k4')
    k4.answers, k4.lease_until = [('v5', 15.0)], 35.0
    hand_v5_again(state, 36.0)
    assert state.check().ok


def test_the_answers_lease_end_rules_not_the_configured_length(state):
    # The answer said 40 s although 15 + 20 is 35: its word holds.
    k4 = state.record('k4')
    k4.answers, k4.lease_until = [('v5', 15.0)], 40.0
    hand_v5_again(state, 37.0)
    assert kinds(state.check()) == [check.DUPLICATE]


def test_an_answer_whose_lease_had_already_ended(state):
    k4 = state.record('k4')
    k4.answers, k4.lease_until = [('v5', 30.0)], 20.0
    report = state.check()
    assert kinds(report) == [check.LOST]
    assert 'k4 was answered v5 at 30.0 with a lease that had ended at ' \
        '20.0' in report.violations[0].message
    k4.lease_until = 29.0  # within the clock slack
    assert state.check().ok


def test_an_unkeyed_claim_has_no_lease_to_run_out(state):
    # Claimed without a key, its release never answered: nothing but a
    # release lets the volume go, however long ago it was answered.
    k4 = state.record('k4')
    k4.keyed, k4.outcome, k4.plan = False, rec.UNCERTAIN, rec.RELEASE
    state.receipts[3] = receipt('k4', 'released', 'v5')
    hand_v5_again(state, 100.0)
    report = state.check()
    assert kinds(report) == [check.DUPLICATE]
    assert 'went to key k4 (uncertain)' in report.violations[0].message
    k4.released_at = 50.0
    assert state.check().ok


def test_a_kept_unkeyed_volume_handed_out_again(state):
    state.records.append(key('k7', rec.KEEP, rec.KEPT, [('v3', 30.0)],
                             keyed=False))
    state.receipts.append(receipt('k7', 'used', 'v3'))
    report = state.check()
    assert kinds(report) == [check.DUPLICATE]
    assert any('went to key k1 (confirmed) and then to key k7' in v.message
               for v in report.violations)


@pytest.mark.parametrize('outcome, plan', [(rec.ATTACHED, rec.ATTACH),
                                           (rec.KEPT, rec.KEEP)])
def test_a_volume_kept_for_good_must_stay_used(state, outcome, plan):
    k1 = state.record('k1')
    k1.outcome, k1.plan = outcome, plan
    assert state.check().ok
    state.receipts[0] = receipt('k1', 'returned', 'v3')
    report = state.check()
    assert check.LOST in kinds(report)
    assert any('k1 is %s by the claimer but its receipt is returned'
               % outcome in v.message for v in report.violations)


def test_an_attached_volume_handed_out_again(state):
    k1 = state.record('k1')
    k1.outcome, k1.plan = rec.ATTACHED, rec.ATTACH
    state.records.append(key('k7', rec.CONFIRM, rec.CONFIRMED,
                             [('v3', 300.0)]))
    state.receipts.append(receipt('k7', 'used', 'v3'))
    report = state.check()
    assert kinds(report) == [check.DUPLICATE]


@pytest.mark.parametrize('receipt_state', ['claiming', 'leased',
                                           'releasing', 'returning'])
def test_every_unfinished_receipt_is_unsettled(state, receipt_state):
    state.receipts[0] = receipt('k1', receipt_state, 'v3')
    report = state.check()
    assert check.UNSETTLED in kinds(report)
    assert any('receipt of key k1 still %s' % receipt_state in v.message
               for v in report.violations)


def test_an_unanswered_unkeyed_claim_must_not_hold(state):
    # The caller gave up (the client's key came with the timeout); the
    # manager finished the claim anyway: a volume nobody will use.
    state.records.append(key('k7', rec.KEEP, rec.UNANSWERED, keyed=False,
                             errors=['ClaimTimedOut']))
    state.receipts.append(receipt('k7', 'used', 'v8'))
    state.volumes.append(volume('v8', name='chaos-k7'))
    report = state.check()
    assert check.LEAK in kinds(report)
    assert any('k7 was never answered but its receipt holds volume v8'
               in v.message for v in report.violations)
