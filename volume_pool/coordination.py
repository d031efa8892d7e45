"""Membership and work sharing between managers, through tooz.

Each manager joins its cluster's tooz group (heartbeats are tooz's own);
the pools of a cluster are shared out over a consistent hash ring of the
live members, as aodh and designate do, and a tooz lock per pool makes
sure two managers never replenish one pool at once while the ring changes.

Claims never depend on this: the atomic database claim is what hands one
volume to one caller.  When the backend is away, a manager keeps the pools
it owned at the last good view of the ring and says so in the log.  With
no ``[coordination] backend_url`` a manager owns every pool of its cluster.
"""

import contextlib
import functools
import threading
import time

from oslo_log import log as logging
from oslo_utils import netutils
from redis import exceptions as redis_exc
import tooz
from tooz import coordination as tooz_coordination
from tooz import hashring

from volume_pool import cluster_names

LOG = logging.getLogger(__name__)

# What a call to the backend raises when the backend is away or failing.
# tooz wraps most failures in ToozError, but the Redis driver's group
# calls hand back the client library's own errors, and other drivers may
# let a socket error through.  Anything else is a bug: it propagates (or
# is logged with its traceback at a thread's top level), never reported
# as "backend unreachable".
BACKEND_ERRORS = (tooz.ToozError, redis_exc.RedisError, OSError)
# Seconds start() waits for the first join before going on without it.
_START_WAIT = 5.0

GROUP_PREFIX = 'volume-pool.'
# The key form of the cluster with no name (cluster_names.NO_CLUSTER) in
# group and lock names.  It stays "-", not that name: the managers of the
# previous release join and lock under "-", and during a rolling upgrade
# old and new managers must share one group and one lock per pool.
_NO_CLUSTER_KEY = '-'


def cluster_key(cluster):
    """A cluster's part of tooz group and lock names."""
    if cluster_names.is_no_cluster(cluster):
        return _NO_CLUSTER_KEY
    return cluster


def group_id(cluster):
    return (GROUP_PREFIX + cluster_key(cluster)).encode()


def lock_name(cluster, pool_name):
    """The tooz lock that lets one manager of the cluster replenish the
    pool at a time."""
    return ('volume-pool.replenish.%s.%s'
            % (cluster_key(cluster), pool_name)).encode()


def _backend_url(conf):
    """Add the membership timeout to the URL unless the URL sets one."""
    url = conf.coordination.backend_url
    parsed = netutils.urlsplit(url)
    if 'membership_timeout' in (parsed.query or ''):
        return url
    separator = '&' if parsed.query else '?'
    return '%s%smembership_timeout=%d' % (
        url, separator, conf.coordination.membership_timeout)


class Coordination:
    """tooz membership of one manager in its cluster's group."""

    def __init__(self, conf):
        self.enabled = bool(conf.coordination.backend_url)
        self._conf = conf
        self.host = conf.host
        self.cluster = conf.cluster or None
        self._coordinator = None
        self._lock = threading.Lock()
        self._members = None         # last good view of the group
        self._views = {}             # {cluster: hosts}, from refresh()
        self._degraded = False
        self._started = False        # tooz started: the backend answered
        self._connecting = False     # a connection attempt runs
        self._started_at = time.time()
        self._ring_cache = None      # (members, HashRing)
        # Pool locks whose release failed: still held (the backend's
        # heartbeat keeps them), released at the pool's next replenish.
        self._unreleased = {}

    # -- life cycle ------------------------------------------------------

    def start(self):
        if not self.enabled:
            LOG.info('No [coordination] backend_url: this manager does the '
                     'background work of all its pools alone.')
            return
        self._coordinator = tooz_coordination.get_coordinator(
            _backend_url(self._conf), self.host.encode())
        # tooz retries a refused connection for about a minute: wait a
        # little for the usual quick join, never a minute of start-up.
        attempt = self._connect_in_background()
        if attempt is not None:
            attempt.join(_START_WAIT)

    def _connect_in_background(self):
        """One connection attempt in a thread of its own, unless one runs:
        the periodic tasks never wait on a backend that is away."""
        with self._lock:
            if self._connecting:
                return None
            self._connecting = True

        def attempt():
            try:
                self._connect()
            finally:
                with self._lock:
                    self._connecting = False

        thread = threading.Thread(target=attempt, daemon=True,
                                  name='coordination-connect')
        thread.start()
        return thread

    def _connect(self):
        """Start tooz and join the group; False, degraded, while the
        backend is away.  refresh() calls it again until it works, so a
        manager started during an outage joins once the backend is back,
        without a restart.

        It runs at the top of a thread of its own: any other error is a
        bug, logged with its traceback (nobody would see it raised), and
        the next refresh tries again.
        """
        try:
            if not self._started:
                self._coordinator.start(start_heart=True)
                self._started = True
            self._join()
        except BACKEND_ERRORS as exc:
            self._set_degraded(exc)
            return False
        except Exception:
            LOG.exception('Joining the coordination group failed')
            return False
        return True

    def stop(self):
        if self._coordinator is None or not self._started:
            self._coordinator = None
            return
        # Shutting down: an error, expected or not, must not keep tooz's
        # heartbeat running or stop the rest of the service's shutdown.
        try:
            self._coordinator.leave_group(group_id(self.cluster)).get(
                timeout=5)
        except BACKEND_ERRORS as exc:
            LOG.debug('Leaving the group failed: %s', exc)
        except Exception:
            LOG.exception('Leaving the coordination group failed')
        try:
            self._coordinator.stop()
        except BACKEND_ERRORS as exc:
            LOG.debug('Stopping tooz failed: %s', exc)
        except Exception:
            LOG.exception('Stopping tooz failed')
        self._coordinator = None

    def _capabilities(self):
        return {'host': self.host, 'cluster': self.cluster,
                'started_at': self._started_at, 'last_seen': time.time()}

    def _join(self):
        group = group_id(self.cluster)
        try:
            self._coordinator.create_group(group).get()
        except tooz_coordination.GroupAlreadyExist:
            pass
        try:
            self._coordinator.join_group(group,
                                         self._capabilities()).get()
        except tooz_coordination.MemberAlreadyExist:
            self._coordinator.update_capabilities(
                group, self._capabilities()).get()
        LOG.info('Joined coordination group %s as %s', group.decode(),
                 self.host)

    def refresh(self):
        """Periodic: rejoin after an outage and record that we are alive.

        Only the backend's own errors mean "backend unreachable".  Any
        other error is a bug and propagates: the periodic task runner logs
        it with its traceback and runs the task again at the next
        interval, whereas reporting it as an outage would hide it behind
        one log line and keep the manager degraded for good.
        """
        if self._coordinator is None:
            return
        if not self._started:
            self._connect_in_background()
            return
        try:
            try:
                self._coordinator.update_capabilities(
                    group_id(self.cluster), self._capabilities()).get()
            except (tooz_coordination.MemberNotJoined,
                    tooz_coordination.GroupNotCreated):
                self._join()
            self.members()
            views = {}
            for group in self._coordinator.get_groups().get():
                name = group.decode()
                if not name.startswith(GROUP_PREFIX):
                    continue
                try:
                    members = self._coordinator.get_members(group).get()
                except tooz_coordination.GroupNotCreated:
                    continue  # deleted since it was listed: no cluster
                views[name[len(GROUP_PREFIX):]] = {m.decode()
                                                   for m in members}
            self._views = views
        except BACKEND_ERRORS as exc:
            self._set_degraded(exc)

    def _set_degraded(self, exc):
        with self._lock:
            was = self._degraded
            self._degraded = True
        if not was:
            LOG.error('Coordination backend unreachable (%s): work sharing '
                      'is degraded; this manager keeps the pools it owned '
                      'at the last good view and claims go on.', exc)

    def _set_healthy(self):
        with self._lock:
            was = self._degraded
            self._degraded = False
        if was:
            LOG.info('Coordination backend is back: work sharing resumes.')

    @property
    def degraded(self):
        """True while the backend is away, or was never reached."""
        return self._degraded or (self._coordinator is not None and
                                  not self._started)

    # -- membership ------------------------------------------------------

    def members(self, cluster=None):
        """Live members of a cluster's group (own cluster by default)."""
        if self._coordinator is None:
            return {self.host}
        own = cluster is None or cluster == self.cluster
        if not self._started:
            # Never reached the backend: no view yet.
            return set(self._members or ()) if own else set()
        try:
            found = self._coordinator.get_members(
                group_id(self.cluster if own else cluster)).get()
        except tooz_coordination.GroupNotCreated:
            found = set()
        except BACKEND_ERRORS as exc:
            self._set_degraded(exc)
            return set(self._members or ()) if own else set()
        members = {m.decode() for m in found}
        if own:
            self._members = members
            self._set_healthy()
        return members

    def get_usable_hosts(self, cluster=None):
        """The managers that can serve ``cluster`` now.

        Answered from the view the periodic refresh keeps, never with a
        call to the backend, so it is instant even while the backend is
        away (then it is the last good view).  A manager always counts
        itself for its own cluster.
        """
        own = cluster is None or cluster == self.cluster
        group = cluster_key(self.cluster if own else cluster)
        hosts = set(self._views.get(group, ()))
        if own:
            hosts |= set(self._members or ()) | {self.host}
        return sorted(hosts)

    def owns(self, pool_name):
        """True if this manager does the background work of the pool.

        One call to the backend; a task that asks for many pools takes
        :meth:`ownership` once instead.
        """
        return self.ownership()(pool_name)

    def ownership(self):
        """``owns(pool_name)`` by one view of the group: one call to the
        backend and one hash ring, however many pools are asked about."""
        if not self.enabled:
            return _own_everything
        members = frozenset(self.members())
        if not members:
            return _own_nothing  # never had a view: nothing, not twice
        return functools.partial(_is_owner, self._ring(members), self.host)

    def _ring(self, members):
        """The hash ring of ``members``, rebuilt only when they change."""
        cached = self._ring_cache
        if cached is None or cached[0] != members:
            cached = (members, hashring.HashRing(members))
            self._ring_cache = cached
        return cached[1]

    @contextlib.contextmanager
    def pool_lock(self, pool_name):
        """Yields True if this manager may replenish the pool now."""
        if self._coordinator is None or self._degraded or not self._started:
            yield self._coordinator is None or self._members is not None
            return
        # A lock this manager could not release is still its own: the
        # backend keeps it as long as the coordinator's heartbeat runs, so
        # no other lock of the pool would ever be granted.  It serves this
        # replenish, and is released after it.
        lock = self._unreleased.pop(pool_name, None)
        acquired = lock is not None
        if lock is None:
            lock = self._coordinator.get_lock(
                lock_name(self.cluster, pool_name))
            try:
                acquired = lock.acquire(blocking=False)
            except BACKEND_ERRORS as exc:
                self._set_degraded(exc)
                yield self._members is not None
                return
        try:
            yield acquired
        finally:
            if acquired:
                try:
                    lock.release()
                except BACKEND_ERRORS as exc:
                    self._unreleased[pool_name] = lock
                    LOG.warning('Releasing the lock of pool %(pool)s '
                                'failed (%(err)s); it is released after the '
                                'next replenish of the pool.',
                                {'pool': pool_name, 'err': exc})


def _own_everything(pool_name):
    return True


def _own_nothing(pool_name):
    return False


def _is_owner(ring, host, pool_name):
    owners = ring.get_nodes(pool_name.encode())
    return host in {o.decode() if isinstance(o, bytes) else o
                    for o in owners}


def list_clusters(conf, clusters):
    """``{cluster: [{host, last_seen, started_at}]}`` for the CLI."""
    coordinator = tooz_coordination.get_coordinator(
        _backend_url(conf), b'volume-pool-manage')
    coordinator.start()
    try:
        result = {}
        groups = coordinator.get_groups().get()
        for group in sorted(groups):
            name = group.decode()
            if not name.startswith(GROUP_PREFIX):
                continue
            cluster = name[len(GROUP_PREFIX):]
            if clusters and cluster not in clusters:
                continue
            # get_members drops members whose heartbeat expired; the
            # capabilities listing alone would still show dead ones.
            live = coordinator.get_members(group).get()
            caps = coordinator.get_members_with_capabilities(group).get()
            result[cluster] = sorted(
                ({'host': member.decode(), **(caps.get(member) or {})}
                 for member in live),
                key=lambda m: m['host'])
        return result
    finally:
        coordinator.stop()
