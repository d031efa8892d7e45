"""Typed errors shared by the manager and the RPC client.

oslo.messaging re-raises a server-side exception on the caller as the same
class when its module is listed in ``allowed_remote_exmods``; the client in
:mod:`volume_pool.rpcapi` allows this module, so a controller can catch
these classes by type.  Keep this module free of server-only imports.
"""


def first_line(exc):
    """The first line of an error's message, for one-line reports: an
    error re-raised from a manager carries the remote traceback after it.
    """
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else ''


def refused_by_pool(exc):
    """True when ``exc`` is the pool's own no to its caller (its 4xx, not
    Cinder's): a caller's mistake or choice, not a service error."""
    return (isinstance(exc, VolumePoolException) and
            not isinstance(exc, CinderException) and
            400 <= exc.code < 500)


class VolumePoolException(Exception):
    """Base class; ``msg_fmt`` is formatted with the keyword arguments."""

    msg_fmt = "An unknown error occurred."
    code = 500

    def __init__(self, message=None, **kwargs):
        self.kwargs = kwargs
        if not message:
            try:
                message = self.msg_fmt % kwargs
            except (KeyError, TypeError):
                message = self.msg_fmt
        self.message = message
        super().__init__(message)


class Invalid(VolumePoolException):
    msg_fmt = "Invalid input: %(reason)s"
    code = 400


class InvalidClaimRequest(Invalid):
    msg_fmt = "Invalid claim request: %(reason)s"


class ConfigError(VolumePoolException):
    """The configuration cannot be used; start-up stops with this line."""

    msg_fmt = "Configuration error: %(reason)s"


class PoolNotFound(VolumePoolException):
    msg_fmt = "Unknown pool '%(pool)s' in cluster %(cluster)s."
    code = 404


class PoolEmpty(VolumePoolException):
    msg_fmt = ("Pool '%(pool)s' has no ready volume and create_on_miss "
               "is false.")
    code = 409


def miss_create_cap_reached(pool, cap):
    """PoolEmpty for a miss that may not create: the pool's creates on a
    miss are at ``[pool:NAME] max_miss_creates``.

    Still PoolEmpty, not a subclass of it: a client of an older release
    rebuilds only the classes it knows, and already catches this one.
    """
    if cap:
        text = ("Pool '%s' has no ready volume and its miss-create cap is "
                "reached: %d creates on a miss already running in this "
                "manager ([pool:%s] max_miss_creates); retry shortly."
                % (pool, cap, pool))
    else:
        text = ("Pool '%s' has no ready volume and its miss-create cap is "
                "0: a miss never creates ([pool:%s] max_miss_creates)."
                % (pool, pool))
    return PoolEmpty(text, pool=pool, max_miss_creates=cap)


class ClusterNotServed(VolumePoolException):
    msg_fmt = "Cluster '%(cluster)s' is not served by this manager."
    code = 400


class NoLiveManager(VolumePoolException):
    msg_fmt = "No live volume-pool-manager serves cluster '%(cluster)s'."
    code = 503


class ServiceUnavailable(VolumePoolException):
    msg_fmt = "The volume pool service cannot serve the request: %(reason)s"
    code = 503


class ServiceShuttingDown(ServiceUnavailable):
    msg_fmt = "volume-pool-manager %(host)s is shutting down."


class DatabaseUnavailable(ServiceUnavailable):
    msg_fmt = "The volume pool database is unavailable: %(reason)s"


class CinderException(VolumePoolException):
    msg_fmt = "Cinder request failed: %(reason)s"


class CinderUnavailable(CinderException):
    """Cinder failed the request, or gave no answer: with
    ``unanswered=True`` the request may still be applied later (see
    :func:`may_land_late`)."""

    msg_fmt = "Cinder is unavailable: %(reason)s"
    code = 503


def may_land_late(exc):
    """True when Cinder never answered the request (a timeout, a lost
    connection, a gateway's 502 or 504): it may still be applied."""
    return bool(getattr(exc, 'kwargs', {}).get('unanswered'))


class CinderQuotaExceeded(CinderException):
    msg_fmt = "Cinder refused the volume, over quota: %(reason)s"
    code = 413


class CinderRequestRejected(CinderException):
    msg_fmt = "Cinder rejected the request: %(reason)s"
    code = 400


class VolumeNotFound(CinderException):
    msg_fmt = "Volume %(volume_id)s does not exist in Cinder."
    code = 404


class SnapshotNotFound(CinderException):
    msg_fmt = "Snapshot %(snapshot_id)s does not exist in Cinder."
    code = 404


class VolumeTransferFailed(CinderException):
    """A claim into another project could not hand the volume over.

    The volume stayed in (or went back to) the pool; nothing was claimed.
    """

    msg_fmt = ("Could not transfer volume %(volume_id)s to project "
               "%(project_id)s; it stays in the pool: %(reason)s")
    code = 409


class ProjectNotAllowed(VolumePoolException):
    """The project is not in ``[volume_pool] claim_projects``."""

    msg_fmt = ("Claims may not hand volumes to project %(project_id)s: it "
               "is not in [volume_pool] claim_projects.")
    code = 403


class ClaimIntoProjectUnsupported(VolumePoolException):
    """The manager (or the client's version_cap) cannot claim into another
    project: RPC 1.3 is needed."""

    msg_fmt = ("Claiming into project %(project_id)s needs RPC API 1.3, "
               "which %(who)s does not allow.")
    code = 400


class ClaimKeyUnsupported(VolumePoolException):
    """A claim key needs RPC API 1.4."""

    msg_fmt = "Claim keys need RPC API 1.4, which %(who)s does not allow."
    code = 400


class PingUnsupported(VolumePoolException):
    """A ping to one named manager needs RPC API 1.5."""

    msg_fmt = ("Pinging a manager needs RPC API 1.5, which %(who)s does "
               "not allow.")
    code = 400


class ClaimError(VolumePoolException):
    """Base of the errors about one claim; ``claim_key`` names it."""

    @property
    def claim_key(self):
        return self.kwargs.get('claim_key')


class ClaimInProgress(ClaimError):
    """A claim with this key is still running: ask again shortly."""

    msg_fmt = "Claim %(claim_key)s is still in progress; retry shortly."
    code = 409


class ClaimKeyConflict(ClaimError):
    """The key was used for a claim with other arguments."""

    msg_fmt = ("Claim key %(claim_key)s was already used with other "
               "arguments.")
    code = 409


class ClaimNotFound(ClaimError):
    msg_fmt = "No claim with key %(claim_key)s in this cluster and project."
    code = 404


class ClaimReleased(ClaimError):
    """The claim was released: its volume went back to the pool."""

    msg_fmt = ("Claim %(claim_key)s was released; its volume is back in "
               "the pool.")
    code = 410


class ClaimLeaseExpired(ClaimError):
    """The claim was never confirmed and its lease ran out: its volume
    went back to the pool."""

    msg_fmt = ("The lease of claim %(claim_key)s ran out before it was "
               "confirmed; its volume is back in the pool.")
    code = 410


class ClaimNotReleasable(ClaimError):
    msg_fmt = "Claim %(claim_key)s cannot be released: %(reason)s"
    code = 409


class ClaimTimedOut(ClaimError):
    """No answer within the caller's time.

    A claim that did not finish in time is undone by the manager.  With a
    key, a claim that finished just as the time ran out is held under its
    lease: ``release(claim_key)`` gives it back at once.
    """

    msg_fmt = ("No answer about claim %(claim_key)s in time; a claim that "
               "did not finish is undone, one that did can be released "
               "with its key.")
    code = 504


class BrokerError(VolumePoolException):
    """The client could not use the message broker: no manager answered.

    ``claim_key`` names the call's key when it had one; ``maybe_sent``
    says whether a message may have left this client before the broker
    failed (False: nothing reached any manager, there is nothing to undo).
    """

    msg_fmt = "The message broker cannot be used: %(reason)s"
    code = 503

    @property
    def claim_key(self):
        return self.kwargs.get('claim_key')

    @property
    def maybe_sent(self):
        return bool(self.kwargs.get('maybe_sent'))


class BrokerUnreachable(BrokerError, ServiceUnavailable):
    """No connection to the message broker within the caller's time.

    Ask again later: a keyed call is always safe to repeat with its key.
    """

    msg_fmt = "The message broker cannot be reached: %(reason)s"


class BrokerRefused(BrokerError):
    """The message broker refused this client's connection: its user,
    password or virtual host in ``transport_url`` is wrong.  Asking again
    does not help until the configuration is fixed."""

    msg_fmt = ("The message broker refused the connection (check the user, "
               "password and virtual host of transport_url): %(reason)s")
