"""A caller that gives up leaves nothing behind, manager-level, against
the Cinder simulator: a release of a key no claim has used yet is
recorded, and a claim that comes later with that key takes nothing; a
release that meets its claim still running stops it from finishing.

The checks are those of ``claim_checks``: what Cinder and the tables
hold."""

import json

import pytest
import sqlalchemy as sa

from volume_pool import context as vp_context
from volume_pool import exception
from volume_pool.db import api as db_api
from volume_pool.db import models
from volume_pool.tests.conftest import cinder_section
from volume_pool.tests.unit.claim_checks import assert_settled
from volume_pool.tests.unit.claim_checks import in_thread
from volume_pool.tests.unit.claim_checks import ONE_VOLUME
from volume_pool.tests.unit.claim_checks import PAST
from volume_pool.tests.unit.claim_checks import POST
from volume_pool.tests.unit.claim_checks import PUT
from volume_pool.tests.unit.claim_checks import receipt
from volume_pool.tests.unit.claim_checks import snapshot_of_world
from volume_pool.tests.unit.manager_steps import call
from volume_pool.tests.unit.manager_steps import counts
from volume_pool.tests.unit.manager_steps import CTXT
from volume_pool.tests.unit.manager_steps import fill
from volume_pool.tests.unit.manager_steps import wait_for


def test_a_release_before_its_claim_is_recorded_and_the_claim_takes_nothing(
        make_manager, simulator):
    mgr = make_manager({'debian': 2})
    fill(mgr)
    simulator.reset_counts()
    world = snapshot_of_world(simulator)
    view = call(mgr.release, 'early')
    assert (view['claim_key'], view['state'], view['volume_id']) == (
        'early', models.R_RELEASED, None)
    recorded = receipt('early')
    assert (recorded.state, recorded.volume_id) == (models.R_RELEASED, None)
    # Released again: the same record, nothing else.
    assert call(mgr.release, 'early')['claim_id'] == view['claim_id']
    # The claim that comes late takes nothing, whatever its arguments.
    for name in ('vnf-late', 'other-name'):
        with pytest.raises(exception.ClaimReleased) as caught:
            call(mgr.claim, 'debian', name=name, claim_key='early')
        assert caught.value.claim_key == 'early'
    with pytest.raises(exception.ClaimReleased):
        call(mgr.claim, 'debian', claim_key='early', lease=False)
    with pytest.raises(exception.ClaimReleased):
        call(mgr.confirm, 'early')
    assert counts() == {models.AVAILABLE: 2}
    assert simulator.request_counts.get(PUT, 0) == 0
    assert simulator.request_counts.get(POST, 0) == 0
    volumes, rows, _receipts = snapshot_of_world(simulator)
    assert (volumes, rows) == world[:2]
    mgr.sync(CTXT)
    assert_settled(mgr, simulator)
    assert receipt('early').state == models.R_RELEASED


def test_a_release_recorded_in_one_project_leaves_the_others_key_free(
        make_manager, simulator):
    mgr = make_manager({'debian': 2})
    fill(mgr)
    call(mgr.release, 'shared-key')
    other = vp_context.RequestContext(project_id='tenant-b')
    result = call(mgr.claim, 'debian', name='vnf-b', claim_key='shared-key',
                  ctxt=other)
    assert result['source'] == 'pool'
    assert receipt('shared-key', 'tenant-b').state == models.R_LEASED


def test_a_release_that_meets_its_claim_running_stops_it(make_manager,
                                                        simulator):
    mgr = make_manager({'debian': 2})
    fill(mgr)
    world = snapshot_of_world(simulator)
    # The rename is slow: the release arrives while the claim runs.
    simulator.inject_fault(status=None, delay=1.0, method='PUT',
                           path=ONE_VOLUME, count=1)
    running = in_thread(call, mgr.claim, 'debian', name='vnf-slow',
                        claim_key='slow')
    wait_for(lambda: receipt('slow') is not None, timeout=10,
             what='the claim running')
    view = call(mgr.release, 'slow')
    assert view['state'] in (models.R_RELEASING, models.R_RELEASED)
    # The rename lands after the release: the answer goes out (to a
    # caller that gave up), and its finish, finding the release, gives
    # the volume back at once.
    answer = running.result(timeout=30)
    assert answer['claim_key'] == 'slow'
    assert mgr.claimer.wait_answered(30)
    assert receipt('slow').state == models.R_RELEASED
    with pytest.raises(exception.ClaimReleased):
        call(mgr.claim, 'debian', name='vnf-slow', claim_key='slow')
    assert counts() == {models.AVAILABLE: 2}
    volumes, rows, _receipts = snapshot_of_world(simulator)
    assert volumes == world[0]
    mgr.sync(CTXT)
    assert_settled(mgr, simulator)


def _backdate_receipts(key):
    table = models.ClaimReceipt
    with db_api.writer() as session:
        session.execute(sa.update(table).where(table.claim_key == key)
                        .values(updated_at=PAST))


def test_recorded_releases_are_purged_after_claim_receipt_ttl(make_manager,
                                                              simulator):
    mgr = make_manager({'debian': 1})
    fill(mgr)
    call(mgr.release, 'old')
    call(mgr.release, 'recent')
    _backdate_receipts('old')  # older than claim_receipt_ttl
    mgr.sync(CTXT)
    assert receipt('old') is None
    assert receipt('recent').state == models.R_RELEASED


def test_claim_list_shows_recorded_releases(make_manager, simulator,
                                            database, console, tmp_path):
    mgr = make_manager({'debian': 1})
    call(mgr.release, 'listed')
    path = tmp_path / 'cli.conf'
    path.write_text('[database]\nconnection = %s\n%s'
                    % (database, cinder_section(simulator)))
    listed = console('volume-pool-manage', '--config-file', str(path),
                     'claim', 'list', '--state', 'released', '-f', 'json')
    assert listed.returncode == 0, listed.stderr
    [shown] = json.loads(listed.stdout)
    assert (shown['claim_key'], shown['state'], shown['volume_id']) == (
        'listed', models.R_RELEASED, None)
