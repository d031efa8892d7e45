"""Claims that fail, manager-level, against the Cinder simulator: a
rename that lands too late or a Cinder error undoes the claim, so its
volume is back in the pool, handed to one caller at most, and the pool
is never overfilled.

The checks are those of ``claim_checks``: what Cinder and the tables
hold."""

import pytest

from volume_pool import exception
from volume_pool.db import models
from volume_pool.fixtures import waiting
from volume_pool.tests.unit.claim_checks import all_receipts
from volume_pool.tests.unit.claim_checks import assert_in_pool
from volume_pool.tests.unit.claim_checks import assert_settled
from volume_pool.tests.unit.claim_checks import in_thread
from volume_pool.tests.unit.claim_checks import lease_tags
from volume_pool.tests.unit.claim_checks import ONE_VOLUME
from volume_pool.tests.unit.claim_checks import past_the_late_window
from volume_pool.tests.unit.claim_checks import POST
from volume_pool.tests.unit.claim_checks import receipt
from volume_pool.tests.unit.claim_checks import rows_by_volume
from volume_pool.tests.unit.manager_steps import call
from volume_pool.tests.unit.manager_steps import counts
from volume_pool.tests.unit.manager_steps import CTXT
from volume_pool.tests.unit.manager_steps import fill
from volume_pool.tests.unit.manager_steps import held_past_its_deadline
from volume_pool.tests.unit.manager_steps import tagged

# -- a rename that lands after the claim's time ---------------------------


def test_late_rename_undoes_the_claim_and_never_hands_the_volume_twice(
        make_manager, simulator):
    mgr = make_manager({'debian': 1})
    fill(mgr)
    [volume_id] = rows_by_volume()
    pool_name = rows_by_volume()[volume_id].name
    rename = simulator.inject_fault(status=None, method='PUT',
                                    path=ONE_VOLUME, count=1, hold=True)
    first = in_thread(call, mgr.claim, 'debian', name='vnf-late',
                      claim_key='late', time_left=1.5)
    rename.wait_arrived()  # the first claim holds its row, renaming
    # While the first claim runs, its volume is nobody else's ...
    with pytest.raises(exception.PoolEmpty):
        call(mgr.claim, 'debian', name='vnf-second', create_on_miss=False)
    # ... and its key answers "in progress", never a second volume.
    with pytest.raises(exception.ClaimInProgress):
        call(mgr.claim, 'debian', name='vnf-late', claim_key='late',
             time_left=1.5)
    # The rename lands once the claim's time is up.
    waiting.wait_for(held_past_its_deadline, timeout=15,
                     what="the first claim's deadline passed")
    rename.release()
    with pytest.raises(exception.ClaimTimedOut) as caught:
        first.result(timeout=15)
    assert caught.value.claim_key == 'late'
    # Undone: the late PUT landed, the undo put name and tags back.
    assert_in_pool(simulator, volume_id)
    assert simulator.get_volume(volume_id)['name'] == pool_name
    assert receipt('late') is None  # a failed claim leaves no receipt
    mgr.sync(CTXT)
    assert_settled(mgr, simulator)
    # The key may be used again, and the volume is there to claim.
    result = call(mgr.claim, 'debian', name='vnf-late', claim_key='late')
    assert result['volume_id'] == volume_id
    assert simulator.get_volume(volume_id)['name'] == 'vnf-late'


def _late_rename_with_sync_running(mgr, simulator, second_claim=True):
    """The first claim's rename is held past the claim's time (1.5 s)
    while sync runs: sync leaves the volume to the claim (its rename may
    still land), the rename lands, the claim is undone; then a second
    claim (create_on_miss=False) takes the volume.

    Returns (first's error, second's answer or None, the volume).
    """
    fill(mgr)
    [volume_id] = rows_by_volume()
    rename = simulator.inject_fault(status=None, method='PUT',
                                    path=ONE_VOLUME, count=1, hold=True)
    first = in_thread(call, mgr.claim, 'debian', name='vnf-first',
                      claim_key='first', time_left=1.5)
    rename.wait_arrived()
    waiting.wait_for(held_past_its_deadline, timeout=15,
                     what="the first claim's deadline passed")
    mgr.sync(CTXT)
    # Not given back while a rename of the claim may still land.
    assert counts() == {models.CLAIMING: 1}
    rename.release()
    with pytest.raises(exception.ClaimTimedOut) as caught:
        first.result(timeout=15)
    second = None
    if second_claim:
        second = call(mgr.claim, 'debian', name='vnf-second',
                      claim_key='second', create_on_miss=False)
    return caught.value, second, volume_id


def test_late_rename_with_sync_running_answers_one_caller(make_manager,
                                                          simulator):
    mgr = make_manager({'debian': 1})
    error, second, volume_id = _late_rename_with_sync_running(
        mgr, simulator)
    # Two claims of one volume: one answer, one error -- never both.
    assert error.claim_key == 'first'
    assert second['volume_id'] == volume_id
    assert receipt('first') is None
    assert receipt('second').state == models.R_LEASED
    mgr.sync(CTXT)
    # The volume stays the second caller's: no row, not in the pool.
    assert rows_by_volume() == {}
    assert tagged(simulator) == []
    assert simulator.get_volume(volume_id)['metadata'] == lease_tags()
    # The first key is free again: a new claim gets a new volume.
    again = call(mgr.claim, 'debian', name='vnf-first', claim_key='first')
    assert (again['source'], again['volume_id'] != volume_id) == (
        'created', True)


def test_late_rename_never_renames_the_next_callers_volume(make_manager,
                                                           simulator):
    mgr = make_manager({'debian': 1})
    _error, second, volume_id = _late_rename_with_sync_running(
        mgr, simulator)
    mgr.sync(CTXT)
    volume = simulator.get_volume(volume_id)
    assert (volume['name'], volume['metadata']) == (second['name'],
                                                    lease_tags())


def test_late_rename_of_a_volume_back_in_the_pool_is_retagged(
        make_manager, simulator, conf):
    """A rename that outlives the Cinder timeout: the claim gives up on
    it, and sync gives the volume back once its late window is past.  When
    the rename, held in Cinder, lands after all, it strips the pool tags
    of a pool volume; the next sync finds the row's volume missing from
    the listing, asks Cinder by id and tags it again instead of
    forgetting it: the pool ends whole."""
    conf.set_override('timeout', 1, group='cinder')
    mgr = make_manager({'debian': 1})
    fill(mgr)
    [volume_id] = rows_by_volume()
    rename = simulator.inject_fault(status=None, method='PUT',
                                    path=ONE_VOLUME, count=1, hold=True)
    first = in_thread(call, mgr.claim, 'debian', name='vnf-first',
                      claim_key='first', time_left=1.5)
    rename.wait_arrived()
    with pytest.raises(exception.VolumePoolException):
        first.result(timeout=15)
    mgr.sync(CTXT)
    assert counts() == {models.UNCERTAIN: 1}  # the rename may still land
    past_the_late_window(mgr)

    def given_back():
        mgr.sync(CTXT)
        return counts() == {models.AVAILABLE: 1}
    waiting.wait_for(given_back, timeout=15, interval=0.1,
                     what='sync giving the volume back')
    rename.release()
    # The late rename lands on a pool volume.
    waiting.wait_for(lambda: simulator.get_volume(volume_id)['name'] ==
                     'vnf-first', what='the held rename landed')
    assert simulator.get_volume(volume_id)['metadata'] == lease_tags()
    mgr.sync(CTXT)
    assert_settled(mgr, simulator)
    assert list(rows_by_volume()) == [volume_id]
    assert receipt('first') is None


# -- Cinder failing the rename ---------------------------------------------


def test_503_on_the_rename_fails_claims_cleanly_without_overfill(
        make_manager, simulator):
    mgr = make_manager({'debian': 3})
    fill(mgr)
    volumes = set(rows_by_volume())
    simulator.inject_fault(status=503, method='PUT', path=ONE_VOLUME,
                           count=6)
    for n in range(6):
        key = 'k%d' % n if n % 2 else None
        with pytest.raises(exception.CinderUnavailable):
            call(mgr.claim, 'debian', name='vnf-%d' % n, claim_key=key)
    # Nothing was renamed: every row is back, no receipt is left.
    assert counts() == {models.AVAILABLE: 3}
    assert all_receipts() == []
    simulator.reset_counts()
    mgr.replenish(CTXT)
    mgr.sync(CTXT)
    assert simulator.request_counts[POST] == 0
    assert_settled(mgr, simulator)
    assert set(rows_by_volume()) == volumes
    # Claims work again, and the failed keys may be used again.
    result = call(mgr.claim, 'debian', name='vnf-1', claim_key='k1')
    assert result['volume_id'] in volumes


def test_503_on_the_rename_and_the_undo_is_settled_by_sync_no_overfill(
        make_manager, simulator, caplog):
    """Six 503s: three claims failed and their undo failed too: rows
    ``uncertain``, replenish must not replace them, sync settles them
    from Cinder's truth."""
    mgr = make_manager({'debian': 3})
    fill(mgr)
    volumes = set(rows_by_volume())
    # Each claim: its rename PUT fails, then its undo's GET by id.
    simulator.inject_fault(status=503, method=None, path=ONE_VOLUME,
                           count=6)
    for n in range(3):
        with pytest.raises(exception.CinderUnavailable):
            call(mgr.claim, 'debian', name='vnf-%d' % n,
                 claim_key='k%d' % n)
    assert counts() == {models.UNCERTAIN: 3}
    # Each failure is in the log, with its volume.
    assert caplog.text.count('failed at Cinder, undoing it') == 3
    assert all(volume_id in caplog.text for volume_id in volumes)
    # A retry of a claim whose fate is unknown is told to wait.
    with pytest.raises(exception.ClaimInProgress):
        call(mgr.claim, 'debian', name='vnf-0', claim_key='k0')
    # Replenish counts uncertain volumes as ready: no replacement.
    simulator.reset_counts()
    mgr.replenish(CTXT)
    assert simulator.request_counts[POST] == 0
    assert counts() == {models.UNCERTAIN: 3}
    # Within the grace a late request of the failed claims could still
    # land: sync leaves the rows alone.
    mgr.sync(CTXT)
    assert counts() == {models.UNCERTAIN: 3}
    # Past it (the grace moved to zero), sync asks Cinder: the volumes are
    # untouched pool volumes.
    past_the_late_window(mgr)
    mgr.sync(CTXT)
    mgr.replenish(CTXT)
    assert simulator.request_counts[POST] == 0
    assert_settled(mgr, simulator)
    assert set(rows_by_volume()) == volumes
    assert all_receipts() == []
    result = call(mgr.claim, 'debian', name='vnf-0', claim_key='k0')
    assert result['volume_id'] in volumes
