"""volume-pool-manager processes against a real Cinder, RabbitMQ, and
MariaDB or PostgreSQL (each test runs once on each database)."""

import json
import re
import subprocess
import sys
import time
import uuid

import pytest
import sqlalchemy as sa

from volume_pool import cinder as vp_cinder
from volume_pool import context as vp_context
from volume_pool import exception
from volume_pool.db import deployment as db_deployment
from volume_pool.fixtures import waiting
from volume_pool.tests.functional import engines
from volume_pool.tests.functional.conftest import BURST_TIMEOUTS
from volume_pool.tests.functional.conftest import CLAIMER

CTXT = vp_context.RequestContext()


def tagged(cinder, pool):
    return cinder.client().volumes.list(
        search_opts={'metadata': {vp_cinder.TAG_POOL: pool}})


def identity(db_url):
    """The deployment identity the manager's ``db sync`` made."""
    engine = sa.create_engine(db_url)
    try:
        return db_deployment.identity(engine)
    finally:
        engine.dispose()


def table(db_url, pool):
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return {r.volume_id: r.status for r in conn.execute(sa.text(
                'SELECT volume_id, status FROM pool_volumes '
                'WHERE pool = :pool'), {'pool': pool})}
    finally:
        engine.dispose()


def test_fill_claim_and_refill(managers, api, cinder, snapshot, pool_name):
    empty = pool_name + '-empty'
    managers([(pool_name, snapshot, 3), (empty, snapshot, 0)])
    waiting.pool_ready(api, pool_name, 3)
    time.sleep(3)  # a few more replenish runs: nothing may overshoot
    volumes = tagged(cinder, pool_name)
    assert len(volumes) == 3
    assert all(v.snapshot_id == snapshot for v in volumes)
    assert all(v.status == 'available' for v in volumes)
    assert set(table(managers.db_url, pool_name)) == {v.id for v in volumes}

    claimed = api.claim(CTXT, pool_name, name='vnf-fn-1')
    assert claimed['source'] == 'pool'
    volume = cinder.client().volumes.get(claimed['volume_id'])
    assert (volume.status, volume.name) == ('available', 'vnf-fn-1')
    assert vp_cinder.TAG_POOL not in volume.metadata
    assert claimed['volume_id'] not in table(managers.db_url, pool_name)
    waiting.pool_ready(api, pool_name, 3)

    with pytest.raises(exception.PoolEmpty):
        api.claim(CTXT, empty, create_on_miss=False)
    created = api.claim(CTXT, empty, name='vnf-fn-miss')
    assert created['source'] == 'created'
    assert cinder.client().volumes.get(created['volume_id']).name == \
        'vnf-fn-miss'


# PostgreSQL: the same burst runs on MariaDB in the two-clusters test.
@engines.ON_POSTGRESQL
@pytest.mark.serial
def test_three_managers_200_claims_from_20_callers(managers, api, cinder,
                                                   snapshot, pool_name):
    # Every caller may miss at once: no miss is refused for the cap.
    uncapped = ('[pool:%s]\nmax_miss_creates = 20\n' % pool_name +
                BURST_TIMEOUTS)
    for host in ('mgr-1', 'mgr-2', 'mgr-3'):
        managers([(pool_name, snapshot, 30)], host=host, coordination=True,
                 extra=uncapped)
    waiting.pool_ready(api, pool_name, 30, timeout=120)
    callers = [subprocess.Popen(
        [sys.executable, CLAIMER, managers.transport_url, pool_name,
         '50', '5'], stdout=subprocess.PIPE, text=True) for _ in range(4)]
    results = []
    for caller in callers:
        out, _ = caller.communicate(timeout=600)
        assert caller.returncode == 0
        results.extend(json.loads(out))
    errors = [r for r in results if 'error' in r]
    assert not errors, errors[:5]
    ids = [r['volume_id'] for r in results]
    assert len(ids) == 200
    assert len(set(ids)) == 200
    hits = sum(1 for r in results if r['source'] == 'pool')
    print('200 claims: %d from the pool, %d created' % (hits, 200 - hits))
    # None lost: after a sync Cinder's tagged volumes and the table agree.
    def agree():
        in_cinder = {v.id for v in tagged(cinder, pool_name)}
        rows = table(managers.db_url, pool_name)
        return (in_cinder == set(rows) and not in_cinder & set(ids) and
                all(s in ('available', 'creating') for s in rows.values()))
    waiting.wait_for(agree, timeout=60, what='Cinder and table agree')


@engines.ON_MARIADB
@pytest.mark.serial
def test_sync_follows_cinder(managers, api, cinder, snapshot, pool_name):
    manager = managers([(pool_name, snapshot, 4)])
    waiting.pool_ready(api, pool_name, 4)
    client = cinder.client()
    gone, broken, attached, kept = [v.id for v in tagged(cinder, pool_name)]
    # One sync must see all of it: one that saw only the broken volumes
    # would let replenish refill the pool, and the orphan would then be a
    # surplus, rightly deleted rather than adopted.  The orphan comes first:
    # a listing Cinder still builds as the block starts can only see it
    # creating, which sync leaves for later.
    with manager.paused(settle=3):
        # A tagged volume nobody recorded (a crash between create and
        # insert).
        orphan = client.volumes.create(
            1, snapshot_id=snapshot, name='orphan',
            metadata=vp_cinder.pool_tags(pool_name, None, 'lost-request',
                                         identity(managers.db_url)))
        client.volumes.delete(gone)
        client.volumes.reset_state(broken, 'error')
        attachment = client.attachments.create(attached, connector=None,
                                               instance_id=None)

    def settled():
        rows = table(managers.db_url, pool_name)
        return (gone not in rows and broken not in rows and
                attached not in rows and kept in rows and orphan.id in rows
                and len(rows) >= 4)
    waiting.wait_for(settled, timeout=60, what='sync settled')
    waiting.wait_for(lambda: _gone(client, broken), timeout=60,
                     what='errored volume deleted')
    assert vp_cinder.TAG_POOL not in client.volumes.get(attached).metadata
    waiting.pool_ready(api, pool_name, 4)
    client.attachments.delete(attachment['id'] if isinstance(
        attachment, dict) else attachment.id)


def _gone(client, volume_id):
    try:
        client.volumes.get(volume_id)
    except Exception as exc:
        return 'NotFound' in exc.__class__.__name__
    return False


def test_kill_9_loses_and_leaks_nothing(managers, api, cinder, snapshot,
                                        pool_name):
    first = managers([(pool_name, snapshot, 6)], host='mgr-a')
    waiting.wait_for(lambda: len(tagged(cinder, pool_name)) >= 2,
                     timeout=60, what='creates under way')
    first.kill()  # mid-replenish: rows and volumes in every state
    managers([(pool_name, snapshot, 6)], host='mgr-b')
    waiting.pool_ready(api, pool_name, 6)

    def consistent():
        in_cinder = {v.id for v in tagged(cinder, pool_name)}
        rows = table(managers.db_url, pool_name)
        return in_cinder == set(rows) and len(rows) == 6
    waiting.wait_for(consistent, timeout=60, what='no loss, no leak')


SYNC_SKIPPED = re.compile(r'Sync (of pool \S+ )?skipped')


@engines.ON_POSTGRESQL
def test_cinder_api_away_fails_claims_fast_and_recovers(
        managers, api, cinder, snapshot, pool_name):
    process = managers([(pool_name, snapshot, 2)])
    waiting.pool_ready(api, pool_name, 2)
    # Cinder API away: claims fail fast and typed, the manager lives on.
    skipped = len(SYNC_SKIPPED.findall(process.log()))
    cinder.stop_api()
    try:
        started = time.monotonic()
        with pytest.raises(exception.CinderUnavailable):
            api.claim(CTXT, pool_name)
        assert time.monotonic() - started < 30
        # A sync runs against the dead API, and the manager lives on.
        waiting.wait_for(
            lambda: len(SYNC_SKIPPED.findall(process.log())) > skipped,
            timeout=30, what='a sync against the dead API')
        assert process.alive()
    finally:
        cinder.start_api()
    assert api.claim(CTXT, pool_name)['source'] == 'pool'
    waiting.pool_ready(api, pool_name, 2)
    assert process.terminate() == 0


def test_broker_and_database_connections_cut_recover(
        managers, api, snapshot, pool_name):
    process = managers([(pool_name, snapshot, 2)])
    waiting.pool_ready(api, pool_name, 2)
    # Broker connections closed under the manager: it reconnects.
    _close_rabbit_connections(managers.transport_url)
    waiting.wait_for(lambda: _claim_ok(api, pool_name), timeout=60,
                     what='claim after broker reconnect')

    # Database connections killed: oslo.db reconnects.
    _kill_db_connections(managers.db_url)
    waiting.wait_for(lambda: _claim_ok(api, pool_name), timeout=60,
                     what='claim after database reconnect')
    assert process.alive()
    assert process.terminate() == 0


def _claim_ok(api, pool):
    try:
        return api.claim(CTXT, pool, timeout=10)['volume_id']
    except Exception:
        return None


def _close_rabbit_connections(transport_url):
    vhost = transport_url.rsplit('/', 1)[1]
    listing = subprocess.run(
        ['rabbitmqctl', '-q', 'list_connections', '-p', vhost, 'pid',
         'vhost', '--no-table-headers'],
        capture_output=True, text=True, timeout=60, check=True).stdout
    pids = [line.split()[0] for line in listing.splitlines()
            if line.strip() and line.split()[-1] == vhost]
    assert pids, 'no connection found on vhost %s' % vhost
    for pid in pids:
        subprocess.run(['rabbitmqctl', '-q', 'close_connection', pid,
                        'functional test'], capture_output=True, timeout=60)


def _kill_db_connections(db_url):
    url = sa.engine.make_url(db_url)
    admin = sa.create_engine(url.set(database='postgres' if
                                     url.get_backend_name() == 'postgresql'
                                     else 'mysql'))
    try:
        with admin.connect() as conn:
            if url.get_backend_name() == 'postgresql':
                killed = conn.execute(sa.text(
                    'SELECT pg_terminate_backend(pid) FROM pg_stat_activity '
                    'WHERE datname = :db AND pid <> pg_backend_pid()'),
                    {'db': url.database}).fetchall()
            else:
                ids = conn.execute(sa.text(
                    'SELECT id FROM information_schema.processlist '
                    'WHERE db = :db'), {'db': url.database}).scalars().all()
                for conn_id in ids:
                    conn.execute(sa.text('KILL %d' % int(conn_id)))
                killed = ids
        assert killed, 'no connection to kill on %s' % url.database
    finally:
        admin.dispose()


@engines.ON_POSTGRESQL
def test_quota_exceeded_backs_off(managers, api, cinder, snapshot,
                                  pool_name):
    """Cinder's 413 over quota: the pool waits instead of hammering."""
    project = uuid.uuid4().hex  # its own quota, not the other tests'
    client = cinder.client()
    client.quotas.update(project, volumes=2)
    managers([(pool_name, snapshot, 5)], project_id=project,
             extra='[volume_pool]\nbackoff_initial = 2\nbackoff_max = 8\n')
    waiting.pool_ready(api, pool_name, 2)
    # 15 replenish runs of 3 missing volumes each
    refused = cinder.refused_creates(project, 15)
    assert 1 <= refused <= 8, refused  # without backoff: about 45
    status = {p['name']: p for p in api.pool_status(CTXT)}[pool_name]
    assert status['reason'].startswith('backing off'), status['reason']
    assert 'VolumeLimitExceeded' in status['backoff']['last_error']
    claimed = api.claim(CTXT, pool_name, create_on_miss=False)
    assert claimed['source'] == 'pool'  # claims go on meanwhile
    client.quotas.update(project, volumes=50)
    waiting.pool_ready(api, pool_name, 5, timeout=60)
