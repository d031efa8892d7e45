"""The record pool_status answers for one pool.

Counts, target and reason come from :mod:`volume_pool.sizing`, the same
figures replenish works with; the manager adds what only it knows (its
backoff, its claim figures, who replenishes the pool).
"""

from volume_pool import sizing


def record(name, cluster, spec, counts, target, capped=None, held=None,
           claims=None, coordination=None, reconciled=True):
    """The pool's status as a dict (``spec`` None: a pool no longer
    configured that still holds volumes).

    ``counts``: ``db_api.count_by_pool``'s; ``target``: the pool's
    :class:`~volume_pool.sizing.Target`; ``capped``, ``held``,
    ``coordination`` and ``reconciled``: as for
    :func:`volume_pool.sizing.reason`.
    """
    pool = sizing.counts_of(name, spec, counts)
    views = sizing.explain(spec, target)
    return {
        'name': name,
        'cluster': cluster,
        'snapshot_id': spec.snapshot_id if spec else None,
        # The target of the moment (computed for auto, min_ready while
        # idle); configured_target is what the config says.
        'target': target.value,
        'configured_target': spec.target_label if spec else None,
        'ready': pool.ready,
        'creating': pool.creating,
        'claiming': pool.claiming,
        'uncertain': pool.uncertain,
        'deleting': pool.deleting,
        'stale': pool.stale,
        'configured': spec is not None,
        'reason': sizing.reason(name, spec, pool, target, capped=capped,
                                held=held, coordination=coordination,
                                reconciled=reconciled),
        'backoff': held,
        'reconciled': reconciled,
        'claims': claims,
        'auto': views['auto'],
        'idle': views['idle'],
        'capped': capped,
    }
