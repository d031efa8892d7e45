"""A confirm drops the lease key and the deployment's in one conditional
PUT, and the lease key alone from a volume an earlier release leased
(it has no deployment key)."""

from volume_pool import cinder as vp_cinder
from volume_pool.tests.unit.claim_checks import lease_tags
from volume_pool.tests.unit.manager_steps import call
from volume_pool.tests.unit.manager_steps import fill


def test_a_confirm_drops_both_keys_in_one_put(make_manager, simulator):
    mgr = make_manager({'debian': 1})
    fill(mgr)
    result = call(mgr.claim, 'debian', name='vnf', claim_key='k')
    assert simulator.get_volume(result['volume_id'])['metadata'] == \
        lease_tags()
    seen = []
    take = simulator._take_fault

    def record(method, path):
        seen.append(method)
        return take(method, path)
    simulator._take_fault = record
    call(mgr.confirm, 'k')
    assert simulator.get_volume(result['volume_id'])['metadata'] == {}
    assert seen.count('PUT') == 1


def test_an_earlier_releases_lease_key_is_dropped_alone(make_manager,
                                                       simulator):
    mgr = make_manager({'debian': 1})
    fill(mgr)
    result = call(mgr.claim, 'debian', name='vnf', claim_key='k')
    with simulator._lock:
        metadata = simulator._store.volumes[result['volume_id']]['metadata']
        del metadata[vp_cinder.TAG_DEPLOYMENT]
        metadata['app'] = 'vnf-1'
    call(mgr.confirm, 'k')
    assert simulator.get_volume(result['volume_id'])['metadata'] == {
        'app': 'vnf-1'}
