"""What a periodic run costs, counted rather than timed: the database
statements, the coordination round trips and the Cinder requests of a
replenish run and of a sync follow the work to do, not the number of
pools."""

import pytest

from volume_pool import context as vp_context
from volume_pool.db import api as db_api
from volume_pool.fixtures import costs
from volume_pool.fixtures import seeding

CTXT = vp_context.get_admin_context()
# At most this many, whatever the pool count.
REPLENISH_MAX_QUERIES = 3
REPLENISH_MAX_ROUND_TRIPS = 2  # with a pool short; none without
SYNC_MAX_QUERIES = 5
# The lease pass reads the receipts it acts on in one statement, which
# spares a listing of Cinder's lease tags from its second run on.
SYNC_TASK_MAX_QUERIES = 13
LISTING = ('GET', '/volumes/detail')

# Every kind of pool a run treats apart: fixed, auto, idle shrink.
KINDS = [{'target': 2}, {'target': 'auto', 'max_ready': 2},
         {'target': 2, 'idle_ttl': 3600, 'min_ready': 1}]


def _full_pools(make_manager, simulator, count, **options):
    pools = {'p%03d' % i: dict(KINDS[i % len(KINDS)]) for i in range(count)}
    mgr = make_manager(pools, **options)
    for name, spec in mgr.specs.items():
        seeding.seed_pool(simulator, name, spec.snapshot_id, 2)
    # The first run publishes each pool's demand once (when this manager
    # first served it); the runs measured are the ones that follow.
    mgr.replenish(CTXT)
    mgr.sync(CTXT)
    simulator.reset_counts()
    return mgr


def _requests(simulator):
    return sum(simulator.request_counts.values())


@pytest.mark.parametrize('pools', [1, 40])
def test_a_replenish_run_with_nothing_short_reads_once(make_manager,
                                                       simulator, pools):
    mgr = _full_pools(make_manager, simulator, pools, max_total_gb=1000)
    with costs.statements() as statements:
        mgr.replenish(CTXT)
    assert len(statements) <= REPLENISH_MAX_QUERIES, statements
    assert _requests(simulator) == 0


@pytest.fixture
def coordinated(conf, coordination_url):
    """Managers that share their pools out on a tooz hash ring."""
    conf.set_override('backend_url', coordination_url, group='coordination')
    started = []

    def start(mgr):
        mgr.coordination.start()
        started.append(mgr.coordination)
        return mgr.coordination._coordinator
    yield start
    for member in started:
        member.stop()


@pytest.mark.parametrize('pools', [1, 40])
def test_the_ring_is_asked_once_a_run_and_only_when_needed(
        make_manager, simulator, coordinated, pools):
    mgr = _full_pools(make_manager, simulator, pools)
    coordinator = coordinated(mgr)
    with costs.coordination_calls(coordinator) as full_run:
        mgr.replenish(CTXT)
    with costs.coordination_calls(coordinator) as sync_run:
        mgr.sync(CTXT)
    # One pool short: the ring once, then that pool's lock.
    row = db_api.get_rows(None, pool='p000')[0]
    db_api.delete_row(row.id, status=row.status)
    with costs.coordination_calls(coordinator) as short_run:
        mgr.replenish(CTXT)
    assert full_run == []
    assert sync_run == ['get_members']
    assert short_run == ['get_members', 'get_lock']
    assert len(short_run) <= REPLENISH_MAX_ROUND_TRIPS


@pytest.mark.parametrize('pools', [1, 40])
def test_a_sync_is_one_read_and_one_listing(make_manager, simulator,
                                            pools):
    mgr = _full_pools(make_manager, simulator, pools)
    with costs.statements() as statements:
        report = mgr.syncer.run(mgr.specs, mgr.cluster)
    assert not [k for k, v in report.as_dict().items() if v]
    assert len(statements) <= SYNC_MAX_QUERIES, statements
    assert simulator.request_counts == {LISTING: 1}


@pytest.mark.parametrize('pools', [1, 40])
def test_a_sync_with_nothing_changed_is_one_read_and_one_empty_listing(
        make_manager, simulator, pools):
    # Between two full listings: the changes since the last listing, in
    # one request (Cinder builds no volume for it, and counts nothing).
    mgr = _full_pools(make_manager, simulator, pools,
                      full_sync_interval=600)
    simulator.age_volumes(3600)
    mgr.syncer.run(mgr.specs, mgr.cluster)  # the first sync lists in full
    simulator.reset_counts()
    with costs.statements() as statements:
        report = mgr.syncer.run(mgr.specs, mgr.cluster)
    assert not [k for k, v in report.as_dict().items() if v]
    assert len(statements) <= SYNC_MAX_QUERIES, statements
    assert simulator.request_counts == {LISTING: 1}
    query, = simulator.list_queries
    assert query['updated_at'].startswith('gte:')
    assert 'with_count' not in query
    assert simulator.last_listed == 0


def test_a_sync_pages_the_cluster_listing(make_manager, simulator):
    # 30 pools x 2 volumes on pages of 25: three pages, not 30 listings.
    mgr = _full_pools(make_manager, simulator, 30)
    mgr.conf.set_override('list_page_size', 25, group='cinder')
    mgr.syncer._cinder._page_size = 25
    mgr.syncer.run(mgr.specs, mgr.cluster)
    assert simulator.request_counts == {LISTING: 3}


@pytest.mark.parametrize('pools', [1, 40])
def test_the_whole_sync_task_costs_what_one_pool_costs(make_manager,
                                                       simulator, pools):
    # Beside the sync: the lease pass (its listing), the count that says
    # which pools to trim or shrink, the demand read, the purges, and the
    # database clock some of them read.
    mgr = _full_pools(make_manager, simulator, pools)
    with costs.statements() as statements:
        mgr.sync(CTXT)
    assert len(statements) <= SYNC_TASK_MAX_QUERIES, statements
    assert simulator.request_counts == {LISTING: 2}


def test_a_refused_page_starts_the_cluster_listing_again(make_manager,
                                                         simulator):
    # A page whose marker was deleted meanwhile: Cinder answers 400.
    mgr = _full_pools(make_manager, simulator, 30)
    simulator.inject_fault(status=400, method='GET', path='/volumes/detail')
    report = mgr.syncer.run(mgr.specs, mgr.cluster)
    assert report.errors == 0
    assert simulator.request_counts == {LISTING: 2}


def test_an_unavailable_cinder_is_not_asked_twice(make_manager, simulator):
    mgr = _full_pools(make_manager, simulator, 30)
    simulator.inject_fault(status=503, method='GET', path='/volumes/detail')
    report = mgr.syncer.run(mgr.specs, mgr.cluster)
    assert report.errors == 1
    assert simulator.request_counts == {LISTING: 1}


def test_a_few_pools_are_listed_alone(make_manager, simulator):
    # 50 volumes of a pool nobody configures, with no row: the cluster's
    # listing would carry them; the two pools' own listings do not.
    mgr = _full_pools(make_manager, simulator, 2)
    seeding.seed_pool(simulator, 'gone', simulator.add_snapshot(), 50)
    for row in db_api.get_rows(None, pool='gone'):
        db_api.delete_row(row.id, status=row.status)
    report = mgr.syncer.run(mgr.specs, mgr.cluster)
    assert not [k for k, v in report.as_dict().items() if v]
    assert simulator.request_counts == {LISTING: 2}


def test_a_manager_that_owns_no_pool_lists_nothing(make_manager, simulator):
    mgr = _full_pools(make_manager, simulator, 3)
    with costs.statements() as statements:
        mgr.syncer.run(mgr.specs, mgr.cluster, owns=lambda pool: False)
    assert len(statements) == 1
    assert simulator.request_counts == {}
