"""Pool sizing: the target of the moment, the caps, and why a pool is short.

Replenish, the idle shrink, pool_status and volume-pool-manage all size
pools here, so they never disagree.  Everything is a function of values:
the pool's spec, its counts, its demand and the time.  Callers read those
first (the database, the estimator); nothing here reads them itself.

The target of the moment is

* the configured ``target``;
* for ``target = auto``, Little's law on the demand estimate
  (:mod:`volume_pool.demand`): ceil(rate x refill time x headroom), within
  ``min_ready`` and ``max_ready``;
* and at most ``min_ready`` while the pool is idle: nobody claimed from it
  for ``idle_ttl`` seconds (a pool never claimed counts from when a manager
  first served it).

Replenish creates what the pool lacks within ``max_creating`` and the caps
(``max_ready``, ``max_ready_gb``, ``[volume_pool] max_total_gb``); the cap
that binds is named in the pool's reason.
"""

import dataclasses
import math
import time

from volume_pool.db import models

# -- counts ------------------------------------------------------------------

def pool_counts(counts, spec, with_uncertain=False):
    """Ready and creating volumes of a pool's current snapshot.

    ``counts`` is ``db_api.count_by_pool``'s ``{pool: {snapshot: {status:
    n}}}``.  ``with_uncertain`` counts as ready the volumes of failed
    claims whose undo failed: sync most likely gives them back, and
    creating their replacements now would overfill the pool.
    """
    by_status = counts.get(spec.name, {}).get(spec.snapshot_id, {})
    ready = by_status.get(models.AVAILABLE, 0)
    if with_uncertain:
        ready += by_status.get(models.UNCERTAIN, 0)
    return ready, by_status.get(models.CREATING, 0)


@dataclasses.dataclass(frozen=True)
class Counts:
    """A pool's volumes as pool_status and ``pool list`` show them."""

    ready: int
    creating: int
    claiming: int = 0
    uncertain: int = 0
    deleting: int = 0
    stale: int = 0      # ready or creating, of an older snapshot


def counts_of(name, spec, counts):
    """The Counts of pool ``name`` (``spec`` None: no longer configured,
    and what it still holds counts as ready)."""
    totals = dict.fromkeys(models.STATUSES, 0)
    for by_status in counts.get(name, {}).values():
        for status, count in by_status.items():
            totals[status] = totals.get(status, 0) + count
    held = totals[models.AVAILABLE] + totals[models.CREATING]
    if spec is None:
        ready, creating = totals[models.AVAILABLE], totals[models.CREATING]
    else:
        ready, creating = pool_counts(counts, spec)
    return Counts(ready=ready, creating=creating,
                  claiming=totals[models.CLAIMING],
                  uncertain=totals[models.UNCERTAIN],
                  deleting=totals[models.DELETING],
                  stale=held - ready - creating)


# -- the target of the moment ------------------------------------------------

@dataclasses.dataclass(frozen=True)
class PoolDemand:
    """What the target of an auto or idle pool depends on."""

    estimate: object            # volume_pool.demand.Estimate
    last_activity: float        # the latest claim, or the first service
    now: float


@dataclasses.dataclass(frozen=True)
class Target:
    """A pool's target of the moment, and what it came from."""

    value: int
    computed: int | None = None     # target = auto, before the idle rule
    idle: bool = False
    demand: PoolDemand | None = None
    headroom: float | None = None


def uses_demand(spec):
    """True if the pool's target moves with its claims."""
    return bool(spec.auto or spec.idle_ttl)


def ceiling(spec):
    """The most ready volumes the pool ever keeps: its target, or
    ``max_ready`` for target = auto."""
    return spec.max_ready if spec.auto else spec.target


def auto_target(estimate, headroom, min_ready, max_ready):
    """Little's law target of an auto pool, within its bounds.

    The product is rounded to hundredths before rounding up, so that a
    claim that has all but faded out does not keep a volume.
    """
    expected = estimate.rate * estimate.refill_time * headroom
    return max(min_ready, min(max_ready, math.ceil(round(expected, 2))))


def is_idle(spec, last_activity, now):
    """True once the pool has seen no claim for ``idle_ttl`` seconds."""
    return bool(spec.idle_ttl and last_activity is not None and
                now - last_activity >= spec.idle_ttl)


def target_now(spec, headroom=None, demand=None):
    """What replenish aims at now.

    ``demand`` (a :class:`PoolDemand`) is needed when
    :func:`uses_demand`; ``headroom`` when the target is auto.
    """
    if spec is None:
        return Target(0)
    if not uses_demand(spec):
        return Target(spec.target)
    target, computed = spec.target, None
    if spec.auto:
        target = computed = auto_target(demand.estimate, headroom,
                                        spec.min_ready, spec.max_ready)
    idle = is_idle(spec, demand.last_activity, demand.now)
    if idle:
        target = min(target, spec.min_ready)
    return Target(target, computed=computed, idle=idle, demand=demand,
                  headroom=headroom)


def explain(spec, target):
    """The inputs of an auto or idle target, as pool_status shows them:
    ``{'auto': ..., 'idle': ...}``, None where they do not apply."""
    views = {'auto': None, 'idle': None}
    if spec is None or target.demand is None:
        return views
    estimate = target.demand.estimate
    if spec.auto:
        views['auto'] = {
            'computed_target': target.computed,
            'claim_rate_per_s': round(estimate.rate, 6),
            'refill_time_s': round(estimate.refill_time, 3),
            'refill_time_measured': estimate.refill_measured,
            'headroom': target.headroom,
            'min_ready': spec.min_ready, 'max_ready': spec.max_ready}
    if spec.idle_ttl:
        views['idle'] = {
            'idle': target.idle, 'idle_ttl': spec.idle_ttl,
            'min_ready': spec.min_ready,
            'last_activity_at': _iso(target.demand.last_activity)}
    return views


# -- caps --------------------------------------------------------------------

def volume_gb(spec, usage):
    """GiB of one new volume of the pool, or None while not known.

    ``usage`` is ``db_api.gb_by_pool``'s ``{pool: (known GiB, rows
    without a size, largest size)}``.  Every volume of a pool comes from
    one snapshot, so the largest size recorded is the size of the next one.
    """
    return spec.size or usage.get(spec.name, (0, 0, None))[2]


def held_gb(usage, pool, size=None):
    """GiB of a pool's ready and creating rows; a row without a size yet
    counts as ``size``, else the pool's largest, else 1 GiB."""
    known, unknown, largest = usage.get(pool, (0, 0, None))
    return known + unknown * (size or largest or 1)


def gb_capped(spec, max_total_gb):
    """True if a GiB cap applies: only then is the usage worth reading."""
    return spec.max_ready_gb is not None or max_total_gb is not None


@dataclasses.dataclass(frozen=True)
class Plan:
    """What one replenish run of a pool creates, and the cap that binds."""

    deficit: int
    capped: str | None = None   # e.g. 'max_ready=3'


def plan(spec, target, ready, creating, usage, max_total_gb=None):
    """Creates needed to reach ``target`` within max_creating and caps."""
    want = target - ready - creating
    caps = []
    if spec.max_ready is not None:
        caps.append((spec.max_ready - ready - creating,
                     'max_ready=%d' % spec.max_ready))
    rooms = []
    size = volume_gb(spec, usage)
    if spec.max_ready_gb is not None:
        rooms.append((spec.max_ready_gb - held_gb(usage, spec.name, size),
                      'max_ready_gb=%d' % spec.max_ready_gb))
    if max_total_gb is not None:
        total = sum(held_gb(usage, pool, size if pool == spec.name else None)
                    for pool in set(usage) | {spec.name})
        rooms.append((max_total_gb - total, 'max_total_gb=%d' % max_total_gb))
    for room, label in rooms:
        if size is None:
            # Size not known yet: one volume first, to learn it.
            caps.append((1 if room >= 1 and not creating else 0, label))
        else:
            caps.append((int(room // size), label))
    deficit = max(0, min([want, spec.max_creating - creating] +
                         [limit for limit, _label in caps]))
    binding = min(caps, default=None, key=lambda cap: cap[0])
    if binding is not None and binding[0] < want:
        return Plan(deficit, binding[1])
    return Plan(deficit)


# -- why a pool is where it is -----------------------------------------------

def reason(name, spec, counts, target, capped=None, held=None,
           coordination=None, reconciled=True):
    """Why a pool is where it is, so nobody has to read the logs.

    ``counts``: its :class:`Counts`; ``target``: its :class:`Target`;
    ``capped``: the binding cap of its :class:`Plan`; ``held``: its
    backoff state.  ``coordination`` (``owns(name)``, ``degraded``) is
    asked last, and only for a pool short with nothing under way: asking
    may reach the coordination backend.  None: this manager replenishes
    every pool.  ``reconciled``: False while no sync of this manager has
    reconciled the pool with Cinder (:mod:`volume_pool.reconciled`).
    """
    if spec is None:
        return ('not configured: volumes kept until "volume-pool-manage '
                'pool drain %s"' % name)
    if spec.target == 0:
        return 'disabled: target is 0'
    if counts.ready >= target.value:
        if target.idle:
            return 'idle: no claim for %ds, keeps min_ready=%d%s' % (
                spec.idle_ttl, spec.min_ready,
                ' (shrinking)' if counts.ready > spec.min_ready else '')
        return 'full'
    if held and held['paused']:
        return 'paused after %d failed creates: %s' % (
            held['failures'], held['last_error'])
    if held:
        return 'backing off until %s: %s' % (_iso(held['until']),
                                             held['last_error'])
    if capped:
        return 'capped at %s' % capped
    if counts.creating >= spec.max_creating:
        return 'creating (capped at max_creating=%d)' % spec.max_creating
    if counts.creating:
        return 'creating'
    if coordination is not None and not coordination.owns(name):
        if coordination.degraded:
            return ('coordination backend unreachable: waiting for it '
                    'to share out the pools (claims go on)')
        return 'replenished by another manager'
    if not reconciled:
        return ('waiting for the first sync with Cinder: no refill before '
                'it has listed the pool and adopted its volumes without a '
                'row')
    return 'waiting for the next replenish'


def _iso(seconds):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(seconds))
