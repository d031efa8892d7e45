"""Exactly once on the real services: a claim gives one volume to one
caller, once, and no volume is lost, while Cinder hangs, answers come too
late, and leases run out.  Each test asserts what Cinder and the tables
hold, not what a log says."""

import concurrent.futures
import time
import uuid

from oslo_config import cfg
import pytest
import sqlalchemy as sa

from volume_pool import cinder as vp_cinder
from volume_pool import context as vp_context
from volume_pool import exception
from volume_pool import rpcapi
from volume_pool.fixtures import waiting
from volume_pool.tests import accounting
from volume_pool.tests.functional import engines
from volume_pool.tests.functional import test_real_peers
from volume_pool.tests.functional.test_real_peers import table
from volume_pool.tests.functional.test_real_peers import tagged

CTXT = vp_context.RequestContext(project_id='controller')


def receipts(db_url, pool):
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return {r.claim_key: r for r in conn.execute(sa.text(
                'SELECT claim_key, state, volume_id FROM claim_receipts '
                'WHERE pool = :pool'), {'pool': pool})}
    finally:
        engine.dispose()


def accounted(cinder, managers, pool, answers, projects=()):
    """Every volume the test made, in every project it used, is in the
    pool, held by a receipt, with a caller in ``answers`` (claim key ->
    volume id) or being deleted.  Returns the problems."""
    return accounting.accounted(cinder, managers.db_url, pool, answers,
                                projects=projects,
                                since=managers.started_at)


def _claims(api, pool, keys, timeout):
    """Claim once per key, concurrently; key -> volume id or error."""
    def claim(key):
        try:
            return key, api.claim(CTXT, pool, name='fn-%s' % key[:8],
                                  claim_key=key, timeout=timeout)
        except exception.VolumePoolException as exc:
            return key, exc
    with concurrent.futures.ThreadPoolExecutor(len(keys)) as executor:
        return dict(executor.map(claim, keys))


@engines.ON_EVERY_CLAIM_DRIVER
def test_hung_cinder_api_hands_nothing_twice_and_loses_nothing(
        managers, api, cinder, snapshot, pool_name):
    for host in ('mgr-1', 'mgr-2'):
        managers([(pool_name, snapshot, 4)], host=host, coordination=True,
                 extra='[volume_pool]\nclaim_lease = 0\n')
    waiting.pool_ready(api, pool_name, 4)
    cinder.hang_api()
    try:
        keys = [str(uuid.uuid4()) for _ in range(4)]
        started = time.monotonic()
        results = _claims(api, pool_name, keys, timeout=6)
        elapsed = time.monotonic() - started
    finally:
        cinder.resume_api()
    # A hung Cinder makes claims fail in the caller's time, typed.
    assert elapsed < 20, elapsed
    for key, result in results.items():
        assert isinstance(result, exception.ClaimTimedOut), result
        assert result.claim_key == key
    # Their late renames land now; sync puts everything back.
    waiting.wait_clear(
        lambda: accounted(cinder, managers, pool_name, {}),
        timeout=90, what='pool settled after the hang')
    waiting.pool_ready(api, pool_name, 4)
    # The client released each key it gave up on: a retry with it takes
    # nothing, and the caller's next claims get one volume per new key.
    again = _claims(api, pool_name, keys, timeout=30)
    assert all(isinstance(r, exception.ClaimReleased)
               for r in again.values()), again
    fresh = _claims(api, pool_name, [str(uuid.uuid4()) for _ in keys],
                    timeout=30)
    answers = {k: r['volume_id'] for k, r in fresh.items()
               if isinstance(r, dict)}
    assert len(answers) == 4 and len(set(answers.values())) == 4, fresh
    waiting.wait_clear(
        lambda: accounted(cinder, managers, pool_name, answers),
        timeout=90, what='every volume accounted for')
    print('hung API: %d claims timed out in %.1fs, %d retried after'
          % (len(results), elapsed, len(answers)))


def test_a_late_answer_is_retried_with_the_same_key(
        managers, api, cinder, snapshot, pool_name):
    managers([(pool_name, snapshot, 2)])
    waiting.pool_ready(api, pool_name, 2)
    api.MIN_ATTEMPT_SECONDS = 1.0
    key = str(uuid.uuid4())
    with concurrent.futures.ThreadPoolExecutor(1) as executor:
        cinder.hang_api()
        try:
            # The first attempt waits 1-10 s; its answer is lost, the
            # retry with the same key gets ClaimInProgress, then the answer.
            claim = executor.submit(api.claim, CTXT, pool_name,
                                    claim_key=key, timeout=20)
            time.sleep(4)
        finally:
            cinder.resume_api()
        answer = claim.result(timeout=30)

    def recorded():
        # A keyed claim answers before its finish is written.
        held = receipts(managers.db_url, pool_name)
        return held if held[key].state != 'claiming' else None
    held = waiting.wait_for(recorded, timeout=30,
                            what='the claim recorded after its answer')
    assert list(held) == [key]
    assert (held[key].state, held[key].volume_id) == ('leased',
                                                      answer['volume_id'])
    assert answer['claim_key'] == key and answer['lease_expires_at']
    volume = cinder.client().volumes.get(answer['volume_id'])
    assert volume.metadata == vp_cinder.lease_tags(
        None, test_real_peers.identity(managers.db_url))
    # Asked again later: the same answer, still one volume.
    assert api.claim(CTXT, pool_name, claim_key=key)['volume_id'] == \
        answer['volume_id']
    waiting.wait_clear(
        lambda: accounted(cinder, managers, pool_name,
                          {key: answer['volume_id']}),
        timeout=60, what='every volume accounted for')


def test_leases_confirm_release_and_attach_on_real_cinder(
        managers, api, cinder, snapshot, pool_name):
    managers([(pool_name, snapshot, 4)], sync_interval=2,
             extra='[volume_pool]\nclaim_lease = 4\n')
    waiting.pool_ready(api, pool_name, 4)
    client = cinder.client()
    confirmed, released, abandoned, attached = (
        api.claim(CTXT, pool_name, claim_key='%s-%d' % (pool_name, n))
        for n in range(4))
    assert api.confirm(CTXT, confirmed['claim_key'])['state'] == 'used'
    assert vp_cinder.TAG_LEASE not in client.volumes.get(
        confirmed['volume_id']).metadata
    back = api.release(CTXT, released['claim_key'])
    assert back['state'] == 'released'
    assert api.release(CTXT, released['claim_key']) == back  # idempotent
    with pytest.raises(exception.ClaimReleased):
        api.claim(CTXT, pool_name, claim_key=released['claim_key'])
    volume = client.volumes.get(released['volume_id'])
    assert volume.metadata[vp_cinder.TAG_POOL] == pool_name
    attachment = client.attachments.create(attached['volume_id'],
                                           connector=None, instance_id=None)

    def settled():
        held = receipts(managers.db_url, pool_name)
        return (held[abandoned['claim_key']].state == 'returned' and
                held[attached['claim_key']].state == 'used')
    waiting.wait_for(settled, timeout=60, what='lease returned, attach '
                                               'latched')
    with pytest.raises(exception.ClaimLeaseExpired):
        api.confirm(CTXT, abandoned['claim_key'])
    assert vp_cinder.TAG_POOL in client.volumes.get(
        abandoned['volume_id']).metadata
    with pytest.raises(exception.ClaimNotReleasable):
        api.release(CTXT, attached['claim_key'])
    # Returned volumes made the pool overfull: it is trimmed to target.
    answers = {c['claim_key']: c['volume_id']
               for c in (confirmed, attached)}
    # The trim's deletes wait on Cinder, slow on a loaded machine.
    waiting.wait_clear(
        lambda: accounted(cinder, managers, pool_name, answers) + [
            '%d rows: %s' % (len(rows), rows)
            for rows in [table(managers.db_url, pool_name)]
            if len(rows) != 4],
        timeout=120, what='trimmed to target, all accounted for')
    client.attachments.delete(attachment['id'] if isinstance(
        attachment, dict) else attachment.id)


def test_an_old_client_claims_without_a_key(managers, cinder, snapshot,
                                            pool_name):
    """A 1.3 controller during a rolling upgrade: no key, no lease."""
    managers([(pool_name, snapshot, 1)])
    transport = rpcapi.get_transport(cfg.CONF, url=managers.transport_url)
    try:
        old = rpcapi.VolumePoolAPI(transport, timeout=60, version_cap='1.3')
        waiting.wait_for(lambda: len(tagged(cinder, pool_name)) == 1,
                         timeout=60, what='pool filled')
        answer = old.claim(CTXT, pool_name)
    finally:
        transport.cleanup()
    assert 'claim_key' not in answer and 'lease_expires_at' not in answer
    volume = cinder.client().volumes.get(answer['volume_id'])
    assert volume.metadata == {}
