"""``[pool:NAME] max_miss_creates``: the creates on a miss a manager runs
at once per pool, so a burst of misses cannot use up the Cinder quota."""

import concurrent.futures
import threading

import pytest
import sqlalchemy as sa

from volume_pool import cinder as vp_cinder
from volume_pool import exception
from volume_pool import pool_spec
from volume_pool.db import api as db_api
from volume_pool.db import models
from volume_pool.fixtures import waiting
from volume_pool.tests.conftest import cinder_section
from volume_pool.tests.unit.manager_steps import call
from volume_pool.tests.unit.manager_steps import fill
from volume_pool.tests.unit.manager_steps import held_past_its_deadline

SNAP = '6f1c1a3e-0d8e-4c54-9a43-8f0a3a2f7e11'
# Seconds a test waits for claims that must already have answered.
WAIT = 30


def empty_pool(make_manager, cap, target=0, **options):
    return make_manager({'debian': {'target': target,
                                    'max_miss_creates': cap}}, **options)


def running(mgr):
    return mgr.claimer._miss_creates.running(mgr.specs['debian'])


def held_receipts():
    """Receipts of claims still running: none once every claim answered."""
    table = models.ClaimReceipt
    with db_api.reader() as session:
        return list(session.execute(sa.select(table).where(
            table.state == models.R_CLAIMING)).scalars())


def gate_creates(mgr, monkeypatch):
    """Creates wait for the returned event: they hold their slot until the
    test lets them go.  Returns (event, the number of creates started)."""
    opened = threading.Event()
    started = []
    create = mgr.claimer._cinder.create_volume

    def gated(**kwargs):
        started.append(kwargs['name'])
        assert opened.wait(WAIT), 'the test never let creates go'
        return create(**kwargs)

    monkeypatch.setattr(mgr.claimer._cinder, 'create_volume', gated)
    return opened, started


def burst(mgr, claims, opened, refused_expected):
    """Run ``claims`` (kwargs of each claim) at once; let the creates go
    once ``refused_expected`` claims were refused.  Returns the results
    and the errors, in the order of ``claims``."""
    barrier = threading.Barrier(len(claims))

    def one(kwargs):
        barrier.wait()
        return call(mgr.claim, 'debian', **kwargs)

    with concurrent.futures.ThreadPoolExecutor(len(claims)) as executor:
        futures = [executor.submit(one, kwargs) for kwargs in claims]
        refused = 0
        for future in concurrent.futures.as_completed(futures, WAIT):
            assert isinstance(future.exception(), exception.PoolEmpty), (
                'a claim past the cap must be refused while the others '
                'create: %r' % future.exception())
            refused += 1
            if refused == refused_expected:
                break
        opened.set()
        concurrent.futures.wait(futures, WAIT)
    return ([f.result() for f in futures if not f.exception()],
            [f.exception() for f in futures if f.exception()])


def test_burst_beyond_the_cap_creates_cap_volumes(make_manager, simulator,
                                                  monkeypatch):
    mgr = empty_pool(make_manager, cap=2)
    opened, started = gate_creates(mgr, monkeypatch)
    claims = [{'name': 'vnf-%d' % n, 'claim_key': 'key-%d' % n}
              for n in range(7)]
    created, errors = burst(mgr, claims, opened, refused_expected=5)

    assert len(started) == 2
    assert [r['source'] for r in created] == ['created', 'created']
    assert len(errors) == 5
    for error in errors:
        assert type(error) is exception.PoolEmpty
        assert 'miss-create cap is reached' in str(error)
        assert '[pool:debian] max_miss_creates' in str(error)
    # Nothing leaked: Cinder holds the two volumes, the callers' and
    # untagged; the table holds no row and no running claim.
    volumes = simulator.list_volumes()
    assert sorted(v['id'] for v in volumes) == sorted(
        r['volume_id'] for r in created)
    assert sorted(v['name'] for v in volumes) == sorted(
        r['name'] for r in created)
    assert not [v for v in volumes
                if vp_cinder.TAG_POOL in v['metadata']]
    assert db_api.get_rows(None) == []
    assert held_receipts() == []
    assert running(mgr) == 0


def test_refused_key_can_be_used_again(make_manager, simulator,
                                       monkeypatch):
    mgr = empty_pool(make_manager, cap=1)
    opened, _started = gate_creates(mgr, monkeypatch)
    claims = [{'name': 'first', 'claim_key': 'first'},
              {'name': 'second', 'claim_key': 'second'}]
    created, errors = burst(mgr, claims, opened, refused_expected=1)
    assert len(created) == len(errors) == 1
    refused_key = ({'first', 'second'} - {created[0]['claim_key']}).pop()
    retried = call(mgr.claim, 'debian', name=refused_key,
                   claim_key=refused_key)
    assert retried['source'] == 'created'
    assert len(simulator.list_volumes()) == 2


@pytest.mark.parametrize('status, error, left_to_sync', [
    (400, exception.CinderRequestRejected, []),
    (413, exception.CinderQuotaExceeded, []),
    # Cinder may or may not have created it: the row waits for sync.
    (500, exception.CinderUnavailable, [models.UNCERTAIN]),
])
def test_failed_create_frees_its_slot(make_manager, simulator, status,
                                      error, left_to_sync):
    mgr = empty_pool(make_manager, cap=1)
    simulator.inject_fault(status=status, method='POST', path='^/volumes$')
    with pytest.raises(error):
        call(mgr.claim, 'debian', name='vnf-failed')
    assert running(mgr) == 0
    result = call(mgr.claim, 'debian', name='vnf-next')
    assert result['source'] == 'created'
    assert [v['id'] for v in simulator.list_volumes()] == [
        result['volume_id']]
    assert [r.status for r in db_api.get_rows(None)] == left_to_sync
    assert len(held_receipts()) == len(left_to_sync)


def test_timed_out_create_frees_its_slot(make_manager, simulator,
                                         monkeypatch):
    mgr = empty_pool(make_manager, cap=1)
    create = mgr.claimer._cinder.create_volume
    entered, answer = threading.Event(), threading.Event()

    def late(**kwargs):
        entered.set()
        assert answer.wait(WAIT), 'the test never let the create answer'
        return create(**kwargs)

    monkeypatch.setattr(mgr.claimer._cinder, 'create_volume', late)
    with concurrent.futures.ThreadPoolExecutor(1) as executor:
        claim = executor.submit(call, mgr.claim, 'debian', name='vnf-late',
                                time_left=1.0)
        assert entered.wait(WAIT)
        # Cinder answers only once the claim's time is up.
        waiting.wait_for(held_past_its_deadline, timeout=WAIT,
                         what="the claim's deadline passed")
        answer.set()
        with pytest.raises(exception.ClaimTimedOut):
            claim.result(WAIT)
    assert running(mgr) == 0
    monkeypatch.setattr(mgr.claimer._cinder, 'create_volume', create)
    # The late volume went back to the pool: the next claim takes it, the
    # one after is a miss again and may create.
    sources = [call(mgr.claim, 'debian')['source'] for _ in range(2)]
    assert sources == ['pool', 'created']


def test_zero_never_creates_on_a_miss(make_manager, simulator):
    mgr = empty_pool(make_manager, cap=0, target=1)
    fill(mgr)
    assert call(mgr.claim, 'debian', name='hit')['source'] == 'pool'
    claimed = simulator.list_volumes()
    with pytest.raises(exception.PoolEmpty) as info:
        call(mgr.claim, 'debian', name='miss', claim_key='k-miss')
    assert '[pool:debian] max_miss_creates' in str(info.value)
    assert 'a miss never creates' in str(info.value)
    assert simulator.list_volumes() == claimed
    assert [r.volume_id for r in db_api.get_rows(None)] == []
    assert held_receipts() == []


def test_without_create_on_miss_the_message_is_unchanged(make_manager):
    mgr = empty_pool(make_manager, cap=0)
    with pytest.raises(exception.PoolEmpty) as info:
        call(mgr.claim, 'debian', create_on_miss=False)
    assert 'create_on_miss is false' in str(info.value)


def test_cap_is_reloaded(make_manager, conf):
    mgr = empty_pool(make_manager, cap=4)
    conf.set_override('max_miss_creates', 0, group='pool:debian')
    mgr.reset()
    with pytest.raises(exception.PoolEmpty):
        call(mgr.claim, 'debian')
    conf.set_override('max_miss_creates', 1, group='pool:debian')
    mgr.reset()
    assert call(mgr.claim, 'debian')['source'] == 'created'


# -- the option --------------------------------------------------------------

@pytest.fixture
def pool_config(simulator):
    def _text(extra=''):
        return ('[volume_pool]\nenabled_pools = debian\n%s[pool:debian]\n'
                'snapshot_id = %s\n%s'
                % (cinder_section(simulator), SNAP, extra))
    return _text


def test_default_cap(write_config, conf, pool_config):
    write_config(pool_config())
    assert pool_spec.load_specs(conf)['debian'].max_miss_creates == 10


@pytest.mark.parametrize('value', ['-1', 'many'])
def test_bad_cap_names_the_option(write_config, conf, pool_config, value):
    write_config(pool_config('max_miss_creates = %s\n' % value))
    with pytest.raises(exception.ConfigError) as info:
        pool_spec.load_specs(conf)
    assert '[pool:debian] max_miss_creates' in str(info.value)
    assert '\n' not in str(info.value)


def test_cluster_section_overrides_the_cap(write_config, conf,
                                           pool_config):
    write_config('[DEFAULT]\ncluster = east\n' +
                 pool_config('max_miss_creates = 2\n') +
                 '[pool:debian@east]\nmax_miss_creates = 0\n')
    assert pool_spec.load_specs(conf)['debian'].max_miss_creates == 0
