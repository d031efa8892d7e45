"""Sync's lease pass lists the lease tags only when it must.

A listing by tag makes Cinder's database look at every volume of the
project, so after its first pass a manager reads only the volumes of the
receipts it can act on, and lists again when a tag could not be dropped,
when its full interval has passed or when there are too many to read.
Each test counts the listings the simulator answered and checks what the
pass did, on the simulator and SQLite."""

import datetime

import pytest
import sqlalchemy as sa

from volume_pool import exception
from volume_pool import leases
from volume_pool.db import api as db_api
from volume_pool.db import models
from volume_pool.tests.unit.claim_checks import lease_tags
from volume_pool.tests.unit.claim_checks import receipt
from volume_pool.tests.unit.manager_steps import call
from volume_pool.tests.unit.manager_steps import fill
from volume_pool.tests.unit.test_claim_lease import expire_lease


class Clock:
    """The keeper's monotonic clock, moved by hand."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def keeper_of(mgr, full_interval=3600, clock=None):
    return leases.LeaseKeeper(mgr._cinder, mgr.host, mgr.incarnation,
                              full_interval=full_interval,
                              clock=clock or Clock())


def listings(simulator):
    """How many volume listings the simulator answered since its counts
    were reset."""
    return len(simulator.list_queries)


def tags_of(simulator, volume_id):
    return simulator.get_volume(volume_id)['metadata']


def test_the_first_pass_lists_and_an_idle_one_then_lists_nothing(
        make_manager, simulator):
    mgr = make_manager({'debian': 1})
    fill(mgr)
    keeper = keeper_of(mgr)
    simulator.reset_counts()
    keeper.run(None)
    assert listings(simulator) == 1
    simulator.reset_counts()
    assert keeper.run(None) == {'returned': 0, 'latched': 0, 'errors': 0}
    assert listings(simulator) == 0
    assert sum(simulator.request_counts.values()) == 0


def test_an_attached_volume_is_latched_without_a_listing(make_manager,
                                                         simulator):
    mgr = make_manager({'debian': 2})
    fill(mgr)
    keeper = keeper_of(mgr)
    keeper.run(None)
    attached = call(mgr.claim, 'debian', name='vnf-a', claim_key='a1')
    call(mgr.claim, 'debian', name='vnf-i', claim_key='i1')
    simulator.attach_volume(attached['volume_id'])
    simulator.reset_counts()
    assert keeper.run(None)['latched'] == 1
    assert listings(simulator) == 0
    assert receipt('a1').state == models.R_USED
    assert receipt('i1').state == models.R_LEASED
    assert simulator.get_volume(attached['volume_id'])['metadata'] == {}


def test_a_tag_a_confirm_left_is_dropped_without_a_listing(make_manager,
                                                           simulator):
    """Cinder failed the confirm's tag drop: the receipt became used after
    the last pass began, so the next pass reads its volume."""
    mgr = make_manager({'debian': 1})
    fill(mgr)
    keeper = keeper_of(mgr)
    keeper.run(None)
    result = call(mgr.claim, 'debian', name='vnf-c', claim_key='c1')
    simulator.inject_fault(status=500, path='^/volumes/%s/metadata'
                           % result['volume_id'], count=20)
    call(mgr.confirm, 'c1')
    simulator.clear_faults()
    assert tags_of(simulator, result['volume_id'])
    simulator.reset_counts()
    assert keeper.run(None)['errors'] == 0
    assert listings(simulator) == 0
    assert not tags_of(simulator, result['volume_id'])


def test_a_tag_the_pass_could_not_drop_makes_the_next_pass_list(
        make_manager, simulator):
    mgr = make_manager({'debian': 1})
    fill(mgr)
    keeper = keeper_of(mgr)
    keeper.run(None)
    result = call(mgr.claim, 'debian', name='vnf-u', claim_key='u1')
    simulator.attach_volume(result['volume_id'])
    simulator.inject_fault(status=500, path='^/volumes/%s/metadata'
                           % result['volume_id'], count=20)
    assert keeper.run(None)['errors'] == 1
    simulator.clear_faults()
    simulator.reset_counts()
    keeper.run(None)
    assert listings(simulator) == 1
    assert not tags_of(simulator, result['volume_id'])


def keeper_past_its_first_pass(make_manager, full_interval=600):
    """A full pool's keeper on a clock of its own, its first pass made."""
    mgr = make_manager({'debian': 1})
    fill(mgr)
    clock = Clock()
    keeper = keeper_of(mgr, full_interval=full_interval, clock=clock)
    keeper.run(None)
    return keeper, clock


def test_the_full_interval_brings_a_listing_back(make_manager, simulator):
    keeper, clock = keeper_past_its_first_pass(make_manager)
    clock.now += 599
    simulator.reset_counts()
    keeper.run(None)
    assert listings(simulator) == 0
    clock.now += 1
    keeper.run(None)
    assert listings(simulator) == 1


def test_a_full_interval_of_zero_lists_at_every_pass(make_manager,
                                                     simulator):
    mgr = make_manager({'debian': 1})
    fill(mgr)
    keeper = keeper_of(mgr, full_interval=0)
    keeper.run(None)
    simulator.reset_counts()
    keeper.run(None)
    assert listings(simulator) == 1


def test_more_receipts_than_the_read_limit_are_listed_at_once(
        make_manager, simulator, monkeypatch):
    mgr = make_manager({'debian': 3})
    fill(mgr)
    keeper = keeper_of(mgr)
    keeper.run(None)
    claimed = [call(mgr.claim, 'debian', name='vnf-%d' % n,
                    claim_key='k%d' % n) for n in range(3)]
    simulator.attach_volume(claimed[2]['volume_id'])
    monkeypatch.setattr(leases, 'READ_LIMIT', 2)
    simulator.reset_counts()
    assert keeper.run(None)['latched'] == 1
    assert listings(simulator) == 1
    assert simulator.request_counts[('GET', '/volumes/{id}')] == 0


def test_a_used_receipt_from_before_the_last_pass_is_not_read_again(
        make_manager, simulator):
    """Confirmed (and untagged) before the last pass, beyond the margin:
    a pass reads only the receipts that changed since."""
    mgr = make_manager({'debian': 1})
    fill(mgr)
    call(mgr.claim, 'debian', name='vnf-o', claim_key='o1')
    call(mgr.confirm, 'o1')
    keeper = keeper_of(mgr)
    keeper.run(None)
    # The margin looks back a minute on the database's clock: move the
    # receipt's change out of it.
    with db_api.writer() as session:
        session.execute(sa.update(models.ClaimReceipt)
                        .values(updated_at=datetime.datetime(2000, 1, 1)))
    simulator.reset_counts()
    keeper.run(None)
    assert sum(simulator.request_counts.values()) == 0


def test_a_volume_is_judged_by_the_claim_that_holds_it_now(
        make_manager, simulator, monkeypatch):
    """The receipts the pass read went stale before it read the volume:
    the claim it read as used gave the volume back, and another claim
    took it with a lease.  The new claim keeps its lease tag (without
    it, it could never be latched used)."""
    mgr = make_manager({'debian': 1})
    fill(mgr)
    keeper = keeper_of(mgr)
    keeper.run(None)
    first = call(mgr.claim, 'debian', name='vnf-1', claim_key='old')
    call(mgr.confirm, 'old')
    stale = leases.db_receipts.lease_pass(None, datetime.datetime(2000, 1, 1))
    call(mgr.release, 'old')
    second = call(mgr.claim, 'debian', name='vnf-2', claim_key='new')
    assert second['volume_id'] == first['volume_id']
    monkeypatch.setattr(leases.db_receipts, 'lease_pass',
                        lambda cluster, used_since: stale)
    keeper.run(None)
    assert tags_of(simulator, second['volume_id']) == lease_tags()
    assert receipt('new').state == models.R_LEASED


def first_of_two_leases_second_attached(make_manager, simulator):
    """A keeper past its first pass, then two leased claims (``f1``, and
    ``a1`` whose volume is attached); returns the keeper and the first
    claim's answer."""
    mgr = make_manager({'debian': 2})
    fill(mgr)
    keeper = keeper_of(mgr)
    keeper.run(None)
    first = call(mgr.claim, 'debian', name='vnf-f', claim_key='f1')
    attached = call(mgr.claim, 'debian', name='vnf-a', claim_key='a1')
    simulator.attach_volume(attached['volume_id'])
    return keeper, first


def test_a_volume_cinder_fails_to_read_holds_back_no_other(
        make_manager, simulator):
    """One GET fails: the other attached volume is latched all the same,
    the error is counted, and the next pass lists."""
    keeper, failing = first_of_two_leases_second_attached(
        make_manager, simulator)
    simulator.inject_fault(status=500, method='GET',
                           path='^/volumes/%s$' % failing['volume_id'],
                           count=20)
    report = keeper.run(None)
    assert (report['latched'], report['errors']) == (1, 1)
    assert receipt('a1').state == models.R_USED
    simulator.clear_faults()
    simulator.reset_counts()
    keeper.run(None)
    assert listings(simulator) == 1


def test_a_listing_that_failed_is_not_put_off_a_full_interval(
        make_manager, simulator):
    keeper, clock = keeper_past_its_first_pass(make_manager)
    clock.now += 600
    simulator.inject_fault(status=500, path='^/volumes/detail', count=20)
    with pytest.raises(exception.CinderException):
        keeper.run(None)
    simulator.clear_faults()
    simulator.reset_counts()
    keeper.run(None)
    assert listings(simulator) == 1


def test_a_pool_gained_from_a_peer_is_listed_once(make_manager, simulator):
    """The peer that owned it may have left tags it could not drop."""
    mgr = make_manager({'debian': 1, 'ubuntu': 1})
    fill(mgr)
    keeper = keeper_of(mgr)
    mine = {'debian'}
    keeper.run(None, owns=lambda pool: pool in mine,
               pools=['debian', 'ubuntu'])
    simulator.reset_counts()
    keeper.run(None, owns=lambda pool: pool in mine,
               pools=['debian', 'ubuntu'])
    assert listings(simulator) == 0
    mine.add('ubuntu')
    keeper.run(None, owns=lambda pool: pool in mine,
               pools=['debian', 'ubuntu'])
    assert listings(simulator) == 1
    keeper.run(None, owns=lambda pool: pool in mine,
               pools=['debian', 'ubuntu'])
    assert listings(simulator) == 1


def test_a_receipt_used_just_before_the_last_pass_began_is_read(
        make_manager, simulator):
    """A confirm whose transaction took its time before the last pass
    read the table, and committed after: within the margin, it is read
    and its tag dropped."""
    mgr = make_manager({'debian': 1})
    fill(mgr)
    result = call(mgr.claim, 'debian', name='vnf-m', claim_key='m1')
    keeper = keeper_of(mgr)
    keeper.run(None)
    call(mgr.confirm, 'm1')
    # A second before the last pass began.
    before = keeper._used_since + datetime.timedelta(
        seconds=leases.USED_MARGIN - 1)
    with db_api.writer() as session:
        session.execute(sa.update(models.ClaimReceipt).values(
            updated_at=before))
    mgr._cinder.update_volume(result['volume_id'], metadata=lease_tags())
    assert tags_of(simulator, result['volume_id']) == lease_tags()
    keeper.run(None)
    assert tags_of(simulator, result['volume_id']) == {}


def test_a_volume_gone_holds_back_no_other(make_manager, simulator):
    """The first claim's volume was deleted: the pass reads on, and the
    attached volume of the claim after it is latched."""
    keeper, gone = first_of_two_leases_second_attached(make_manager,
                                                       simulator)
    simulator.remove_volume(gone['volume_id'])
    assert keeper.run(None)['latched'] == 1
    assert receipt('a1').state == models.R_USED


def test_as_many_receipts_as_the_read_limit_are_read(make_manager,
                                                     simulator, monkeypatch):
    mgr = make_manager({'debian': 2})
    fill(mgr)
    keeper = keeper_of(mgr)
    keeper.run(None)
    for n in range(2):
        call(mgr.claim, 'debian', name='vnf-%d' % n, claim_key='k%d' % n)
    monkeypatch.setattr(leases, 'READ_LIMIT', 2)
    simulator.reset_counts()
    keeper.run(None)
    assert listings(simulator) == 0
    assert simulator.request_counts[('GET', '/volumes/{id}')] == 2


def test_a_lease_confirmed_before_its_return_is_not_counted_returned(
        make_manager, simulator, monkeypatch):
    """The lease ran out, but the caller confirmed between the pass's
    read and its hold: nothing is returned, nothing counted."""
    mgr = make_manager({'debian': 1})
    fill(mgr)
    call(mgr.claim, 'debian', name='vnf-c', claim_key='c1')
    expire_lease('c1')
    expired = leases.db_receipts.expired_leases(None)
    call(mgr.confirm, 'c1')
    monkeypatch.setattr(leases.db_receipts, 'expired_leases',
                        lambda cluster: expired)
    assert keeper_of(mgr).run(None)['returned'] == 0
    assert receipt('c1').state == models.R_USED
