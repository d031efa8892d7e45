"""Client side of the volume-pool RPC API: what the controller imports.

Usage in the controller::

    from volume_pool import rpcapi
    api = rpcapi.VolumePoolAPI(transport)   # transport of the controller
    volume = api.claim(ctxt, 'debian', name='vnf-42-root')

Errors are the classes of :mod:`volume_pool.exception` (``PoolNotFound``,
``PoolEmpty``, ``InvalidClaimRequest``, ``CinderUnavailable``, ...) as long
as the transport allows that module's remote exceptions, which
:func:`get_transport` does.  This module imports no server code, and no
eventlet into a process that has not imported it itself
(:mod:`volume_pool.eventlet_free`).
"""

import logging
import time
import uuid

from volume_pool import eventlet_free

# Before anything else imports oslo.messaging: the controller's process
# gets no eventlet and no deprecation warning from importing this client.
with eventlet_free.importing_without_eventlet():
    import oslo_messaging as messaging

from volume_pool import exception  # noqa: E402
from volume_pool import rpc  # noqa: E402
from volume_pool import validation  # noqa: E402

LOG = logging.getLogger(__name__)


class ClaimTimedOut(exception.ClaimTimedOut, messaging.MessagingTimeout):
    """No answer within the caller's time; also a MessagingTimeout, so
    code written for the 1.0 client keeps catching it.  ``claim_key``
    names the claim to release."""


def _error_text(exc):
    """One line for a log: the error's first line, or its type's name."""
    return exception.first_line(exc) or exc.__class__.__name__


def get_transport(conf, url=None):
    """An RPC transport that re-raises volume_pool errors by type.

    ``url`` defaults to ``conf.transport_url``.
    """
    return messaging.get_rpc_transport(
        conf, url=url, allowed_remote_exmods=rpc.ALLOWED_EXMODS)


class VolumePoolAPI:
    """Client side of the volume-pool RPC API.

    API version history:

        * 1.0 - Initial version: claim(), pool_status().
        * 1.1 - Add get_usable_hosts(); a clustered claim checks that its
                cluster has a live manager first.
        * 1.2 - Add refill(): replenish one pool now, resuming it if paused.
        * 1.3 - claim() takes project_id: the volume is handed to that
                project by a Cinder volume transfer.
        * 1.4 - claim() takes claim_key (idempotency key) and time_left
                (the caller's remaining seconds); add confirm() and
                release().  A keyed claim is held under a lease until it
                is confirmed.
        * 1.5 - Add ping(): the health of one named manager, on the topic
                volume-pool-host under its host name.

    ``version_cap`` pins the newest version sent, for a rolling upgrade in
    which some managers still speak an older one.
    """

    RPC_API_VERSION = '1.5'
    # How long a cluster's membership answer is trusted by this client.
    MEMBERSHIP_CACHE_SECONDS = 5.0
    MEMBERSHIP_PROBE_TIMEOUT = 5
    # A call is tried again, with the same key, when its answer is late:
    # each attempt waits half of the time left, at least this long.
    MIN_ATTEMPT_SECONDS = 5.0
    # Pause before asking again about a claim still in progress.
    IN_PROGRESS_PAUSE = 0.5
    # Less time left than this is no time: the call could not come back.
    MIN_TIME_LEFT = 0.01
    # How long a claim that timed out waits for the release of its key.
    GIVE_UP_RELEASE_TIMEOUT = 5.0

    def __init__(self, transport=None, timeout=None, version_cap=None):
        target = messaging.Target(topic=rpc.TOPIC,
                                  version=self.RPC_API_VERSION)
        self.client = rpc.get_client(target, transport=transport,
                                     timeout=timeout,
                                     version_cap=version_cap)
        self._membership = {}

    def _prepare(self, version, cluster=None, timeout=None):
        # A clustered claim goes to the queue its cluster's managers share.
        kwargs = {'version': version}
        if cluster:
            kwargs['server'] = cluster
        if timeout is not None:
            kwargs['timeout'] = timeout
        return self.client.prepare(**kwargs)

    def claim(self, ctxt, snapshot_type, name=None, cluster=None,
              create_on_miss=True, timeout=None, project_id=None,
              claim_key=None):
        """Take a ready volume of ``snapshot_type`` (a pool name).

        Returns a dict with ``volume_id``, ``name``, ``snapshot_type``,
        ``snapshot_id``, ``size``, ``status``, ``cluster`` and ``source``
        (``"pool"``, or ``"created"`` on a miss; such a volume may still be
        ``creating``).

        ``project_id`` (1.3): the volume is handed to that project through
        a Cinder volume transfer and the result carries ``project_id``; if
        the transfer fails the volume stays in the pool and
        VolumeTransferFailed is raised.

        ``claim_key`` (1.4): the idempotency key of this claim, unique in
        the cluster and the caller's project (an instance UUID, say).  The
        claim is tried again with the same key when an answer is late,
        within ``timeout`` seconds in all (default: the client's timeout),
        and the managers never finish it after that time.  The result
        carries ``claim_key`` and ``lease_expires_at``: confirm() the claim
        before then, or the volume goes back to its pool; release() it to
        give it back at once.  When the managers speak 1.4 and no key is
        given, one is made for the retries only: no lease, the volume is
        the caller's at hand-over, and the key in the result still
        releases it.  ClaimTimedOut (also a MessagingTimeout) carries the
        key when no answer came in time; the client then releases the key
        itself (best effort, at most GIVE_UP_RELEASE_TIMEOUT seconds more):
        the claim's volume goes back to its pool, and the key answers
        ClaimReleased from then on.
        """
        validation.check_claim_args(snapshot_type, name, cluster,
                                    create_on_miss)
        validation.check_project_arg(project_id)
        validation.check_claim_key(claim_key)
        kwargs = {'snapshot_type': snapshot_type, 'name': name,
                  'cluster': cluster, 'create_on_miss': create_on_miss}
        version = '1.0'
        if project_id is not None:
            version = '1.3'
            if not self.client.can_send_version(version):
                raise exception.ClaimIntoProjectUnsupported(
                    project_id=project_id,
                    who='this client (version_cap %s)'
                        % self.client.version_cap)
            kwargs['project_id'] = project_id
        if cluster:
            self._check_cluster_alive(ctxt, cluster)
        if not self.client.can_send_version('1.4'):
            if claim_key is not None:
                raise exception.ClaimKeyUnsupported(
                    who='this client (version_cap %s)'
                        % self.client.version_cap)
            cctxt = self._prepare(version, cluster=cluster, timeout=timeout)
            return cctxt.call(ctxt, 'claim', **kwargs)
        if claim_key is None:
            # The key only makes retries safe: no lease, the volume is the
            # caller's at hand-over, as for a claim without a key.
            claim_key = str(uuid.uuid4())
            kwargs['lease'] = False
        kwargs['claim_key'] = claim_key
        try:
            return self._call_until(ctxt, 'claim', cluster, timeout,
                                    claim_key, with_time_left=True,
                                    **kwargs)
        except ClaimTimedOut:
            self._give_up(ctxt, claim_key, cluster)
            raise

    def _give_up(self, ctxt, claim_key, cluster):
        """Release the key of a claim that got no answer in time, best
        effort: whatever the managers did or will do with it, the volume
        goes back to its pool, and a claim with the key still queued
        somewhere takes nothing."""
        try:
            self.release(ctxt, claim_key, cluster=cluster,
                         timeout=self.GIVE_UP_RELEASE_TIMEOUT)
        except ClaimTimedOut:
            self._queue_release(ctxt, claim_key, cluster)
        except (messaging.MessagingException,
                exception.VolumePoolException) as exc:
            LOG.warning('claim %(key)s timed out; releasing its key '
                        'failed: %(error)s',
                        {'key': claim_key, 'error': _error_text(exc)})
        else:
            LOG.info('claim %s timed out; its key is released.', claim_key)

    def _queue_release(self, ctxt, claim_key, cluster):
        """Leave the release of a given-up key in the managers' queue.

        The broker drops a call's message once the call's timeout has
        passed (oslo.messaging sends it with that expiration), so a release
        no manager picked up in time would be lost, and the claim's volume
        kept until its lease runs out.  A cast never expires: a manager
        runs it when it gets to it.  Releases are idempotent by the key, so
        one that did arrive makes this one a no-op.
        """
        try:
            self._prepare('1.4', cluster=cluster).cast(
                ctxt, 'release', claim_key=claim_key, cluster=cluster)
        except messaging.MessagingException as exc:
            LOG.warning('claim %(key)s timed out; its release got no '
                        'answer and could not be queued: %(error)s',
                        {'key': claim_key, 'error': _error_text(exc)})
        else:
            LOG.warning('claim %s timed out; its release got no answer in '
                        'time and is queued for the managers.', claim_key)

    def confirm(self, ctxt, claim_key, cluster=None, timeout=None):
        """The claimed volume is the caller's for good: its lease ends
        (1.4).  Idempotent; returns the claim's receipt."""
        validation.check_claim_key(claim_key, required=True)
        validation.check_cluster_arg(cluster)
        return self._call_until(ctxt, 'confirm', cluster, timeout,
                                claim_key, claim_key=claim_key,
                                cluster=cluster)

    def release(self, ctxt, claim_key, cluster=None, timeout=None):
        """Give the claimed volume back to its pool, if it is unused (1.4).

        Idempotent; returns the claim's receipt (``state`` ``released``,
        or ``returned`` when its lease had already run out), or raises
        ClaimNotReleasable saying why (attached, claimed into a project).
        """
        validation.check_claim_key(claim_key, required=True)
        validation.check_cluster_arg(cluster)
        return self._call_until(ctxt, 'release', cluster, timeout,
                                claim_key, claim_key=claim_key,
                                cluster=cluster)

    def _call_until(self, ctxt, method, route, timeout, key,
                    with_time_left=False, **kwargs):
        """Call ``method`` (1.4, idempotent by the claim ``key``) on the
        queue of cluster ``route``, trying again while the time lasts;
        raise ClaimTimedOut when it runs out."""
        if not self.client.can_send_version('1.4'):
            raise exception.ClaimKeyUnsupported(
                who='this client (version_cap %s)' % self.client.version_cap)
        budget = (timeout or self.client.timeout or
                  self.client.conf.rpc_response_timeout)
        deadline = time.monotonic() + budget
        attempts = 0
        while True:
            left = deadline - time.monotonic()
            if left < self.MIN_TIME_LEFT:
                raise ClaimTimedOut(claim_key=key)
            if with_time_left:
                kwargs['time_left'] = round(left, 3)
            attempt = min(left, max(self.MIN_ATTEMPT_SECONDS, left / 2))
            cctxt = self._prepare('1.4', cluster=route, timeout=attempt)
            attempts += 1
            try:
                return cctxt.call(ctxt, method, **kwargs)
            except messaging.MessagingTimeout:
                LOG.info('%(method)s %(key)s: no answer in %(s).1fs '
                         '(attempt %(n)d); asking again with the same key.',
                         {'method': method, 'key': key, 's': attempt,
                          'n': attempts})
            except exception.ClaimInProgress:
                # Every 1.4 call is idempotent by its key: ask again.
                LOG.debug('%(method)s %(key)s is still in progress; asking '
                          'again.', {'method': method, 'key': key})
                self._pause(deadline)
            except (exception.ServiceShuttingDown,
                    exception.DatabaseUnavailable) as exc:
                # Another manager of the cluster, or this one once its
                # database is back, finishes the call with the same key.
                LOG.info('%(method)s %(key)s: asking again with the same '
                         'key after: %(error)s',
                         {'method': method, 'key': key,
                          'error': exception.first_line(exc)})
                self._pause(deadline)
            except exception.ClaimTimedOut:
                raise ClaimTimedOut(claim_key=key)

    def _pause(self, deadline):
        time.sleep(max(0.0, min(self.IN_PROGRESS_PAUSE,
                                deadline - time.monotonic())))

    def pool_status(self, ctxt, cluster=None, timeout=None):
        """One dict per pool: target, ready, creating and claim figures."""
        validation.check_cluster_arg(cluster)
        cctxt = self._prepare('1.0', cluster=cluster, timeout=timeout)
        return cctxt.call(ctxt, 'pool_status', cluster=cluster)

    def refill(self, ctxt, pool, cluster=None, timeout=None):
        """Replenish ``pool`` now and resume it if paused (1.2).

        Returns the number of volume creates queued.
        """
        validation.check_pool_arg(pool)
        validation.check_cluster_arg(cluster)
        cctxt = self._prepare('1.2', cluster=cluster, timeout=timeout)
        return cctxt.call(ctxt, 'refill', pool=pool, cluster=cluster)

    def ping(self, ctxt, host, timeout=None):
        """The health record of manager ``host`` (1.5): its status
        (``ok``, ``degraded`` or ``failed``) and each check."""
        validation.check_host_arg(host)
        if not self.client.can_send_version('1.5'):
            raise exception.PingUnsupported(
                who='this client (version_cap %s)' % self.client.version_cap)
        kwargs = {'version': '1.5', 'topic': rpc.HOST_TOPIC, 'server': host}
        if timeout is not None:
            kwargs['timeout'] = timeout
        return self.client.prepare(**kwargs).call(ctxt, 'ping')

    def get_usable_hosts(self, ctxt, cluster=None, timeout=None):
        """Live managers of ``cluster``, as any manager sees them (1.1)."""
        validation.check_cluster_arg(cluster)
        cctxt = self.client.prepare(version='1.1', timeout=timeout)
        return cctxt.call(ctxt, 'get_usable_hosts', cluster=cluster)

    def _check_cluster_alive(self, ctxt, cluster):
        """Fail fast with NoLiveManager instead of an RPC timeout."""
        if not self.client.can_send_version('1.1'):
            return
        now = time.monotonic()
        cached = self._membership.get(cluster)
        if cached is None or now - cached[0] > self.MEMBERSHIP_CACHE_SECONDS:
            try:
                hosts = self.get_usable_hosts(
                    ctxt, cluster, timeout=self.MEMBERSHIP_PROBE_TIMEOUT)
            except messaging.MessagingTimeout:
                LOG.debug('No manager of cluster %s answered the membership '
                          'probe.', cluster)
                hosts = []  # no manager answers at all: NoLiveManager
            except messaging.MessagingException as exc:
                LOG.warning('Membership probe of cluster %(cluster)s '
                            'failed, the claim goes on: %(error)s',
                            {'cluster': cluster,
                             'error': exception.first_line(exc)})
                hosts = None  # unknown: let the claim itself decide
            cached = (now, hosts)
            self._membership[cluster] = cached
        if cached[1] == []:
            raise exception.NoLiveManager(cluster=cluster)
