"""Claims into another project at the edges, against the simulator: a
create whose answer is lost, an accept whose answer comes too late, a
Cinder user that cannot see another project's volumes.  Whatever fails,
one key gets one volume, and no volume is left that nobody knows.

The checks are those of ``claim_checks``: what Cinder and the tables
hold."""

import datetime

import pytest
import sqlalchemy as sa

from volume_pool import cinder as vp_cinder
from volume_pool import claim_request
from volume_pool import exception
from volume_pool.db import api as db_api
from volume_pool.db import claims as db_claims
from volume_pool.db import holds as db_holds
from volume_pool.db import models
from volume_pool.fixtures import cinder_handles
from volume_pool.fixtures import waiting
from volume_pool.tests.unit.claim_checks import assert_settled
from volume_pool.tests.unit.claim_checks import in_thread
from volume_pool.tests.unit.claim_checks import past_the_late_window
from volume_pool.tests.unit.claim_checks import receipt
from volume_pool.tests.unit.claim_checks import rows_by_volume
from volume_pool.tests.unit.manager_steps import call
from volume_pool.tests.unit.manager_steps import counts
from volume_pool.tests.unit.manager_steps import CTXT
from volume_pool.tests.unit.manager_steps import fill
from volume_pool.tests.unit.manager_steps import held_past_its_deadline

PROJECT = '0123456789abcdef0123456789abcdef'
ACCEPT = '/accept$'
# One transfer by id (its delete), not its accept.
TRANSFER_BY_ID = r'^/(os-volume-transfer|volume-transfers)/[^/]+$'


@pytest.fixture(autouse=True)
def receiving_project_allowed(conf):
    conf.set_override('claim_projects', [PROJECT], group='volume_pool')


def owner(simulator, volume_id):
    return simulator.get_volume(volume_id)['os-vol-tenant-attr:tenant_id']


def volumes_of_the_pool(simulator, mgr):
    """Every volume made from the pool's snapshot, in any project."""
    snapshot = mgr.specs['debian'].snapshot_id
    return [v for v in simulator.list_volumes()
            if v['snapshot_id'] == snapshot]


def test_a_miss_into_a_project_whose_create_answer_is_lost_leaks_nothing(
        make_manager, simulator):
    mgr = make_manager({'debian': 1})  # empty: the claim misses
    simulator.inject_fault(method='POST', path=r'^/volumes$',
                           lose_answer=True)
    with pytest.raises(exception.CinderUnavailable):
        call(mgr.claim, 'debian', name='vnf-m', claim_key='m',
             project_id=PROJECT)
    [made] = volumes_of_the_pool(simulator, mgr)
    # Made where sync finds it: in the pool's project, with its tags.
    assert owner(simulator, made['id']) == simulator.project_id
    assert made['metadata'][vp_cinder.TAG_POOL] == 'debian'
    with pytest.raises(exception.ClaimInProgress):
        call(mgr.claim, 'debian', name='vnf-m', claim_key='m',
             project_id=PROJECT)
    past_the_late_window(mgr)
    mgr.sync(CTXT)
    assert_settled(mgr, simulator)
    again = call(mgr.claim, 'debian', name='vnf-m', claim_key='m',
                 project_id=PROJECT)
    assert again['volume_id'] == made['id']
    assert owner(simulator, made['id']) == PROJECT
    assert len(volumes_of_the_pool(simulator, mgr)) == 1


def test_a_miss_into_a_project_hands_over_a_tagged_volume(make_manager,
                                                          simulator):
    mgr = make_manager({'debian': 0})
    result = call(mgr.claim, 'debian', name='vnf-c', claim_key='c',
                  project_id=PROJECT)
    assert (result['source'], result['project_id']) == ('created', PROJECT)
    volume = simulator.get_volume(result['volume_id'])
    assert volume['os-vol-tenant-attr:tenant_id'] == PROJECT
    assert (volume['name'], volume['metadata']) == ('vnf-c', {})
    assert receipt('c').state == models.R_USED
    assert receipt('c').volume_id == result['volume_id']
    assert rows_by_volume() == {}


def _claim_with_its_accept_held(mgr, simulator, key, **kwargs):
    """Fill the pool's one place and claim it into PROJECT with ``key`` in
    a thread, its transfer's accept held by Cinder until released:
    returns the volume, the held accept and the claim's future."""
    fill(mgr)
    [volume_id] = rows_by_volume()
    accept = simulator.inject_fault(status=None, method='POST', path=ACCEPT,
                                    hold=True)
    claiming = in_thread(call, mgr.claim, 'debian', name='vnf-%s' % key,
                         claim_key=key, project_id=PROJECT, **kwargs)
    accept.wait_arrived()
    return volume_id, accept, claiming


def test_an_accept_answered_past_the_deadline_is_recorded_first(
        make_manager, simulator):
    """Cinder accepted the transfer: the volume is the project's whatever
    happens next, so the receipt says ``used`` and the claim answers --
    even for a Cinder user that cannot see the volume any more."""
    simulator.admin = False
    mgr = make_manager({'debian': 1})
    volume_id, accept, claiming = _claim_with_its_accept_held(
        mgr, simulator, 'a', time_left=1.5)
    waiting.wait_for(held_past_its_deadline, timeout=15,
                     what="the claim's deadline passed")
    accept.release()
    answer = claiming.result(timeout=15)
    assert answer['volume_id'] == volume_id
    assert receipt('a').state == models.R_USED
    past_the_late_window(mgr)
    mgr.sync(CTXT)
    assert receipt('a').state == models.R_USED
    again = call(mgr.claim, 'debian', name='vnf-a', claim_key='a',
                 project_id=PROJECT)
    assert again == answer
    assert owner(simulator, volume_id) == PROJECT
    assert len(volumes_of_the_pool(simulator, mgr)) == 1


def _offered_by_a_dead_manager(mgr, simulator):
    """Key ``k``'s claim into PROJECT, taken by a manager that died once
    it had renamed the volume and offered its transfer: returns the row,
    the offer and the receiving project's client, to accept it with."""
    [row], _done = db_claims.commit_steps(
        'debian', None, mgr.specs['debian'].snapshot_id, 'dead-manager',
        [db_claims.Take(claim_id='c1', hold=60, claim_key='k',
                        fingerprint=claim_request.fingerprint(
                            mgr.specs['debian'], 'vnf-k', True, PROJECT),
                        target_project=PROJECT)])
    giver = cinder_handles.noauth_cinder_client(simulator.endpoint,
                                                simulator.project_id)
    receiver = cinder_handles.noauth_cinder_client(simulator.endpoint,
                                                   PROJECT)
    giver.volumes.update(row.volume_id, name='vnf-k', metadata={})
    return row, giver.transfers.create(row.volume_id), receiver


@pytest.mark.parametrize('admin', [True, False], ids=['admin', 'member'])
def test_sync_keeps_the_receipt_of_a_volume_handed_to_its_project(
        make_manager, simulator, admin):
    """A manager died after Cinder accepted its transfer: sync lets the
    row go and the receipt follows the volume to its project, ``used``,
    whether or not the pool's Cinder user can still see the volume."""
    simulator.admin = admin
    mgr = make_manager({'debian': 1})
    fill(mgr)
    row, offer, receiver = _offered_by_a_dead_manager(mgr, simulator)
    receiver.transfers.accept(offer.id, offer.auth_key)
    mgr.sync(CTXT)
    kept = receipt('k')
    assert (kept.state, kept.volume_id) == (models.R_USED, row.volume_id)
    assert rows_by_volume() == {}
    again = call(mgr.claim, 'debian', name='vnf-k', claim_key='k',
                 project_id=PROJECT)
    assert again['volume_id'] == row.volume_id
    assert len(volumes_of_the_pool(simulator, mgr)) == 1



def test_a_miss_into_a_project_waits_for_its_volume_then_hands_it_over(
        make_manager, simulator):
    """The transfer needs an ``available`` volume: the claim reads the
    new one until Cinder has made it; its receipt names the volume from
    the create's answer on."""
    now = [0.0]
    simulator.clock = lambda: now[0]
    simulator.creation_delay = 30.0
    mgr = make_manager({'debian': 0})
    reads = ('GET', '/volumes/{id}')
    claiming = in_thread(call, mgr.claim, 'debian', name='vnf-w',
                         claim_key='w', project_id=PROJECT)
    waiting.wait_for(lambda: simulator.request_counts[reads] >= 1,
                     what='the claim reading its new volume')
    [made] = volumes_of_the_pool(simulator, mgr)
    assert made['status'] == 'creating'
    assert receipt('w').volume_id == made['id']
    assert owner(simulator, made['id']) == simulator.project_id
    now[0] += 30.0
    answer = claiming.result(timeout=15)
    assert (answer['volume_id'], answer['source']) == (made['id'],
                                                       'created')
    assert owner(simulator, made['id']) == PROJECT
    assert receipt('w').state == models.R_USED


def test_a_miss_into_a_project_out_of_time_leaves_its_volume_to_the_pool(
        make_manager, simulator):
    now = [0.0]
    simulator.clock = lambda: now[0]
    simulator.creation_delay = 30.0
    mgr = make_manager({'debian': 1})  # empty: the claim misses
    with pytest.raises(exception.ClaimTimedOut):
        call(mgr.claim, 'debian', name='vnf-o', claim_key='o',
             project_id=PROJECT, time_left=1.5)
    [made] = volumes_of_the_pool(simulator, mgr)
    assert owner(simulator, made['id']) == simulator.project_id
    assert receipt('o') is None
    now[0] += 30.0
    mgr.sync(CTXT)
    assert_settled(mgr, simulator)
    assert list(rows_by_volume()) == [made['id']]


def test_a_refused_accept_gives_the_volume_back_at_once_for_a_member(
        make_manager, simulator):
    """A Cinder user with the member role: the receiving project does not
    find the volume, which tells that it did not get it -- the volume is
    back in its pool at once, and the key is free for a retry."""
    simulator.admin = False
    mgr = make_manager({'debian': 1})
    fill(mgr)
    [volume_id] = rows_by_volume()
    simulator.inject_fault(status=400, method='POST', path=ACCEPT)
    with pytest.raises(exception.VolumeTransferFailed):
        call(mgr.claim, 'debian', name='vnf-r', claim_key='r',
             project_id=PROJECT)
    assert_settled(mgr, simulator)
    assert receipt('r') is None
    again = call(mgr.claim, 'debian', name='vnf-r', claim_key='r',
                 project_id=PROJECT)
    assert again['volume_id'] == volume_id
    assert owner(simulator, volume_id) == PROJECT


def test_a_transfer_that_cannot_be_withdrawn_waits_out_the_late_window(
        make_manager, simulator):
    """The accept failed and so did the delete of the transfer: whether
    the offer still stands is unknown, so the volume waits out the late
    window; sync then withdraws the transfer and the volume is back."""
    mgr = make_manager({'debian': 1})
    fill(mgr)
    [volume_id] = rows_by_volume()
    simulator.inject_fault(status=400, method='POST', path=ACCEPT)
    simulator.inject_fault(status=500, method='DELETE', path=TRANSFER_BY_ID)
    with pytest.raises(exception.VolumeTransferFailed):
        call(mgr.claim, 'debian', name='vnf-d', claim_key='d',
             project_id=PROJECT)
    assert counts() == {models.UNCERTAIN: 1}
    assert simulator.get_volume(volume_id)['status'] == 'awaiting-transfer'
    past_the_late_window(mgr)
    mgr.sync(CTXT)
    assert_settled(mgr, simulator)
    assert owner(simulator, volume_id) == simulator.project_id
    assert receipt('d') is None


def _released_then_accepted(mgr, simulator):
    """Key ``k``'s claim into PROJECT, offered by a manager that died:
    its caller releases the key (the release waits on the transfer), and
    then the accept the claim sent lands.  Returns the claim's row."""
    fill(mgr)
    row, offer, receiver = _offered_by_a_dead_manager(mgr, simulator)
    with pytest.raises(exception.ClaimInProgress):
        call(mgr.release, 'k')
    receiver.transfers.accept(offer.id, offer.auth_key)
    return row


@pytest.mark.parametrize('admin', [True, False], ids=['admin', 'member'])
def test_a_transfer_accepted_after_its_release_comes_back_to_the_pool(
        make_manager, simulator, admin):
    """The caller gave up on a claim into a project and released its key
    while the claim's transfer was offered; the accept the claim sent
    lands after.  Nobody in the project was told of the volume, so sync
    transfers it back and returns it to its pool: the caller that gave up
    leaves nothing behind, and the key stays released."""
    simulator.admin = admin
    mgr = make_manager({'debian': 1})
    row = _released_then_accepted(mgr, simulator)
    assert owner(simulator, row.volume_id) == PROJECT
    past_the_late_window(mgr)
    mgr.sync(CTXT)
    assert owner(simulator, row.volume_id) == simulator.project_id
    assert_settled(mgr, simulator)
    assert receipt('k').state == models.R_RELEASED
    assert call(mgr.release, 'k')['state'] == models.R_RELEASED
    with pytest.raises(exception.ClaimReleased):
        call(mgr.claim, 'debian', name='vnf-k', project_id=PROJECT,
             claim_key='k')
    assert len(volumes_of_the_pool(simulator, mgr)) == 1


def test_a_claim_whose_accept_lands_after_its_release_gives_it_back_itself(
        make_manager, simulator):
    """The claim itself sees its accept land after the release stopped it:
    it brings the volume back at once, without waiting for sync."""
    mgr = make_manager({'debian': 1})
    volume_id, accept, claiming = _claim_with_its_accept_held(
        mgr, simulator, 'g')
    with pytest.raises(exception.ClaimInProgress):
        call(mgr.release, 'g')
    assert receipt('g').state == models.R_RELEASING
    accept.release()
    with pytest.raises(exception.ClaimTimedOut):
        claiming.result(timeout=15)
    assert owner(simulator, volume_id) == simulator.project_id
    assert_settled(mgr, simulator)
    assert receipt('g').state == models.R_RELEASED


def _answered_past_its_deadline(mgr, simulator, key):
    """A claim into PROJECT whose accept Cinder answers only after the
    claim's deadline: recorded ``used`` and answered, to nobody in
    time.  Returns the answer."""
    volume_id, accept, claiming = _claim_with_its_accept_held(
        mgr, simulator, key, time_left=1.5)
    waiting.wait_for(held_past_its_deadline, timeout=15,
                     what="the claim's deadline passed")
    accept.release()
    answer = claiming.result(timeout=15)
    assert (answer['volume_id'], receipt(key).state) == (volume_id,
                                                         models.R_USED)
    return answer


def test_a_claim_answered_past_its_deadline_comes_back_on_release(
        make_manager, simulator):
    """The caller's time ran out before the accept's answer came: the
    client gave up and releases the key, and the volume comes back from
    the project, where nobody was told of it."""
    mgr = make_manager({'debian': 1})
    answer = _answered_past_its_deadline(mgr, simulator, 'late')
    assert owner(simulator, answer['volume_id']) == PROJECT
    assert call(mgr.release, 'late')['state'] == models.R_RELEASED
    assert owner(simulator, answer['volume_id']) == simulator.project_id
    assert_settled(mgr, simulator)
    with pytest.raises(exception.ClaimReleased):
        call(mgr.claim, 'debian', name='vnf-late', claim_key='late',
             project_id=PROJECT)


def _holds_for(monkeypatch, answers):
    """``still_holds`` answers from the list, then True: a settler that
    loses its hold between the take-back's steps."""
    real = db_holds.still_holds

    def scripted(row_id, claim_id):
        return answers.pop(0) if answers else real(row_id, claim_id)
    monkeypatch.setattr(db_holds, 'still_holds', scripted)


def test_a_take_back_starts_only_while_its_row_is_held(
        make_manager, simulator, monkeypatch):
    mgr = make_manager({'debian': 1})
    answer = _answered_past_its_deadline(mgr, simulator, 'late')
    _holds_for(monkeypatch, [False])
    with pytest.raises(exception.ClaimInProgress):
        call(mgr.release, 'late')
    volume = simulator.get_volume(answer['volume_id'])
    assert (volume['os-vol-tenant-attr:tenant_id'], volume['status']) == (
        PROJECT, 'available')  # nothing offered
    assert receipt('late').state == models.R_RELEASING


def test_a_take_back_accepts_only_while_its_row_is_held(
        make_manager, simulator, monkeypatch):
    """The hold is lost between the offer and its accept: the offer is
    left pending, and whoever holds the row next withdraws it (its key
    is lost) and brings the volume back."""
    mgr = make_manager({'debian': 1})
    answer = _answered_past_its_deadline(mgr, simulator, 'late')
    _holds_for(monkeypatch, [True, False])
    with pytest.raises(exception.ClaimInProgress):
        call(mgr.release, 'late')
    assert simulator.get_volume(answer['volume_id'])['status'] == (
        'awaiting-transfer')
    assert owner(simulator, answer['volume_id']) == PROJECT
    _hold_runs_out(answer['volume_id'])
    past_the_late_window(mgr)
    mgr.sync(CTXT)
    assert owner(simulator, answer['volume_id']) == simulator.project_id
    assert_settled(mgr, simulator)
    assert receipt('late').state == models.R_RELEASED


def test_a_volume_attached_in_the_project_stays_though_released(
        make_manager, simulator):
    mgr = make_manager({'debian': 1})
    answer = _answered_past_its_deadline(mgr, simulator, 'late')
    simulator.attach_volume(answer['volume_id'])
    with pytest.raises(exception.ClaimNotReleasable) as caught:
        call(mgr.release, 'late')
    assert PROJECT in str(caught.value)
    assert receipt('late').state == models.R_USED
    assert owner(simulator, answer['volume_id']) == PROJECT
    assert rows_by_volume() == {}
    # Refused for good: its receipt no longer says it reached nobody.
    simulator.set_volume_status(answer['volume_id'], 'available')
    with pytest.raises(exception.ClaimNotReleasable):
        call(mgr.release, 'late')
    assert owner(simulator, answer['volume_id']) == PROJECT


def test_a_take_back_leaves_a_transfer_someone_in_the_project_made(
        make_manager, simulator):
    """The volume waits ``awaiting-transfer`` in the project under an
    offer that is not the pool's: someone there passes it on, and it
    stays."""
    mgr = make_manager({'debian': 1})
    row = _released_then_accepted(mgr, simulator)
    theirs = cinder_handles.noauth_cinder_client(
        simulator.endpoint, PROJECT).transfers.create(row.volume_id,
                                                      name='to-a-friend')
    past_the_late_window(mgr)
    mgr.sync(CTXT)
    assert owner(simulator, row.volume_id) == PROJECT
    assert simulator.get_volume(row.volume_id)['status'] == (
        'awaiting-transfer')
    assert row.volume_id not in rows_by_volume()
    cinder_handles.noauth_cinder_client(
        simulator.endpoint, PROJECT).transfers.get(theirs.id)  # still there


def test_a_release_between_syncs_read_and_its_let_go_is_not_lost(
        make_manager, simulator, monkeypatch):
    """Sync reads the receipt of a claim whose accept landed (still
    ``claiming``: the volume is the project's) and is about to let the
    row go as ``used`` when the caller's release stops the claim.  The
    let-go changes nothing then, and the next sync brings the volume
    back: a release never ends in a volume left for nobody."""
    mgr = make_manager({'debian': 1})
    fill(mgr)
    row, offer, receiver = _offered_by_a_dead_manager(mgr, simulator)
    receiver.transfers.accept(offer.id, offer.auth_key)
    real_let_go = db_holds.let_go

    def release_first(*args, **kwargs):
        with pytest.raises(exception.ClaimInProgress):
            call(mgr.release, 'k')
        monkeypatch.setattr(db_holds, 'let_go', real_let_go)
        return real_let_go(*args, **kwargs)
    monkeypatch.setattr(db_holds, 'let_go', release_first)
    past_the_late_window(mgr)
    mgr.sync(CTXT)
    assert receipt('k').state == models.R_RELEASING
    assert rows_by_volume()[row.volume_id].status == models.CLAIMING
    assert owner(simulator, row.volume_id) == PROJECT
    mgr.sync(CTXT)
    assert owner(simulator, row.volume_id) == simulator.project_id
    assert_settled(mgr, simulator)
    assert receipt('k').state == models.R_RELEASED


def test_a_take_back_that_cannot_act_as_the_project_keeps_its_hold(
        make_manager, simulator, monkeypatch):
    """``[cinder]`` cannot be scoped to the receiving project: the volume
    stays held, its receipt ``releasing``, and sync tries again."""
    mgr = make_manager({'debian': 1})
    row = _released_then_accepted(mgr, simulator)
    handle = mgr.syncer._cinder
    scoped = handle.as_project

    def unscoped(project_id):
        raise exception.ConfigError(reason='[cinder] cannot be scoped')
    monkeypatch.setattr(handle, 'as_project', unscoped)
    past_the_late_window(mgr)
    report = mgr.syncer.run(mgr.specs, mgr.cluster)
    assert report.errors == 1
    assert owner(simulator, row.volume_id) == PROJECT
    assert rows_by_volume()[row.volume_id].status == models.CLAIMING
    assert receipt('k').state == models.R_RELEASING
    monkeypatch.setattr(handle, 'as_project', scoped)
    _hold_runs_out(row.volume_id)
    mgr.sync(CTXT)
    assert owner(simulator, row.volume_id) == simulator.project_id
    assert receipt('k').state == models.R_RELEASED


def test_a_volume_the_project_attached_stays_with_the_project(
        make_manager, simulator):
    """Someone in the receiving project attached the volume before sync
    could bring it back: it is theirs now, and stays."""
    mgr = make_manager({'debian': 1})
    row = _released_then_accepted(mgr, simulator)
    simulator.attach_volume(row.volume_id)
    past_the_late_window(mgr)
    mgr.sync(CTXT)
    assert owner(simulator, row.volume_id) == PROJECT
    assert simulator.get_volume(row.volume_id)['status'] == 'in-use'
    assert row.volume_id not in rows_by_volume()
    assert receipt('k').volume_id == row.volume_id


def _hold_runs_out(volume_id):
    """Move the deadline of sync's own hold on the volume's row into the
    past (the database's clock is real): the next sync takes it again."""
    table = models.PoolVolume
    with db_api.writer() as session:
        assert session.execute(
            sa.update(table).where(table.volume_id == volume_id)
            .values(claim_deadline=datetime.datetime(2000, 1, 1))
        ).rowcount == 1


def test_a_take_back_whose_accept_failed_is_offered_again(make_manager,
                                                           simulator):
    """The pool's accept of the volume coming back failed: the volume
    waits ``awaiting-transfer`` in the project, still held; the next
    sync withdraws that offer (its key is lost), offers again and brings
    the volume home."""
    mgr = make_manager({'debian': 1})
    row = _released_then_accepted(mgr, simulator)
    past_the_late_window(mgr)
    simulator.inject_fault(status=500, method='POST', path=ACCEPT)
    mgr.sync(CTXT)
    assert simulator.get_volume(row.volume_id)['status'] == (
        'awaiting-transfer')
    assert owner(simulator, row.volume_id) == PROJECT
    assert rows_by_volume()[row.volume_id].status == models.CLAIMING
    _hold_runs_out(row.volume_id)
    mgr.sync(CTXT)
    assert owner(simulator, row.volume_id) == simulator.project_id
    assert_settled(mgr, simulator)
    assert receipt('k').state == models.R_RELEASED
