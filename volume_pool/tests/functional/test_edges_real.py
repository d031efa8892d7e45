"""Claims into another project on the real Cinder, with ``cinder-api``
stopped (SIGSTOP of its process group) while a transfer or a miss runs:
the manager's requests go unanswered and are applied, or not, once the
API runs again.  Whatever happened, one key gets one volume, and every
volume made from the pool's snapshot since the test started, in any
project, tagged or not, is in the pool, with the caller its receipt
names, or being deleted.

The moment to stop the API is read from Cinder's own database, so the
test never sleeps for a fixed time."""

import concurrent.futures
import datetime
import uuid

from oslo_utils import timeutils
import pymysql
import pytest

from volume_pool import cinder as vp_cinder
from volume_pool import context as vp_context
from volume_pool import exception
from volume_pool.fixtures import waiting
from volume_pool.tests.functional.test_exactly_once_real import receipts
from volume_pool.tests.functional.test_real_peers import table

CTXT = vp_context.RequestContext(project_id='controller')
TENANT = 'os-vol-tenant-attr:tenant_id'
# Requests to Cinder give up after 3 s: the late window is 8 s.
IMPATIENT = '[cinder]\ntimeout = 3\n'


def _options(receiver):
    return ('[volume_pool]\nclaim_projects = %s\nclaim_lease = 0\n%s'
            % (receiver, IMPATIENT))


def _cinder_db(cinder):
    return pymysql.connect(host='127.0.0.1', user='root',
                           database=cinder.env['CINDER_DB'],
                           autocommit=True)


def _stop_api_once(cinder, query, args=()):
    """Stop cinder-api as soon as ``query`` (on Cinder's database) finds
    a row: polled as fast as the database answers."""
    connection = _cinder_db(cinder)
    try:
        with connection.cursor() as cursor:
            def found():
                cursor.execute(query, args)
                return cursor.fetchone()[0] > 0
            waiting.wait_for(found, timeout=60, interval=0.001,
                             what='the moment to stop cinder-api')
        cinder.hang_api()
    finally:
        connection.close()


def _made_since(cinder, snapshot, since, pool):
    """Volumes of ``snapshot`` made since ``since`` (naive UTC), in every
    project (noauth is admin), untagged or tagged for ``pool``.  A volume
    tagged for another pool is another test's, even made since: a create
    its killed manager sent can land after this test started."""
    return [volume for volume in cinder.client().volumes.list(
                search_opts={'all_tenants': 1})
            if volume.snapshot_id == snapshot and
            volume.metadata.get(vp_cinder.TAG_POOL) in (None, pool) and
            timeutils.normalize_time(
                timeutils.parse_isotime(volume.created_at)) >= since]


def _started():
    """The test's start on Cinder's clock (the same machine's), less a
    second for rounding."""
    return timeutils.utcnow() - datetime.timedelta(seconds=1)


def every_volume_accounted(cinder, db_url, pool, snapshot, since, receiver,
                           answers):
    """Problems with what Cinder holds against the pool's rows, receipts
    and the answers (claim key -> volume id); empty when all is well."""
    problems = []
    rows = table(db_url, pool)
    held = {r.volume_id: r for r in receipts(db_url, pool).values()
            if r.state in ('leased', 'used')}
    volumes = _made_since(cinder, snapshot, since, pool)
    for volume in volumes:
        owner = getattr(volume, TENANT)
        in_pool = (rows.get(volume.id) in ('available', 'creating') and
                   volume.metadata.get(vp_cinder.TAG_POOL) == pool and
                   owner == cinder.project_id)
        with_caller = (volume.id in held and volume.id not in rows and
                       owner == receiver and
                       vp_cinder.TAG_POOL not in volume.metadata)
        if not (in_pool or with_caller or volume.status == 'deleting'):
            problems.append('%s (%s, %s, %s, row %s) is nobody\'s' % (
                volume.id, volume.status, owner, volume.metadata,
                rows.get(volume.id)))
    seen = {v.id for v in volumes}
    lost = [v for v in rows if v is not None and v not in seen]
    if lost:
        problems.append('rows whose volume is gone: %s' % lost)
    for key, volume_id in answers.items():
        if held.get(volume_id) is None or volume_id in rows:
            problems.append('%s answered %s, not held for it' % (key,
                                                                 volume_id))
    if len(set(answers.values())) != len(answers):
        problems.append('a volume answered twice: %s' % answers)
    return problems


def _claim(api, pool, key, receiver, timeout):
    try:
        return api.claim(CTXT, pool, name='fn-%s' % key[:8], claim_key=key,
                         project_id=receiver, timeout=timeout)
    except exception.VolumePoolException as exc:
        return exc


def _claim_until_settled(api, pool, key, receiver):
    """Retry with the same key until the claim is settled: in progress
    while the late window of the stopped requests runs, then its answer,
    or ClaimReleased when the client that gave up released the key."""
    def settled():
        result = _claim(api, pool, key, receiver, timeout=20)
        if isinstance(result, (dict, exception.ClaimReleased)):
            return result
        return None
    return waiting.wait_for(settled, timeout=120, interval=1,
                            what='claim %s settled' % key)


def _while_api_stopped(cinder, claims, stop):
    """Run ``claims`` (futures' makers), stop cinder-api with ``stop``,
    and let it run again once every claim has given up or answered."""
    with concurrent.futures.ThreadPoolExecutor(len(claims)) as executor:
        futures = [executor.submit(claim) for claim in claims]
        try:
            stop()
            concurrent.futures.wait(futures, timeout=90)
        finally:
            cinder.resume_api()
        return [future.result(timeout=30) for future in futures]


def test_cinder_api_stopped_while_a_transfer_runs(
        managers, api, cinder, snapshot, pool_name):
    receiver = uuid.uuid4().hex
    since = _started()
    managers([(pool_name, snapshot, 3)], extra=_options(receiver))
    waiting.pool_ready(api, pool_name, 3)
    keys = [str(uuid.uuid4()) for _ in range(3)]
    first = _while_api_stopped(cinder, [
        lambda key=key: _claim(api, pool_name, key, receiver, timeout=15)
        for key in keys], lambda: _stop_api_once(
            cinder, "SELECT COUNT(*) FROM transfers "
                    "WHERE display_name LIKE 'volume-pool-claim-%%'"))
    for result in first:
        assert isinstance(result, (dict, exception.VolumePoolException))
    settled = {key: _claim_until_settled(api, pool_name, key, receiver)
               for key in keys}
    answers = {key: result['volume_id'] for key, result in settled.items()
               if isinstance(result, dict)}
    for key, result in zip(keys, first, strict=True):
        if isinstance(result, dict):  # answered before: the same again
            assert answers[key] == result['volume_id']
    waiting.wait_clear(
        lambda: every_volume_accounted(
            cinder, managers.db_url, pool_name, snapshot, since, receiver,
            answers),
        timeout=120, interval=1, what='every volume accounted for')
    # The project holds the answered volumes and nothing else: a key the
    # client gave up on and released got its volume back from there.
    mine = [v.id for v in _made_since(cinder, snapshot, since, pool_name)
            if getattr(v, TENANT) == receiver]
    assert sorted(mine) == sorted(answers.values())
    print('transfer with cinder-api stopped: first attempts %s'
          % [type(r).__name__ for r in first])


def test_cinder_api_stopped_while_a_miss_into_a_project_runs(
        managers, api, cinder, snapshot, pool_name):
    receiver = uuid.uuid4().hex
    since = _started()
    managers([(pool_name, snapshot, 0)], extra=_options(receiver))
    waiting.pool_ready(api, pool_name, 0)
    key = str(uuid.uuid4())
    [first] = _while_api_stopped(cinder, [
        lambda: _claim(api, pool_name, key, receiver, timeout=15)],
        lambda: _stop_api_once(
            cinder, "SELECT COUNT(*) FROM volume_metadata "
                    "WHERE `key` = %s AND value = %s",
            (vp_cinder.TAG_POOL, pool_name)))
    answer = _claim_until_settled(api, pool_name, key, receiver)
    if isinstance(first, dict):
        assert answer['volume_id'] == first['volume_id']
    # Given up on and released by the client: the project gets nothing.
    answers = ({key: answer['volume_id']} if isinstance(answer, dict)
               else {})
    assert not answers or answer['project_id'] == receiver
    waiting.wait_clear(
        lambda: every_volume_accounted(
            cinder, managers.db_url, pool_name, snapshot, since, receiver,
            answers),
        timeout=120, interval=1, what='every volume accounted for')
    mine = [v for v in _made_since(cinder, snapshot, since, pool_name)
            if getattr(v, TENANT) == receiver]
    assert [v.id for v in mine] == list(answers.values())
    print('miss with cinder-api stopped: first attempt %s, settled %s'
          % (type(first).__name__, type(answer).__name__))


@pytest.fixture(autouse=True)
def _api_running_after(cinder):
    """Whatever a test did, the shared Cinder's API runs after it."""
    yield
    cinder.resume_api()
