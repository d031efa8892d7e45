"""Operations that must stay safe, on the real services: a coordination
backend away at start-up, a pool gone from the configuration, calls to the
manager's internals over the bus, claims into a project nobody allowed, and
hostile input.  Each test asserts what Cinder and the tables hold after, not
what a log says.  One database is enough: none of this depends on it."""

import json
import time
import uuid

from oslo_config import cfg
import oslo_messaging as messaging
import pytest
import sqlalchemy as sa

from volume_pool import cinder as vp_cinder
from volume_pool import context as vp_context
from volume_pool import exception
from volume_pool import rpc
from volume_pool.fixtures import waiting
from volume_pool.tests import services
from volume_pool.tests.functional import engines
from volume_pool.tests.functional.test_pool_policy_real import as_project
from volume_pool.tests.functional.test_real_peers import table
from volume_pool.tests.functional.test_real_peers import tagged

# MariaDB only: these behaviours do not depend on the database.
pytestmark = engines.ON_MARIADB

CTXT = vp_context.RequestContext()
SYNC_LINE = 'Sync: '
# What the dispatcher answers for a method the endpoint does not expose.
REFUSED = ('NoSuchMethod', 'UnsupportedVersion')


@pytest.fixture
def bus(api, managers):
    """A bare oslo.messaging client on the managers' topic, as any process
    on the bus could make one: no checks of volume_pool.rpcapi on the way.
    (``api`` first: it parses the global CONF the transport needs.)"""
    transport = messaging.get_rpc_transport(
        cfg.CONF, url=managers.transport_url,
        allowed_remote_exmods=rpc.ALLOWED_EXMODS)
    yield messaging.get_rpc_client(
        transport, messaging.Target(topic=rpc.TOPIC, version='1.4'),
        timeout=30)
    transport.cleanup()


def _query(db_url, sql, **params):
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql), params)]
    finally:
        engine.dispose()


def rows(db_url, pool):
    """The pool's rows as a comparable set, every column that matters."""
    return set(_query(
        db_url, 'SELECT volume_id, request_id, name, status, snapshot_id, '
                'host, claim_id FROM pool_volumes WHERE pool = :pool',
        pool=pool))


def receipts(db_url, pool):
    return set(_query(
        db_url, 'SELECT claim_key, state, volume_id FROM claim_receipts '
                'WHERE pool = :pool', pool=pool))


def incarnations(db_url):
    return set(_query(db_url, 'SELECT host, incarnation, heartbeat_at, '
                              'stopped_at FROM managers'))


def in_cinder(cinder, pool):
    """The pool's tagged volumes: id -> (status, name, metadata)."""
    return {v.id: (v.status, v.name, dict(v.metadata))
            for v in tagged(cinder, pool)}


def status_of(api, pool):
    """The pool's pool_status entry, or None while no manager answers."""
    try:
        listing = api.pool_status(CTXT, timeout=5)
    except messaging.MessagingTimeout:
        return None
    return {p['name']: p for p in listing}.get(pool)


def settled(cinder, db_url, pool, count):
    """Cinder and the table agree on ``count`` available volumes."""
    volumes = in_cinder(cinder, pool)
    return (len(volumes) == count and
            table(db_url, pool) == dict.fromkeys(volumes, 'available') and
            all(v[0] == 'available' for v in volumes.values()))


def syncs(process, offset=0):
    """Sync runs the process logged after ``offset`` in its log."""
    return process.log()[offset:].count(SYNC_LINE)


def _status(client, volume_id):
    """The volume's status in Cinder; None once it is gone."""
    try:
        return client.volumes.get(volume_id).status
    except Exception as exc:
        if 'NotFound' in exc.__class__.__name__:
            return None
        raise


def _gone(client, volume_id):
    return _status(client, volume_id) is None


# -- a coordination backend away when the manager starts ----------------


def test_redis_down_at_start_serves_claims_then_joins(
        managers, api, cinder, snapshot, pool_name, tmp_path):
    """Down before the first join: claims go on, pool_status names the
    outage instead of blaming another manager, and once Redis is up the
    same process joins and fills the pool."""
    redis = services.PrivateRedis(tmp_path)
    redis.start()
    redis.stop()  # its port: nothing listens there now
    try:
        process = managers([(pool_name, snapshot, 2)],
                           coordination=redis.url)
        status = waiting.wait_for(lambda: status_of(api, pool_name),
                                  timeout=60, what='manager answers')
        assert status['reason'].startswith(
            'coordination backend unreachable'), status['reason']
        assert 'another manager' not in status['reason']
        # Never joined: it owns nothing yet, so nothing was created.
        assert status['ready'] == 0
        assert in_cinder(cinder, pool_name) == {}

        claimed = api.claim(CTXT, pool_name, name='vnf-no-redis')
        assert claimed['source'] == 'created'
        volume = cinder.client().volumes.get(claimed['volume_id'])
        assert volume.name == 'vnf-no-redis'
        assert vp_cinder.TAG_POOL not in volume.metadata
        with pytest.raises(exception.PoolEmpty):
            api.claim(CTXT, pool_name, create_on_miss=False)
        # Still the outage, several membership refreshes later.
        offset = len(process.log())
        waiting.wait_for(lambda: syncs(process, offset) >= 2, timeout=30,
                         what='two more sync runs')
        status = status_of(api, pool_name)
        assert status['reason'].startswith(
            'coordination backend unreachable'), status['reason']
        assert table(managers.db_url, pool_name) == {}

        redis.start()
        back = time.monotonic()
        waiting.pool_ready(api, pool_name, 2, timeout=90)
        print('joined and filled %.1fs after Redis started'
              % (time.monotonic() - back))
        waiting.wait_for(
            lambda: settled(cinder, managers.db_url, pool_name, 2),
            timeout=60, what='Cinder and table agree on 2')
        assert status_of(api, pool_name)['reason'] == 'full'
        assert claimed['volume_id'] not in in_cinder(cinder, pool_name)
        assert api.get_usable_hosts(CTXT) == ['mgr-1']
        # The same process all along: no restart did it.
        assert process.alive()
        assert process.log().count('Starting volume-pool-manager') == 1
        assert 'Joined coordination group' in process.log()
    finally:
        redis.stop()


# -- a pool gone from the configuration -----------------------------------


def _restart(managers, process, pools, extra=''):
    """Stop ``process`` gracefully and start its host again on a new
    config; returns the new process and where its log starts."""
    if process.alive():
        assert process.terminate() == 0
    offset = len(process.log())
    return managers(pools, host=process.name, sync_interval=1,
                    extra=extra), offset


def _pool_list(process):
    listing = process.manage('pool', 'list', '--format', 'json')
    assert listing.returncode == 0, listing.stderr
    return {row['name']: row for row in json.loads(listing.stdout)}


def _filled(managers, api, cinder, snapshot, pool_name):
    """A manager whose pool of 2 is full and synced; returns it, the
    pool's volumes in Cinder and its rows."""
    process = managers([(pool_name, snapshot, 2)], sync_interval=1)
    waiting.pool_ready(api, pool_name, 2)
    waiting.wait_for(lambda: settled(cinder, managers.db_url, pool_name, 2),
                     timeout=60, what='Cinder and table agree on 2')
    return (process, in_cinder(cinder, pool_name),
            rows(managers.db_url, pool_name))


def test_pool_removed_from_config_keeps_its_volumes(
        managers, api, cinder, snapshot, pool_name):
    """Dropped from enabled_pools, or renamed by a typo: its volumes and
    rows stay through many syncs, until the operator drains it."""
    section = '[pool:%s]\nsnapshot_id = %s\ntarget = 2\n' % (pool_name,
                                                           snapshot)
    process, volumes, kept = _filled(managers, api, cinder, snapshot,
                                     pool_name)

    # A typo in enabled_pools alone: start-up stops, naming the option.
    typo = pool_name[:-1] + 'x'
    process, _ = _restart(managers, process, [(pool_name, snapshot, 2)],
                          extra='[volume_pool]\nenabled_pools = %s\n' % typo)
    assert process.proc.wait(timeout=60) == 2
    refusal = [line for line in process.log().splitlines()
               if line.startswith('volume-pool-manager: ')]
    assert refusal and 'enabled_pools' in refusal[-1] and typo in \
        refusal[-1], refusal

    # Removed from enabled_pools, its section left behind.
    process, offset = _restart(managers, process, [], extra=section)
    waiting.wait_for(lambda: syncs(process, offset) >= 4, timeout=60,
                     what='four sync runs without the pool')
    assert in_cinder(cinder, pool_name) == volumes
    assert rows(managers.db_url, pool_name) == kept
    listed = _pool_list(process)[pool_name]
    assert listed['configured'] is False
    assert listed['reason'].startswith('not configured'), listed
    assert 'pool drain %s' % pool_name in listed['reason']
    assert (listed['ready'], listed['stale']) == (2, 0)

    # A typo in both the list and the section: another pool is served.
    process, offset = _restart(managers, process, [(typo, snapshot, 1)])
    waiting.pool_ready(api, typo, 1)
    waiting.wait_for(lambda: syncs(process, offset) >= 4, timeout=60,
                     what='four sync runs with the misspelt pool')
    assert in_cinder(cinder, pool_name) == volumes
    assert rows(managers.db_url, pool_name) == kept
    assert len(in_cinder(cinder, typo)) == 1
    listed = _pool_list(process)
    assert listed[pool_name]['configured'] is False
    assert listed[typo]['reason'] == 'full'

    # The operator's drain is what deletes them.
    drained = process.manage('pool', 'drain', pool_name)
    assert drained.returncode == 0, drained.stderr
    assert 'Pool %s: 2 volumes deleted, 0 deletes failed' % pool_name in \
        drained.stdout
    client = cinder.client()
    waiting.wait_for(
        lambda: (all(_gone(client, v) for v in volumes) and
                 not rows(managers.db_url, pool_name)),
        timeout=60, what='drained volumes and rows gone')
    assert pool_name not in _pool_list(process)
    assert len(in_cinder(cinder, typo)) == 1


def test_pool_renamed_in_case_only_keeps_its_volumes(
        managers, api, cinder, snapshot, pool_name):
    """A typo in case only: Cinder's metadata filter and MariaDB take the
    one name for the other, so the manager refuses to start, in one line,
    and the old pool's volumes stay."""
    process, volumes, kept = _filled(managers, api, cinder, snapshot,
                                     pool_name)
    process, offset = _restart(managers, process,
                               [(pool_name.upper(), snapshot, 1)])
    assert process.proc.wait(timeout=60) == 2
    refusal = [line for line in process.log()[offset:].splitlines()
               if line.startswith('volume-pool-manager: ')]
    assert refusal and 'differs only in case' in refusal[-1], refusal
    assert in_cinder(cinder, pool_name) == volumes
    assert rows(managers.db_url, pool_name) == kept


# -- only the API on the bus ------------------------------------------------


INTERNALS = [
    ('sync', {}), ('replenish', {}),
    ('run_periodic_tasks', {'raise_on_error': True}),
    ('refresh_membership', {}), ('drain', {'timeout': 0}),
    ('init_host', {}), ('cleanup_host', {}), ('reset', {}),
    ('heartbeat', {}), ('prepare_for_shutdown', {}),
    # The endpoint's own insides.
    ('_manager', {}), ('__init__', {'manager': None}),
]


def test_manager_internals_are_not_callable_over_rpc(
        managers, api, bus, cinder, snapshot, pool_name):
    """Every internal refused by the dispatcher, and none ran: each one,
    had it run, would have changed what the table or Cinder holds."""
    # No periodic task and no heartbeat between the snapshots below: any
    # change can only come from a call that got through.
    managers([(pool_name, snapshot, 2)], sync_interval=-1,
             extra='[volume_pool]\nreplenish_interval = -1\n'
                   'heartbeat_interval = 600\nservice_down_time = 1200\n')
    waiting.wait_for(lambda: status_of(api, pool_name), timeout=60,
                     what='manager answers')
    assert api.refill(CTXT, pool_name) == 2
    waiting.pool_ready(api, pool_name, 2)
    api.claim(CTXT, pool_name)
    # The table still counts this one ready: sync would delete it and
    # drop its row, replenish would see the pool short and create one.
    (broken,) = in_cinder(cinder, pool_name)
    client = cinder.client()
    client.volumes.reset_state(broken, 'error')
    before = (in_cinder(cinder, pool_name), rows(managers.db_url, pool_name),
              incarnations(managers.db_url))
    assert before[0][broken][0] == 'error'

    for version in ('1.0', '1.4'):
        cctxt = bus.prepare(version=version)
        for method, kwargs in INTERNALS:
            with pytest.raises(messaging.RemoteError) as info:
                cctxt.call({}, method, **kwargs)
            assert info.value.exc_type in REFUSED, (method, info.value)
        # The same client reaches the API: the refusals were answers.
        assert pool_name in {p['name'] for p in
                             cctxt.call({}, 'pool_status', cluster=None)}

    assert (in_cinder(cinder, pool_name), rows(managers.db_url, pool_name),
            incarnations(managers.db_url)) == before
    # Its workers still run (no cleanup_host got through): a refill
    # through the API creates the volume the table lacks.
    assert api.refill(CTXT, pool_name) == 1
    waiting.wait_for(lambda: len(table(managers.db_url, pool_name)) == 2 and
                     set(table(managers.db_url, pool_name).values()) ==
                     {'available'}, timeout=60, what='refilled')
    client.volumes.delete(broken)


# -- a claim into a project nobody allowed --------------------------------


def test_claim_into_an_unlisted_project_moves_nothing(
        managers, api, cinder, snapshot, pool_name):
    allowed, other = uuid.uuid4().hex, uuid.uuid4().hex
    managers([(pool_name, snapshot, 2)],
             extra='[volume_pool]\nclaim_projects = %s\n' % allowed)
    waiting.pool_ready(api, pool_name, 2)
    waiting.wait_for(lambda: settled(cinder, managers.db_url, pool_name, 2),
                     timeout=60, what='Cinder and table agree on 2')
    before = (in_cinder(cinder, pool_name), rows(managers.db_url, pool_name),
              receipts(managers.db_url, pool_name))

    for key in (None, 'into-%s' % other):
        with pytest.raises(exception.ProjectNotAllowed) as info:
            api.claim(CTXT, pool_name, name='vnf-refused', project_id=other,
                      claim_key=key)
        assert other in exception.first_line(info.value)

    assert (in_cinder(cinder, pool_name), rows(managers.db_url, pool_name),
            receipts(managers.db_url, pool_name)) == before
    assert as_project(cinder, other).volumes.list() == []
    assert cinder.client().transfers.list() == []
    assert 'vnf-refused' not in {v.name for v in
                                 cinder.client().volumes.list()}
    # The listed project is served by the same manager: the refusal was
    # the policy, not a broken transfer.
    result = api.claim(CTXT, pool_name, project_id=allowed)
    assert result['project_id'] == allowed
    assert [v.id for v in as_project(cinder, allowed).volumes.list()] == [
        result['volume_id']]


# -- hostile input ----------------------------------------------------------


MEGABYTE = 'x' * (1 << 20)
CONTROL = '\x00\n'


def test_bad_input_is_refused_short_and_changes_nothing(
        managers, api, bus, cinder, snapshot, pool_name):
    """Checked by the manager itself (the bare client skips the checks of
    volume_pool.rpcapi); the answer quotes a short prefix only."""
    process = managers([(pool_name, snapshot, 2)])
    waiting.pool_ready(api, pool_name, 2)
    waiting.wait_for(lambda: settled(cinder, managers.db_url, pool_name, 2),
                     timeout=60, what='Cinder and table agree on 2')
    before = (in_cinder(cinder, pool_name), rows(managers.db_url, pool_name),
              receipts(managers.db_url, pool_name))
    log_size = len(process.log())

    cctxt = bus.prepare(version='1.4')
    for kwargs in ({'snapshot_type': MEGABYTE},
                   {'snapshot_type': pool_name, 'name': MEGABYTE},
                   {'snapshot_type': CONTROL},
                   {'snapshot_type': pool_name, 'name': CONTROL},
                   {'snapshot_type': pool_name, 'name': CONTROL,
                    'claim_key': str(uuid.uuid4()), 'time_left': 20}):
        with pytest.raises(exception.InvalidClaimRequest) as info:
            cctxt.call({}, 'claim', **kwargs)
        assert type(info.value).__name__.endswith('_Remote')  # its answer
        # The manager's message, then its traceback: neither carries the
        # megabyte.
        assert len(info.value.message) < 300, info.value.message[:400]
        assert len(exception.first_line(info.value)) < 300
        assert 'x' * 200 not in str(info.value)
        # The controller's client refuses the same before sending.
        kwargs.pop('time_left', None)
        with pytest.raises(exception.InvalidClaimRequest) as info:
            api.claim(CTXT, **kwargs)
        assert len(str(info.value)) < 300

    assert (in_cinder(cinder, pool_name), rows(managers.db_url, pool_name),
            receipts(managers.db_url, pool_name)) == before
    names = {v.name for v in cinder.client().volumes.list()}
    assert not [n for n in names if n and ('\x00' in n or 'x' * 200 in n)]
    grown = process.log()[log_size:]
    assert len(grown) < 20000 and 'x' * 200 not in grown


