"""Pool policy against a real Cinder: claims into another project through
Cinder volume transfers, and backoff with its reason on a real 413 (each
test runs once on MariaDB and once on PostgreSQL)."""

import re
import uuid

import pytest

from volume_pool import cinder as vp_cinder
from volume_pool import context as vp_context
from volume_pool import exception
from volume_pool.fixtures import cinder_handles
from volume_pool.fixtures import waiting
from volume_pool.tests.functional import engines
from volume_pool.tests.functional.test_real_peers import table
from volume_pool.tests.functional.test_real_peers import tagged

CTXT = vp_context.RequestContext()
TENANT = 'os-vol-tenant-attr:tenant_id'


def as_project(cinder, project_id):
    """A client of ``project_id`` (noauth: the project is in the URL)."""
    return cinder_handles.noauth_cinder_client(cinder.endpoint, project_id,
                                        user_id='receiver')


@engines.ON_POSTGRESQL
@pytest.mark.serial
def test_claim_into_another_project(managers, api, cinder, snapshot,
                                    pool_name):
    receiver, full = uuid.uuid4().hex, uuid.uuid4().hex
    managers([(pool_name, snapshot, 2)],
             extra='[volume_pool]\nclaim_projects = %s,%s\n'
                   % (receiver, full))
    waiting.pool_ready(api, pool_name, 2)
    result = api.claim(CTXT, pool_name, name='vnf-fn-into',
                       project_id=receiver)
    assert (result['source'], result['project_id']) == ('pool', receiver)
    volume = as_project(cinder, receiver).volumes.get(result['volume_id'])
    assert (volume.status, volume.name) == ('available', 'vnf-fn-into')
    assert getattr(volume, TENANT) == receiver
    assert vp_cinder.TAG_POOL not in volume.metadata
    assert [v.id for v in as_project(cinder, receiver).volumes.list()] == [
        result['volume_id']]
    assert result['volume_id'] not in {
        v.id for v in cinder.client().volumes.list()}
    assert result['volume_id'] not in table(managers.db_url, pool_name)
    assert cinder.client().transfers.list() == []
    waiting.pool_ready(api, pool_name, 2)

    # A receiver whose quota is full: Cinder refuses the accept (413), the
    # volume stays in the pool, tagged, and the caller gets a typed error.
    cinder.client().quotas.update(full, volumes=0)
    before = {v.id for v in tagged(cinder, pool_name)}
    with pytest.raises(exception.VolumeTransferFailed) as info:
        api.claim(CTXT, pool_name, name='vnf-fn-refused', project_id=full)
    assert 'VolumeLimitExceeded' in str(info.value)
    # Nothing moved, nothing was renamed for the refused caller.
    assert cinder.client().transfers.list() == []
    assert as_project(cinder, full).volumes.list() == []
    assert all(getattr(v, TENANT) == cinder.project_id and
               v.name != 'vnf-fn-refused' for v in tagged(cinder, pool_name))

    # Replenish starts a replacement as soon as a claim takes a volume (a
    # slow transfer gives it the time): with the claim refused, the pool
    # holds one too many until sync trims its oldest.
    def back_to_target():
        rows = table(managers.db_url, pool_name)
        in_cinder = {v.id for v in tagged(cinder, pool_name)}
        return (len(rows) == 2 and set(rows) == in_cinder and
                set(rows.values()) == {'available'} and rows)
    rows = waiting.wait_for(back_to_target, timeout=60, what='pool back at 2')
    client = cinder.client()
    for volume_id in before - set(rows):
        assert _trimmed(client, volume_id)
    assert as_project(cinder, full).volumes.list() == []

    # A keyed claim into a project answered in time is that project's:
    # its release is refused, and the volume stays there.
    key = str(uuid.uuid4())
    kept = api.claim(CTXT, pool_name, name='vnf-fn-kept',
                     project_id=receiver, claim_key=key)
    with pytest.raises(exception.ClaimNotReleasable):
        api.release(CTXT, key)
    assert getattr(as_project(cinder, receiver).volumes.get(
        kept['volume_id']), TENANT) == receiver
    assert client.transfers.list(search_opts={'all_tenants': 1}) == []


def _trimmed(client, volume_id):
    """Deleted by the pool (gone or going), not handed to anyone."""
    try:
        return client.volumes.get(volume_id).status == 'deleting'
    except Exception as exc:
        return 'NotFound' in exc.__class__.__name__


@engines.ON_MARIADB
def test_quota_backoff_reason_on_real_cinder(managers, api, cinder,
                                             snapshot, pool_name):
    """A gigabytes quota of 2: two 1 GiB volumes, then Cinder's 413; the
    pool says why it is short and asks Cinder rarely, not every second."""
    project = uuid.uuid4().hex
    client = cinder.client()
    client.quotas.update(project, gigabytes=2)
    managers([(pool_name, snapshot, 4)], project_id=project,
             extra='[volume_pool]\nbackoff_initial = 2\nbackoff_max = 8\n')
    waiting.pool_ready(api, pool_name, 2)
    # 12 replenish runs with 2 volumes missing each
    refused = cinder.refused_creates(project, 12)
    print('413 answers in 12 s of backoff: %d (about 24 without)' % refused)
    assert 1 <= refused <= 6, refused
    status = {p['name']: p for p in api.pool_status(CTXT)}[pool_name]
    assert (status['ready'], status['target']) == (2, 4)
    assert re.match(r'^backing off until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: '
                    r'.*VolumeSizeExceedsAvailableQuota', status['reason']), \
        status['reason']
    assert status['backoff']['failures'] >= 1
    assert len(as_project(cinder, project).volumes.list()) == 2
    client.quotas.update(project, gigabytes=50)
    waiting.pool_ready(api, pool_name, 4, timeout=60)
