"""A caller that gives up leaves nothing behind, on the real services
(RabbitMQ, MariaDB and PostgreSQL, a real Cinder): a release recorded
before its claim spends the key, and a client whose claim got no answer
in time (its manager stopped with SIGSTOP) releases the key itself.
Each test asserts what Cinder and the tables hold."""

import uuid

import pytest
import sqlalchemy as sa

from volume_pool import exception
from volume_pool import rpcapi
from volume_pool.fixtures import waiting
from volume_pool.tests.functional.test_exactly_once_real import accounted
from volume_pool.tests.functional.test_exactly_once_real import CTXT
from volume_pool.tests.functional.test_real_peers import table
from volume_pool.tests.functional.test_real_peers import tagged


def receipt_of(db_url, key):
    """(state, volume_id) of the key's receipt, or None."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            found = conn.execute(sa.text(
                'SELECT state, volume_id FROM claim_receipts '
                'WHERE claim_key = :key'), {'key': key}).first()
            return None if found is None else tuple(found)
    finally:
        engine.dispose()


def pool_ids(cinder, pool):
    """The pool's volumes in Cinder; one being deleted (a surplus
    trimmed, its row gone) has left the pool."""
    return sorted(volume.id for volume in tagged(cinder, pool)
                  if volume.status != 'deleting')


def test_a_release_before_its_claim_spends_the_key(
        managers, api, cinder, snapshot, pool_name):
    managers([(pool_name, snapshot, 2)])
    waiting.pool_ready(api, pool_name, 2)
    before = pool_ids(cinder, pool_name)
    key = str(uuid.uuid4())
    view = api.release(CTXT, key)
    assert (view['claim_key'], view['state'], view['volume_id']) == (
        key, 'released', None)
    assert api.release(CTXT, key) == view  # idempotent
    with pytest.raises(exception.ClaimReleased) as caught:
        api.claim(CTXT, pool_name, name='fn-late', claim_key=key,
                  timeout=30)
    assert caught.value.claim_key == key
    assert receipt_of(managers.db_url, key) == ('released', None)
    assert pool_ids(cinder, pool_name) == before
    assert set(table(managers.db_url, pool_name).values()) == {'available'}


def test_a_client_that_gives_up_releases_its_key(
        managers, api, cinder, snapshot, pool_name):
    process = managers([(pool_name, snapshot, 2)])
    waiting.pool_ready(api, pool_name, 2)
    key = str(uuid.uuid4())
    api.MIN_ATTEMPT_SECONDS = 1.0
    api.GIVE_UP_RELEASE_TIMEOUT = 2.0
    # No manager answers: the claim's attempts and the client's release
    # wait for the stopped manager, which runs them all once resumed.
    with process.paused(settle=0.5):
        with pytest.raises(rpcapi.ClaimTimedOut) as caught:
            api.claim(CTXT, pool_name, name='fn-gone', claim_key=key,
                      timeout=3)
    assert caught.value.claim_key == key

    def left():
        # A volume the claim took before the release reached it is back;
        # a replacement made meanwhile is trimmed again.
        found = receipt_of(managers.db_url, key)
        in_pool = pool_ids(cinder, pool_name)
        return ((['receipt %s' % (found,)]
                 if found is None or found[0] != 'released' else []) +
                accounted(cinder, managers, pool_name, {}) +
                (['%d in the pool' % len(in_pool)]
                 if len(in_pool) != 2 else []))
    waiting.wait_clear(left, timeout=90,
                       what='the given-up claim released, the pool whole')
    with pytest.raises(exception.ClaimReleased):
        api.claim(CTXT, pool_name, name='fn-gone', claim_key=key,
                  timeout=30)
    assert len(pool_ids(cinder, pool_name)) == 2
