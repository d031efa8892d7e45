"""Events: oslo.messaging notifications of what the pool does.

Shaped like Cinder's image-volume cache notifications
(``image_volume_cache.hit`` / ``.miss`` / ``.evict``, INFO priority): one
event per claim hit or miss, per volume that became ready, and per volume
that left the pool without being claimed.  The publisher id is
``volume-pool.<host>``; the driver is ``[oslo_messaging_notifications]
driver`` (``noop`` by default, so nothing is sent unless asked).

=============================  ==============================================
event type                     payload (besides ``pool``, ``cluster``,
                               ``host``, ``volume_id``, ``snapshot_id``)
=============================  ==============================================
``volume_pool.claim.hit``      ``duration`` (s, the claim), ``ready_for``
                               (s the volume waited ready), ``project_id``
                               (the receiving project, or None)
``volume_pool.claim.miss``     ``duration``, ``create_on_miss``;
                               ``volume_id`` is the volume created for the
                               caller, None when none was (``PoolEmpty``:
                               ``create_on_miss`` false, or the pool's
                               ``max_miss_creates`` reached)
``volume_pool.volume.created`` ``duration`` (s from the create decision to
                               ``available``), ``size``
``volume_pool.volume.evict``   ``reason`` (see ``EVICT_REASONS``), ``age``
                               (s since the create decision, or None)
``volume_pool.claim.return``   ``reason`` (``release``: the caller gave it
                               back; ``lease``: its lease ran out
                               unconfirmed), ``claim_key``, ``age`` (s
                               since the claim)
=============================  ==============================================

Sending is best effort and off the work's path
(:mod:`volume_pool.event_sender`): without :func:`volume_pool.rpc.init`
(the CLI, unit tests) nothing is sent; otherwise the event is queued and
sent by a thread of its own, which reconnects once (to the next node of a
RabbitMQ cluster) before it logs and drops it.  An event can never break
or hang a claim.
"""

from oslo_log import log as logging
from oslo_utils import timeutils

from volume_pool import conf as vp_conf
from volume_pool import context as vp_context
from volume_pool import event_sender
from volume_pool import rpc

LOG = logging.getLogger(__name__)

PUBLISHER = 'volume-pool'
CLAIM_HIT = 'volume_pool.claim.hit'
CLAIM_MISS = 'volume_pool.claim.miss'
VOLUME_CREATED = 'volume_pool.volume.created'
VOLUME_EVICT = 'volume_pool.volume.evict'
CLAIM_RETURN = 'volume_pool.claim.return'

# Why a claimed volume came back to its pool.
RETURN_RELEASE = 'release'     # the caller released the claim
RETURN_LEASE = 'lease'         # its lease ran out unconfirmed

# Why a volume left the pool without being claimed.
EVICT_DRAIN = 'drain'          # the operator's drain
EVICT_ROTATION = 'rotation'    # the pool's snapshot changed
EVICT_IDLE = 'idle'            # idle shrink: unclaimed for idle_ttl
EVICT_ERROR = 'error'          # the volume ended in an error status
EVICT_STUCK = 'stuck'          # still creating after creating_timeout
EVICT_GONE = 'gone'            # deleted in Cinder behind the pool's back
EVICT_TAKEN = 'taken'          # attached or in use behind the pool's back
EVICT_SURPLUS = 'surplus'      # above target after volumes came back
EVICT_REASONS = (EVICT_DRAIN, EVICT_ROTATION, EVICT_IDLE, EVICT_ERROR,
                 EVICT_STUCK, EVICT_GONE, EVICT_TAKEN, EVICT_SURPLUS)

# Sent from a thread of its own, in order; the notifier is read at each
# send, so rpc.init() and rpc.cleanup() take effect at once.
SENDER = event_sender.EventSender(lambda: rpc.NOTIFIER)


def publisher_id(host):
    return '%s.%s' % (PUBLISHER, host)


def enabled():
    """True when a notification driver other than ``noop`` is set."""
    return rpc.NOTIFIER is not None and rpc.NOTIFICATIONS_ENABLED


def _seconds_since(moment):
    if moment is None:
        return None
    return round((timeutils.utcnow() -
                  timeutils.normalize_time(moment)).total_seconds(), 3)


def _send(event_type, payload, host, context=None):
    if not enabled():
        return
    host = host or vp_conf.CONF.host
    SENDER.send(event_type, dict(payload, host=host), publisher_id(host),
                context or vp_context.get_admin_context())


def flush(timeout=5.0):
    """Wait for the events already made to be sent (the end of the
    process, or a test); False if that takes longer than ``timeout``."""
    return SENDER.flush(timeout)


def claim_hit(host, spec, result, duration, ready_at=None, context=None):
    """A claim served from the pool; ``result`` is the claim's dict."""
    _send(CLAIM_HIT, {
        'pool': spec.name, 'cluster': spec.cluster,
        'volume_id': result['volume_id'],
        'snapshot_id': result['snapshot_id'],
        'duration': round(duration, 6),
        'ready_for': _seconds_since(ready_at),
        'project_id': result.get('project_id'),
    }, host, context)


def claim_miss(host, spec, duration, create_on_miss, result=None,
               context=None):
    """A claim the pool could not serve (a volume was created, or not)."""
    _send(CLAIM_MISS, {
        'pool': spec.name, 'cluster': spec.cluster,
        'volume_id': result['volume_id'] if result else None,
        'snapshot_id': spec.snapshot_id,
        'duration': round(duration, 6),
        'create_on_miss': create_on_miss,
    }, host, context)


def volume_created(host, row, volume_id=None, size=None):
    """A pool volume became ``available``; ``row`` is its pool row."""
    _send(VOLUME_CREATED, {
        'pool': row.pool, 'cluster': row.cluster or None,
        'volume_id': volume_id or row.volume_id,
        'snapshot_id': row.snapshot_id,
        'size': size if size is not None else row.size,
        'duration': _seconds_since(row.created_at),
    }, host)


def volume_evicted(host, row, reason):
    """A pool volume left the pool without a claim (``EVICT_REASONS``).

    Call it once the decision is made (the row is ``deleting`` or gone);
    idle shrink calls it with :data:`EVICT_IDLE`.
    """
    _send(VOLUME_EVICT, {
        'pool': row.pool, 'cluster': row.cluster or None,
        'volume_id': row.volume_id, 'snapshot_id': row.snapshot_id,
        'reason': reason,
        'age': _seconds_since(row.created_at),
    }, host)


def claim_returned(host, receipt, reason):
    """A claimed volume is back in its pool (``RETURN_*``)."""
    _send(CLAIM_RETURN, {
        'pool': receipt.pool, 'cluster': receipt.cluster or None,
        'volume_id': receipt.volume_id, 'snapshot_id': receipt.snapshot_id,
        'claim_key': receipt.claim_key, 'reason': reason,
        'age': _seconds_since(receipt.created_at),
    }, host)
