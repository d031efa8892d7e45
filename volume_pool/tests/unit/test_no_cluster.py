"""The cluster with no name on the wire: ``default`` in its volumes' tags,
``-`` in tooz group and lock names.  Both outlive a release: volumes keep
their tags, and during a rolling upgrade the managers of the previous
release share groups and locks with the new ones.  Renaming either form
breaks an upgrade, so it must fail here first."""

from volume_pool import cinder as vp_cinder
from volume_pool import cluster_names
from volume_pool import coordination


def test_the_wire_forms_of_the_cluster_with_no_name_stay():
    # Cinder volume tags, and the name an operator types.
    assert cluster_names.NO_CLUSTER == 'default'
    for no_cluster in (None, ''):
        assert vp_cinder.pool_tags('debian', no_cluster, 'r-1')[
            vp_cinder.TAG_CLUSTER] == 'default'
        assert vp_cinder.lease_tags(no_cluster) == {
            vp_cinder.TAG_LEASE: 'default'}
        # tooz group and lock names.
        assert coordination.group_id(no_cluster) == b'volume-pool.-'
        assert coordination.lock_name(no_cluster, 'debian') == (
            b'volume-pool.replenish.-.debian')


def test_a_named_cluster_is_its_name_in_every_form():
    assert vp_cinder.pool_tags('debian', 'east', 'r-1')[
        vp_cinder.TAG_CLUSTER] == 'east'
    assert coordination.group_id('east') == b'volume-pool.east'
    assert coordination.lock_name('east', 'debian') == (
        b'volume-pool.replenish.east.debian')


def test_the_operator_names_the_cluster_with_no_name_default():
    assert cluster_names.key_of('default') == ''
    assert cluster_names.key_of(None) == ''
    assert cluster_names.key_of('east') == 'east'
    assert cluster_names.name_of('') == 'default'
    assert cluster_names.name_of('east') == 'east'
