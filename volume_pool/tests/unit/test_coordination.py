"""Membership and pool ownership through tooz's Redis driver: on a Redis
served in this process here, on the machine's Redis (and a redis-server
of the test's own) when the functional layer re-collects these tests."""

import time
import uuid

from oslo_config import cfg
import pytest
from redis import exceptions as redis_exc
from tooz import coordination as tooz_coordination

from volume_pool import conf as vp_conf
from volume_pool import coordination
from volume_pool.fixtures import waiting

# The functional layer runs these again on the real services.
pytestmark = pytest.mark.recollect

POOLS = ['pool-%d' % n for n in range(24)]
# The least the option allows: a member that stops beating is out soonest.
MEMBERSHIP_TIMEOUT = 2


# Every conf of the test, reset after it: ConfigOpts that register the
# same option objects share their overrides, so one left set would reach
# the next test's manager (oslo.config keeps them on the options).
_CONFS = []


@pytest.fixture(autouse=True)
def reset_confs():
    yield
    while _CONFS:
        _CONFS.pop().reset()


def _conf(host, cluster, url):
    conf = cfg.ConfigOpts()
    _CONFS.append(conf)
    vp_conf.default.register_opts(conf)
    vp_conf.coordination.register_opts(conf)
    conf([], project='volume-pool-test')
    conf.set_override('host', host)
    conf.set_override('cluster', cluster)
    conf.set_override('backend_url', url, group='coordination')
    conf.set_override('membership_timeout', MEMBERSHIP_TIMEOUT,
                      group='coordination')
    return conf


@pytest.fixture
def members(coordination_url):
    cluster = 'test-%s' % uuid.uuid4().hex[:8]
    started = []

    def _start(host):
        member = coordination.Coordination(
            _conf(host, cluster, coordination_url))
        member.start()
        started.append(member)
        return member
    _start.cluster = cluster
    yield _start
    for member in started:
        member.stop()


def test_pools_are_shared_out_without_overlap(members):
    one, two = members('mgr-1'), members('mgr-2')
    one.refresh()
    assert one.get_usable_hosts() == ['mgr-1', 'mgr-2']
    mine = {p for p in POOLS if one.owns(p)}
    theirs = {p for p in POOLS if two.owns(p)}
    assert mine and theirs
    assert not mine & theirs
    assert mine | theirs == set(POOLS)


def test_a_member_that_leaves_hands_over_its_pools(members):
    one, two = members('mgr-1'), members('mgr-2')
    two.stop()
    one.refresh()
    assert one.get_usable_hosts() == ['mgr-1']
    assert all(one.owns(p) for p in POOLS)


def test_other_clusters_are_separate(members, coordination_url):
    members('mgr-1')
    # A member of the cluster-less group must not count in any cluster.
    unclustered = coordination.Coordination(
        _conf('mgr-0', None, coordination_url))
    unclustered.start()
    other = coordination.Coordination(
        _conf('mgr-9', members.cluster + '-b', coordination_url))
    other.start()
    try:
        other.refresh()
        assert other.get_usable_hosts() == ['mgr-9']
        assert other.get_usable_hosts(members.cluster) == ['mgr-1']
        listed = coordination.list_clusters(
            _conf('cli', None, coordination_url), [members.cluster])
        assert [m['host'] for m in listed[members.cluster]] == ['mgr-1']
    finally:
        other.stop()
        unclustered.stop()


def test_a_cluster_group_deleted_while_listed_is_no_outage(members):
    member = members('mgr-1')
    gone = coordination.group_id('gone-cluster')
    listed = member._coordinator.get_groups

    class Listing:
        def get(self):
            return [*listed().get(), gone]
    member._coordinator.get_groups = Listing
    try:
        member.refresh()
    finally:
        del member._coordinator.get_groups
    assert not member.degraded
    assert member.get_usable_hosts() == ['mgr-1']
    assert member.get_usable_hosts('gone-cluster') == []


def test_pool_lock_is_exclusive(members):
    one, two = members('mgr-1'), members('mgr-2')
    with one.pool_lock('debian') as got:
        assert got
        with two.pool_lock('debian') as also:
            assert not also
    with two.pool_lock('debian') as got_after:
        assert got_after


def test_a_lock_whose_release_failed_is_released_at_the_next_replenish(
        members, monkeypatch):
    """The backend keeps a lock its holder failed to release (the
    coordinator's heartbeat refreshes it): the pool would never be
    replenished again by anyone.  The holder uses it and releases it at
    the pool's next replenish."""
    one, two = members('mgr-1'), members('mgr-2')
    real_get_lock = one._coordinator.get_lock
    failing = []

    def get_lock(name):
        lock = real_get_lock(name)
        release = lock.release

        def release_once():
            if not failing:
                failing.append(lock)
                raise redis_exc.ConnectionError('backend away')
            return release()
        lock.release = release_once
        return lock
    monkeypatch.setattr(one._coordinator, 'get_lock', get_lock)
    with one.pool_lock('debian') as got:
        assert got
    with two.pool_lock('debian') as other:
        assert not other  # still held: its release failed
    with one.pool_lock('debian') as again:
        assert again  # the same lock, still this manager's
    assert not failing[0].acquired
    with two.pool_lock('debian') as other:
        assert other


def test_a_manager_of_no_cluster_joins_and_locks_under_its_key(
        coordination_url, monkeypatch):
    """What a manager with no cluster sends: the names
    test_no_cluster.py pins."""
    member = coordination.Coordination(_conf('mgr-0', None,
                                             coordination_url))
    member.start()
    try:
        group = coordination.group_id(None)
        assert b'mgr-0' in member._coordinator.get_members(group).get()
        taken = []
        get_lock = member._coordinator.get_lock

        def recorded(name):
            taken.append(name)
            return get_lock(name)
        monkeypatch.setattr(member._coordinator, 'get_lock', recorded)
        with member.pool_lock('debian') as got:
            assert got
        assert taken == [coordination.lock_name(None, 'debian')]
    finally:
        member.stop()


def test_without_backend_a_manager_owns_everything():
    member = coordination.Coordination(_conf('solo', None, None))
    member.start()
    assert all(member.owns(p) for p in POOLS)
    assert member.get_usable_hosts() == ['solo']
    with member.pool_lock('debian') as got:
        assert got


def test_a_member_that_stops_beating_is_out(members, coordination_url):
    one, two = members('mgr-1'), members('mgr-2')
    one.refresh()
    assert one.get_usable_hosts() == ['mgr-1', 'mgr-2']
    two._coordinator.heart.stop()  # as if killed: no goodbye, no beats
    cli = _conf('cli', None, coordination_url)

    def only_one_left():
        one.refresh()
        return one.get_usable_hosts() == ['mgr-1']
    # The backend drops the member once its last beat is older than the
    # membership timeout: a wait on the backend's clock, with a margin.
    waiting.wait_for(only_one_left, timeout=MEMBERSHIP_TIMEOUT + 8,
                     interval=0.1, what='mgr-2 out of the group')
    listed = coordination.list_clusters(cli, [members.cluster])
    assert [m['host'] for m in listed[members.cluster]] == ['mgr-1']
    assert all(one.owns(p) for p in POOLS)


def test_a_manager_started_while_the_backend_is_down_joins_later(
        private_coordination):
    """Backend down at start: degraded, no pool owned (nobody's work done
    twice), then joined at the first refresh after it is back, with no
    restart."""
    backend = private_coordination
    conf = _conf('late-joiner', 'test-%s' % uuid.uuid4().hex[:8],
                 backend.url)
    coord = coordination.Coordination(conf)
    started = time.monotonic()
    coord.start()  # nothing answers at that address yet
    try:
        # Start-up does not wait for tooz's minute of retries.
        assert time.monotonic() - started < 10
        assert coord.degraded and not coord.owns(POOLS[0])
        coord.refresh()  # returns at once: the attempt runs in a thread
        backend.start()

        def joined():
            coord.refresh()
            return coord.members() == {'late-joiner'}
        waiting.wait_for(joined, timeout=90, interval=0.05,
                         what='joined once the backend is back')
        assert not coord.degraded
        assert all(coord.owns(pool) for pool in POOLS)
    finally:
        coord.stop()
        backend.stop()


@pytest.fixture
def file_member(tmp_path):
    """A member joined over tooz's file driver: no server needed."""
    member = coordination.Coordination(_conf(
        'solo', 'test-file', 'file://%s' % tmp_path))
    member.start()
    assert member.members() == {'solo'}
    yield member
    member.stop()


def _raise(exc):
    def _call(*args, **kwargs):
        raise exc
    return _call


def test_a_backend_error_is_reported_as_unreachable(file_member, monkeypatch,
                                                     caplog):
    monkeypatch.setattr(file_member._coordinator, 'update_capabilities',
                        _raise(redis_exc.ConnectionError('refused')))
    file_member.refresh()
    assert file_member.degraded
    assert 'Coordination backend unreachable (refused)' in caplog.text


def test_a_bug_in_the_driver_is_not_reported_as_unreachable(
        file_member, monkeypatch, caplog):
    """A periodic task's bug propagates: oslo.service logs it with its
    traceback and the next run tries again."""
    monkeypatch.setattr(file_member._coordinator, 'update_capabilities',
                        _raise(TypeError('a bug')))
    with pytest.raises(TypeError, match='a bug'):
        file_member.refresh()
    monkeypatch.setattr(file_member._coordinator, 'get_members',
                        _raise(TypeError('another bug')))
    with pytest.raises(TypeError, match='another bug'):
        file_member.owns(POOLS[0])
    assert not file_member.degraded
    assert 'unreachable' not in caplog.text


def test_a_bug_while_joining_is_logged_with_its_traceback(
        tmp_path, monkeypatch, caplog):
    """Joining runs on a thread of its own: nobody would see the error
    raised, so it is logged with its traceback, not as an outage."""
    driver = tooz_coordination.get_coordinator

    def broken_join(url, member_id):
        coordinator = driver(url, member_id)
        coordinator.join_group = _raise(TypeError('a bug'))
        return coordinator
    monkeypatch.setattr(tooz_coordination, 'get_coordinator', broken_join)
    member = coordination.Coordination(_conf(
        'solo', 'test-file', 'file://%s' % tmp_path))
    member.start()
    try:
        assert member._connecting is False  # the attempt is over
        [record] = [r for r in caplog.records
                    if 'Joining the coordination group failed' in
                    r.getMessage()]
        assert record.exc_info[0] is TypeError
        assert 'unreachable' not in caplog.text
    finally:
        member.stop()
