"""The cluster with no name, defined once, and how each place names a cluster.

A manager with no ``[DEFAULT] cluster`` serves the cluster with no name.
Managers, callers and the tables know it as None or ``''``; its volumes'
cluster and lease tags, and the operator, by :data:`NO_CLUSTER`; tooz
group and lock names by their own key form
(:func:`volume_pool.coordination.cluster_key`).
"""

# The name of the cluster with no name: the value of its volumes' cluster
# and lease tags, and what an operator types for it.  Volumes keep their
# tags across releases, so it never changes; no cluster may take it (the
# configuration check refuses it as [DEFAULT] cluster).
NO_CLUSTER = 'default'


def is_no_cluster(cluster):
    """True for a manager's, a caller's or a table's cluster value that
    names no cluster (None or the empty name)."""
    return not cluster


def key_of(name):
    """The table's key of an operator's cluster name (:data:`NO_CLUSTER`,
    the empty name and None are the cluster with no name)."""
    return '' if is_no_cluster(name) or name == NO_CLUSTER else name


def name_of(cluster):
    """A cluster's name as its volumes' tags and the operator write it:
    :data:`NO_CLUSTER` for the cluster with no name."""
    return NO_CLUSTER if is_no_cluster(cluster) else cluster
