"""The chaos soak's claimer: what it sends, and what it writes down for
the checker, from a scripted client."""

import random

import pytest

from volume_pool.tests.chaos import claimer as vp_claimer
from volume_pool.tests.chaos import record as rec


def named(name):
    """An error class known by name only, as the claimer sees them."""
    return type(name, (Exception,), {})


class ScriptedAPI:
    """Answers claim/confirm/release from scripts: an exception (class
    or instance) is raised, anything else returned; the last entry
    repeats."""

    def __init__(self, claim=(), confirm=(), release=()):
        self.scripts = {'claim': list(claim) or [{'volume_id': 'v1'}],
                        'confirm': list(confirm) or [{}],
                        'release': list(release) or [{}]}
        self.calls = []
        self.projects = []

    def _next(self, method, key):
        self.calls.append((method, key))
        script = self.scripts[method]
        step = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(step, type):
            raise step('scripted %s' % step.__name__)
        if isinstance(step, Exception):
            raise step
        return step

    def claim(self, ctxt, pool, name=None, cluster=None, claim_key=None,
              timeout=None, project_id=None):
        self.projects.append(project_id)
        return self._next('claim', claim_key)

    def confirm(self, ctxt, claim_key, cluster=None):
        return self._next('confirm', claim_key)

    def release(self, ctxt, claim_key, cluster=None):
        return self._next('release', claim_key)


def claim_once(api, **kwargs):
    kwargs.setdefault('release_share', 0.0)
    kwargs.setdefault('abandon_share', 0.0)
    claimer = vp_claimer.Claimer(api, ['p1'], 'chaos', 1, retry_delay=(0, 0),
                                 hold=0, **kwargs)
    return claimer, claimer.claim_one(random.Random(1), 'p1')


def test_a_timed_out_claim_is_asked_again_with_its_key():
    api = ScriptedAPI(claim=[named('ClaimTimedOut'),
                             named('ClaimInProgress_Remote'),
                             {'volume_id': 'v7'}])
    claimer, record = claim_once(api, later_retries=2)
    assert [m for m, _ in api.calls] == ['claim'] * 3 + ['confirm']
    assert {k for _, k in api.calls} == {record.key}
    assert record.errors == ['ClaimTimedOut', 'ClaimInProgress']
    assert (record.attempts, record.volume_ids, record.outcome) == (
        3, ['v7'], rec.CONFIRMED)
    assert claimer.first_messages['ClaimTimedOut'] == 'scripted ClaimTimedOut'


def test_a_key_released_on_giving_up_is_an_expected_end():
    """The client released the key of the claim it gave up on: the retry
    is told ClaimReleased, takes nothing and is not tried again."""
    api = ScriptedAPI(claim=[named('ClaimTimedOut'),
                             named('ClaimReleased_Remote')])
    _, record = claim_once(api, later_retries=3)
    assert record.errors == ['ClaimTimedOut', 'GaveUp:ClaimReleased']
    assert (record.attempts, record.volume_ids) == (2, [])
    assert 'GaveUp:ClaimReleased' in vp_claimer.EXPECTED_ERRORS
    # Without a give-up first, a ClaimReleased stays a finding.
    _, record = claim_once(ScriptedAPI(claim=[named('ClaimReleased')]))
    assert record.errors == ['ClaimReleased']
    assert 'ClaimReleased' not in vp_claimer.EXPECTED_ERRORS


def test_retries_are_bounded_and_other_errors_not_retried():
    _, record = claim_once(ScriptedAPI(claim=[named('ClaimTimedOut')]))
    assert (record.attempts, record.outcome) == (2, rec.UNANSWERED)
    _, record = claim_once(ScriptedAPI(claim=[TypeError]))
    assert (record.attempts, record.errors) == (1, ['TypeError'])


@pytest.mark.parametrize('shares, script, outcome, calls', [
    ({}, [named('MessagingTimeout'), {}], rec.CONFIRMED, 2),
    ({}, [named('ClaimLeaseExpired')], rec.ABANDONED, 1),
    ({}, [named('MessagingTimeout')], rec.UNCERTAIN, 3),
    ({'release_share': 1.0}, [{}], rec.RELEASED, 1),
    ({'abandon_share': 1.0}, [{}], rec.ABANDONED, 0),
])
def test_what_becomes_of_a_claimed_volume(shares, script, outcome, calls):
    api = ScriptedAPI(confirm=script, release=script)
    _, record = claim_once(api, **shares)
    assert record.outcome == outcome
    assert len(api.calls) - 1 == calls
    assert (record.released_at is not None) == (outcome == rec.RELEASED)


def test_a_claimer_failure_is_recorded_not_raised():
    _, record = claim_once(ScriptedAPI(claim=[{'name': 'no volume id'}]))
    assert record.outcome == rec.UNANSWERED
    assert record.errors == ['claimer: KeyError']


class TimedOutWithKey(Exception):
    """The client's ClaimTimedOut: it names the key the client made."""

    def __init__(self, claim_key):
        super().__init__('no answer about %s' % claim_key)
        self.kwargs = {'claim_key': claim_key}


TimedOutWithKey.__name__ = 'ClaimTimedOut'


def test_an_unkeyed_claim_learns_its_key_and_keeps_the_volume():
    api = ScriptedAPI(claim=[{'volume_id': 'v7', 'claim_key': 'made-1',
                              'lease_expires_at': None}])
    _, record = claim_once(api, unkeyed_share=1.0)
    assert api.calls == [('claim', None)]  # no key sent, no confirm
    assert (record.key, record.keyed, record.plan, record.outcome) == (
        'made-1', False, rec.KEEP, rec.KEPT)
    assert record.lease_until is None


def test_an_unkeyed_claim_that_timed_out_is_not_retried():
    api = ScriptedAPI(claim=[TimedOutWithKey('made-2')])
    _, record = claim_once(api, unkeyed_share=1.0, later_retries=2)
    assert (record.key, record.attempts, record.outcome) == (
        'made-2', 1, rec.UNANSWERED)
    assert record.errors == ['ClaimTimedOut']


def test_a_claim_into_the_other_project_is_kept():
    """Answered in time, it is the project's: never released, whatever
    the release share."""
    api = ScriptedAPI(claim=[{'volume_id': 'v7', 'project_id': 'other'}])
    _, record = claim_once(api, project='other', project_share=1.0,
                           release_share=1.0)
    assert api.projects == ['other'] and len(api.calls) == 1
    assert (record.project, record.outcome, record.errors) == (
        'other', rec.KEPT, [])


def test_an_answer_from_the_wrong_project_is_an_error():
    api = ScriptedAPI(claim=[{'volume_id': 'v7'}])
    _, record = claim_once(api, project='other', project_share=1.0)
    assert record.errors == ['AnswerOfAnotherProject']


def test_the_lease_is_read_from_the_answer():
    api = ScriptedAPI(claim=[{'volume_id': 'v7', 'lease_expires_at':
                              '2026-01-02T03:04:05.250000Z'}])
    _, record = claim_once(api)
    assert record.lease_until == 1767323045.25


def test_an_attached_claim_is_not_confirmed():
    attached = []
    api = ScriptedAPI()
    _, record = claim_once(
        api, attach_share=1.0,
        attach=lambda volume_id, timeout: attached.append(volume_id))
    assert attached == ['v1'] and record.outcome == rec.ATTACHED
    assert [m for m, _ in api.calls] == ['claim']


def test_a_failed_attach_confirms_instead():
    def attach(volume_id, timeout):
        raise OSError('cinder-api stopped')

    api = ScriptedAPI()
    claimer, record = claim_once(api, attach_share=1.0, attach=attach)
    assert (record.plan, record.outcome) == (rec.ATTACH, rec.CONFIRMED)
    assert [m for m, _ in api.calls] == ['claim', 'confirm']
    assert record.errors == [vp_claimer.ATTACH_FAILED]
    assert 'cinder-api stopped' in claimer.first_messages['AttachFailed']


def test_no_attach_close_to_the_lease_end():
    attached = []
    api = ScriptedAPI(claim=[{'volume_id': 'v7', 'lease_expires_at':
                              '2000-01-01T00:00:00Z'}])
    _, record = claim_once(
        api, attach_share=1.0,
        attach=lambda volume_id, timeout: attached.append(volume_id))
    assert attached == [] and record.outcome == rec.CONFIRMED
    assert [m for m, _ in api.calls] == ['claim', 'confirm']
