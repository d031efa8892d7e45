"""Claims into another project (RPC 1.3): a Cinder volume transfer, undone
when it fails, against the Cinder simulator over real HTTP."""

import uuid

from oslo_config import cfg
import pytest

from volume_pool import cinder as vp_cinder
from volume_pool import context as vp_context
from volume_pool import exception
from volume_pool import rpcapi
from volume_pool.conf import cinder as cinder_conf
from volume_pool.db import api as db_api
from volume_pool.db import claims as db_claims
from volume_pool.db import models
from volume_pool.fixtures import cinder_handles
from volume_pool.fixtures import waiting
from volume_pool.tests.unit.manager_steps import call
from volume_pool.tests.unit.manager_steps import fill
from volume_pool.tests.unit.manager_steps import ready
from volume_pool.tests.unit.manager_steps import tagged

# The functional layer runs these again on the real services.
pytestmark = pytest.mark.recollect

PROJECT = '0123456789abcdef0123456789abcdef'


@pytest.fixture(autouse=True)
def receiving_project_allowed(conf):
    """Claims may move volumes only into [volume_pool] claim_projects."""
    conf.set_override('claim_projects', [PROJECT], group='volume_pool')
ACCEPT = '/accept$'


def owner(simulator, volume_id):
    return simulator.get_volume(volume_id)['os-vol-tenant-attr:tenant_id']


def transfers(simulator):
    client = cinder_handles.noauth_cinder_client(simulator.endpoint,
                                          simulator.project_id)
    return client.transfers.list()


def test_claim_hands_the_volume_to_the_project(make_manager,
                                               simulator):
    mgr = make_manager({'debian': 2})
    fill(mgr)
    result = call(mgr.claim, 'debian', name='vnf-1', project_id=PROJECT)
    assert (result['source'], result['project_id'], result['name']) == (
        'pool', PROJECT, 'vnf-1')
    volume = simulator.get_volume(result['volume_id'])
    assert volume['status'] == 'available'
    assert volume['os-vol-tenant-attr:tenant_id'] == PROJECT
    assert vp_cinder.TAG_POOL not in volume['metadata']
    assert result['volume_id'] not in {
        r.volume_id for r in db_api.get_rows(None, pool='debian')}
    assert transfers(simulator) == []
    # The pool's own project no longer lists it; sync leaves it alone.
    call(mgr.sync)
    assert owner(simulator, result['volume_id']) == PROJECT
    fill(mgr)


@pytest.mark.parametrize('failing', [
    ('POST', '/os-volume-transfer$', 500),   # creating the transfer
    ('POST', ACCEPT, 400),                   # accepting it (wrong key...)
    ('POST', ACCEPT, 413),                   # receiver over quota
])
def test_failed_transfer_leaves_the_volume_in_the_pool(
        make_manager, simulator, failing):
    method, path, status = failing
    mgr = make_manager({'debian': 1})
    fill(mgr)
    [before] = db_api.get_rows(None, pool='debian')
    simulator.inject_fault(status=status, method=method, path=path)
    with pytest.raises(exception.VolumeTransferFailed) as info:
        call(mgr.claim, 'debian', name='vnf-2', project_id=PROJECT)
    assert before.volume_id in str(info.value)
    volume = simulator.get_volume(before.volume_id)
    assert volume['status'] == 'available'
    assert volume['name'] == before.name
    assert volume['metadata'][vp_cinder.TAG_POOL] == 'debian'
    assert owner(simulator, before.volume_id) == simulator.project_id
    assert transfers(simulator) == []
    [after] = db_api.get_rows(None, pool='debian')
    assert (after.volume_id, after.status) == (before.volume_id,
                                               models.AVAILABLE)
    assert mgr.stats.figures('debian')['errors'] == 1
    # The very same volume serves the next claim.
    again = call(mgr.claim, 'debian', project_id=PROJECT)
    assert again['volume_id'] == before.volume_id
    assert owner(simulator, before.volume_id) == PROJECT


def test_miss_creates_the_volume_as_the_project(make_manager,
                                                simulator):
    mgr = make_manager({'debian': 0})
    result = call(mgr.claim, 'debian', name='vnf-3', project_id=PROJECT)
    assert (result['source'], result['project_id']) == ('created', PROJECT)
    assert owner(simulator, result['volume_id']) == PROJECT
    with pytest.raises(exception.PoolEmpty):
        call(mgr.claim, 'debian', project_id=PROJECT, create_on_miss=False)


@pytest.mark.parametrize('project_id', ['', 'admin', 'x' * 32, 42,
                                        '0123456789abcdef'])
def test_bad_project_id_is_refused_and_changes_nothing(
        make_manager, simulator, project_id):
    mgr = make_manager({'debian': 1})
    fill(mgr)
    with pytest.raises(exception.InvalidClaimRequest):
        call(mgr.claim, 'debian', project_id=project_id)
    assert ready() == 1
    assert simulator.request_counts[('POST', '/os-volume-transfer')] == 0


def test_sync_settles_claims_stopped_mid_transfer(make_manager,
                                                  simulator, conf):
    """A manager that died after creating a transfer (the volume is
    awaiting-transfer), or after its accept (the volume is the project's):
    sync returns the first to the pool and lets the second go."""
    mgr = make_manager({'debian': 2})
    fill(mgr)
    client = cinder_handles.noauth_cinder_client(simulator.endpoint,
                                          simulator.project_id)
    receiver = cinder_handles.noauth_cinder_client(simulator.endpoint, PROJECT)
    stopped = []
    for claim_id in ('c1', 'c2'):
        # Held by a manager process that is gone (never registered).
        [row], _done = db_claims.commit_steps(
            'debian', None, mgr.specs['debian'].snapshot_id, 'dead-manager',
            [db_claims.Take(claim_id=claim_id, hold=60)])
        client.volumes.update(row.volume_id, name='vnf', metadata={})
        stopped.append((row, client.transfers.create(row.volume_id)))
    (pending_row, _pending), (accepted_row, accepted) = stopped
    receiver.transfers.accept(accepted.id, accepted.auth_key)
    call(mgr.sync)
    rows = {r.volume_id: r.status for r in db_api.get_rows(None)}
    assert rows.get(pending_row.volume_id) == models.AVAILABLE
    assert accepted_row.volume_id not in rows
    assert transfers(simulator) == []
    back = simulator.get_volume(pending_row.volume_id)
    assert back['status'] == 'available'
    assert back['metadata'][vp_cinder.TAG_POOL] == 'debian'
    assert owner(simulator, accepted_row.volume_id) == PROJECT
    assert vp_cinder.TAG_POOL not in simulator.get_volume(
        accepted_row.volume_id)['metadata']
    assert {v['id'] for v in tagged(simulator)} == set(rows)


def _private_conf(tmp_path, text):
    """A ConfigOpts of its own: auth plugins register their options on the
    conf's group, and the global one already has noauth's (a group object
    registered twice shares its options: register a fresh one first)."""
    conf = cfg.ConfigOpts()
    conf.register_group(cfg.OptGroup(cinder_conf.GROUP))
    cinder_conf.register_opts(conf)
    path = tmp_path / ('cinder-%s.conf' % uuid.uuid4().hex[:6])
    path.write_text(text)
    conf(['--config-file', str(path)])
    return conf


def test_auth_scoping_for_another_project(tmp_path):
    conf = _private_conf(
        tmp_path, '[cinder]\nauth_type = password\n'
        'auth_url = http://127.0.0.1:1/v3\nusername = pool\n'
        'password = secret\nproject_name = service\n'
        'user_domain_name = Default\nproject_domain_name = Default\n')
    cinder = vp_cinder.Cinder(conf)
    handle = cinder.as_project(PROJECT)
    assert handle._auth._project_id == PROJECT
    assert handle._auth._project_name is None
    assert cinder.as_project(PROJECT) is handle  # cached
    conf = _private_conf(
        tmp_path, '[cinder]\nauth_type = v3applicationcredential\n'
        'auth_url = http://127.0.0.1:1/v3\n'
        'application_credential_id = abc\n'
        'application_credential_secret = secret\n')
    with pytest.raises(exception.ConfigError, match='cannot act as'):
        vp_cinder.Cinder(conf).as_project(PROJECT)


# -- over RPC ----------------------------------------------------------------

def test_rpc_1_3_claim_into_a_project(running_service,
                                      simulator):
    api = rpcapi.VolumePoolAPI(timeout=30)
    ctxt = vp_context.RequestContext()
    waiting.pool_ready(api, None, 2, ctxt=ctxt, timeout=20,
                       interval=0.05)
    result = api.claim(ctxt, 'debian', project_id=PROJECT)
    assert result['project_id'] == PROJECT
    assert owner(simulator, result['volume_id']) == PROJECT
    simulator.inject_fault(status=400, method='POST', path=ACCEPT)
    with pytest.raises(exception.VolumeTransferFailed):
        api.claim(ctxt, 'debian', project_id=PROJECT)
    with pytest.raises(exception.InvalidClaimRequest):
        api.claim(ctxt, 'debian', project_id='not-a-project')


def test_a_project_not_listed_receives_nothing(make_manager, simulator,
                                               conf):
    mgr = make_manager({'debian': 1})
    fill(mgr)
    other = 'fedcba9876543210fedcba9876543210'
    simulator.reset_counts()
    with pytest.raises(exception.ProjectNotAllowed):
        call(mgr.claim, 'debian', project_id=other)
    # Empty, the default: no project may receive volumes.
    conf.set_override('claim_projects', [], group='volume_pool')
    with pytest.raises(exception.ProjectNotAllowed):
        call(mgr.claim, 'debian', project_id=PROJECT)
    assert ready() == 1
    assert simulator.request_counts[('PUT', '/volumes/{id}')] == 0
    assert simulator.request_counts[('POST', '/os-volume-transfer')] == 0


def test_a_1_0_client_cannot_claim_into_a_project(
        running_service, simulator):
    """Pinned to 1.0 (a manager not yet upgraded): a plain claim works,
    a claim into a project fails at once, before anything is sent."""
    api = rpcapi.VolumePoolAPI(timeout=30, version_cap='1.0')
    ctxt = vp_context.RequestContext()
    waiting.pool_ready(api, None, 1, ctxt=ctxt, timeout=20,
                       interval=0.05)
    simulator.reset_counts()
    with pytest.raises(exception.ClaimIntoProjectUnsupported,
                       match='version_cap 1.0'):
        api.claim(ctxt, 'debian', project_id=PROJECT)
    assert not simulator.request_counts
    assert 'project_id' not in api.claim(ctxt, 'debian')
