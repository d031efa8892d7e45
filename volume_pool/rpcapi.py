"""Client side of the volume-pool RPC API: what the controller imports.

Usage in the controller::

    from volume_pool import rpcapi
    api = rpcapi.VolumePoolAPI(transport)   # transport of the controller
    volume = api.claim(ctxt, 'debian', name='vnf-42-root')

Errors are the classes of :mod:`volume_pool.exception` (``PoolNotFound``,
``PoolEmpty``, ``InvalidClaimRequest``, ``CinderUnavailable``, ...) as long
as the transport allows that module's remote exceptions, which
:func:`get_transport` does.  A broker that cannot be reached within the
call's time is :class:`BrokerUnreachable`, one that refuses the
credentials :class:`BrokerRefused`.  This module imports no server code, and no
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

from volume_pool import broker_errors  # noqa: E402
from volume_pool import exception  # noqa: E402
from volume_pool import reply_queue  # noqa: E402
from volume_pool import rpc  # noqa: E402
from volume_pool import validation  # noqa: E402

LOG = logging.getLogger(__name__)


class ClaimTimedOut(exception.ClaimTimedOut, messaging.MessagingTimeout):
    """No answer within the caller's time; also a MessagingTimeout, so
    code written for the 1.0 client keeps catching it.  ``claim_key``
    names the claim to release."""


class BrokerUnreachable(exception.BrokerUnreachable,
                        messaging.MessageDeliveryFailure):
    """No connection to the broker within the caller's time; also a
    MessageDeliveryFailure, so code that catches oslo.messaging's errors
    keeps catching it.  ``claim_key`` and ``maybe_sent`` say what a
    caller may have to undo (see :class:`VolumePoolAPI`)."""


class BrokerRefused(exception.BrokerRefused,
                    messaging.MessagingException):
    """The broker refused the login or the virtual host of the
    transport URL: fix the configuration, asking again does not help."""


def _broker_error(exc, **kwargs):
    """The typed error for a broker failure ``exc``, or None."""
    kind = broker_errors.classify(exc)
    if kind is None:
        return None
    cls = BrokerRefused if kind == broker_errors.REFUSED else (
        BrokerUnreachable)
    return cls(reason=broker_errors.reason(exc), **kwargs)


def _error_text(exc):
    """One line for a log: the error's first line, or its type's name."""
    return exception.first_line(exc) or exc.__class__.__name__


def get_transport(conf, url=None):
    """An RPC transport that re-raises volume_pool errors by type.

    ``url`` defaults to ``conf.transport_url``.
    """
    return messaging.get_rpc_transport(
        conf, url=url, allowed_remote_exmods=rpc.ALLOWED_EXMODS)


def close_transport(transport, timeout=5.0):
    """Clean ``transport`` up without waiting for a broker that is away
    (at most ``timeout`` seconds): use it instead of
    ``transport.cleanup()``, which waits as long as the broker does when
    a call found it away.  False when the cleanup was left to finish in
    the background."""
    return reply_queue.close(transport, timeout)


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

    Every call answers within its timeout (plus one connection attempt)
    when the broker is away: BrokerUnreachable, or BrokerRefused at once
    when the broker refuses the transport URL's credentials.  Both carry
    ``claim_key`` for a keyed call, which is always safe to make again
    with the same key, and ``maybe_sent``: False when no message left this
    client (nothing to undo).
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
    # oslo.messaging's connection retries per send (None: forever).  One
    # attempt: a keyed call tries again itself, within the caller's time.
    BROKER_RETRY = 0
    # Pause before a keyed call tries an unreachable broker again.
    BROKER_PAUSE = 1.0

    def __init__(self, transport=None, timeout=None, version_cap=None):
        target = messaging.Target(topic=rpc.TOPIC,
                                  version=self.RPC_API_VERSION)
        self.client = rpc.get_client(target, transport=transport,
                                     timeout=timeout,
                                     version_cap=version_cap)
        self._membership = {}

    def _prepare(self, version, cluster=None, timeout=None, **extra):
        # A clustered claim goes to the queue its cluster's managers share.
        kwargs = dict(extra, version=version, retry=self.BROKER_RETRY)
        if cluster:
            kwargs['server'] = cluster
        if timeout is not None:
            kwargs['timeout'] = timeout
        return self.client.prepare(**kwargs)

    def _deadline(self, timeout):
        return time.monotonic() + (timeout or self.client.timeout or
                                   self.client.conf.rpc_response_timeout)

    def _transport(self):
        return getattr(self.client, 'transport', None)

    def _wait_for_broker(self, deadline, **error_kwargs):
        """Until ``deadline``: the transport can receive answers (see
        :mod:`volume_pool.reply_queue`); raise the broker's typed error
        otherwise.  Nothing is sent."""
        transport = self._transport()
        error_kwargs.setdefault('maybe_sent', False)
        try:
            if reply_queue.ready(transport, deadline - time.monotonic()):
                return
        except broker_errors.ERRORS as exc:
            raise _broker_error(exc, **error_kwargs) from exc
        raise BrokerUnreachable(
            reason='no connection to it within the time given',
            **error_kwargs)

    def _call_once(self, ctxt, method, version, timeout, route=None,
                   extra=None, **kwargs):
        """One call of a method that takes no key, within ``timeout``, on
        the queue of cluster ``route``; ``extra``: more of the call's
        target (topic, server)."""
        deadline = self._deadline(timeout)
        if not reply_queue.is_ready(self._transport()):
            self._wait_for_broker(deadline)
        left = deadline - time.monotonic()
        if left < self.MIN_TIME_LEFT:
            raise BrokerUnreachable(
                reason='no connection to it within the time given',
                maybe_sent=False)
        cctxt = self._prepare(version, cluster=route, timeout=left,
                              **(extra or {}))
        try:
            return cctxt.call(ctxt, method, **kwargs)
        except broker_errors.ERRORS as exc:
            error = _broker_error(exc,
                                  maybe_sent=broker_errors.maybe_sent(exc))
            if error is None:
                raise
            raise error from exc

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

        BrokerUnreachable and BrokerRefused carry the key too.  With
        ``maybe_sent`` false no manager got the claim.  Otherwise a claim
        with your own key is safe to make again with it (its lease also
        returns an unconfirmed volume); for one without a key the client
        queues the release of the key it made if the broker takes it, and
        logs the key when it cannot: release it once the broker is back.
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
            return self._call_once(ctxt, 'claim', version, timeout,
                                   route=cluster, **kwargs)
        own_key = claim_key is None
        if own_key:
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
        except exception.BrokerError as exc:
            if exc.maybe_sent and own_key:
                # Nobody else knows the key, and no lease would bring the
                # volume back: queue its release, or say so.  A caller's
                # key stays the caller's to claim again with.
                self._queue_release(ctxt, claim_key, cluster)
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
        one that did arrive makes this one a no-op.  One connection
        attempt: a broker away is said in the log, with the key.
        """
        try:
            self._prepare('1.4', cluster=cluster).cast(
                ctxt, 'release', claim_key=claim_key, cluster=cluster)
        except (messaging.MessagingException,) + broker_errors.ERRORS as exc:
            LOG.warning('claim %(key)s was given up; its release could not '
                        'be sent or queued, release the key once the '
                        'broker is back: %(error)s',
                        {'key': claim_key, 'error': _error_text(exc)})
        else:
            LOG.warning('claim %s was given up before its answer came; its '
                        'release is queued for the managers.', claim_key)

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
        raise ClaimTimedOut when it runs out, BrokerUnreachable when the
        broker was away at the end, BrokerRefused at once."""
        if not self.client.can_send_version('1.4'):
            raise exception.ClaimKeyUnsupported(
                who='this client (version_cap %s)' % self.client.version_cap)
        deadline = self._deadline(timeout)
        attempts = 0
        broker_down = None  # the last attempt's broker failure
        sent = False  # whether a message may have reached a manager
        while True:
            left = deadline - time.monotonic()
            if left < self.MIN_TIME_LEFT:
                if broker_down is not None:
                    raise BrokerUnreachable(
                        reason=broker_errors.reason(broker_down),
                        claim_key=key, maybe_sent=sent)
                raise ClaimTimedOut(claim_key=key)
            if not reply_queue.is_ready(self._transport()):
                self._wait_for_broker(deadline, claim_key=key,
                                      maybe_sent=sent)
                continue  # the wait took time: read the clock again
            if with_time_left:
                kwargs['time_left'] = round(left, 3)
            attempt = min(left, max(self.MIN_ATTEMPT_SECONDS, left / 2))
            cctxt = self._prepare('1.4', cluster=route, timeout=attempt)
            attempts += 1
            try:
                result = cctxt.call(ctxt, method, **kwargs)
            except broker_errors.ERRORS as exc:
                sent = sent or broker_errors.maybe_sent(exc)
                error = _broker_error(exc, claim_key=key, maybe_sent=sent)
                if error is None:
                    raise
                if isinstance(error, BrokerRefused):
                    raise error from exc
                broker_down = exc
                LOG.info('%(method)s %(key)s: the broker is away (%(error)s);'
                         ' trying again with the same key.',
                         {'method': method, 'key': key,
                          'error': broker_errors.reason(exc)})
                self._pause(deadline, self.BROKER_PAUSE)
                continue
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
            else:
                return result
            # A manager got this attempt, or may have.
            sent, broker_down = True, None

    def _pause(self, deadline, seconds=None):
        seconds = self.IN_PROGRESS_PAUSE if seconds is None else seconds
        time.sleep(max(0.0, min(seconds, deadline - time.monotonic())))

    def pool_status(self, ctxt, cluster=None, timeout=None):
        """One dict per pool: target, ready, creating and claim figures."""
        validation.check_cluster_arg(cluster)
        return self._call_once(ctxt, 'pool_status', '1.0', timeout,
                               route=cluster, cluster=cluster)

    def refill(self, ctxt, pool, cluster=None, timeout=None):
        """Replenish ``pool`` now and resume it if paused (1.2).

        Returns the number of volume creates queued.
        """
        validation.check_pool_arg(pool)
        validation.check_cluster_arg(cluster)
        return self._call_once(ctxt, 'refill', '1.2', timeout,
                               route=cluster, pool=pool, cluster=cluster)

    def ping(self, ctxt, host, timeout=None):
        """The health record of manager ``host`` (1.5): its status
        (``ok``, ``degraded`` or ``failed``) and each check."""
        validation.check_host_arg(host)
        if not self.client.can_send_version('1.5'):
            raise exception.PingUnsupported(
                who='this client (version_cap %s)' % self.client.version_cap)
        return self._call_once(ctxt, 'ping', '1.5', timeout, extra={
            'topic': rpc.HOST_TOPIC, 'server': host})

    def get_usable_hosts(self, ctxt, cluster=None, timeout=None):
        """Live managers of ``cluster``, as any manager sees them (1.1)."""
        validation.check_cluster_arg(cluster)
        return self._call_once(ctxt, 'get_usable_hosts', '1.1', timeout,
                               cluster=cluster)

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
            except exception.BrokerError:
                raise  # the claim could not go through it either
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
