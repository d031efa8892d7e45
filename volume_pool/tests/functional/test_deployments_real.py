"""Two deployments in one real Cinder project, each with its database
(MariaDB or PostgreSQL) and its broker vhost, filling, claiming, syncing
and draining a pool of the same name: neither ever changes a volume of
the other."""

from oslo_config import cfg

from volume_pool import cinder as vp_cinder
from volume_pool import context as vp_context
from volume_pool import rpcapi
from volume_pool.fixtures import waiting
from volume_pool.tests import services
from volume_pool.tests.functional.test_real_peers import identity
from volume_pool.tests.functional.test_real_peers import table

CTXT = vp_context.RequestContext()


def ready_rows(db_url, pool):
    return {volume_id for volume_id, status in table(db_url, pool).items()
            if status == 'available'}


def tagged(cinder, pool):
    """``{volume id: (name, metadata)}`` of the pool's tagged volumes,
    whatever their deployment."""
    return {v.id: (v.name, v.metadata) for v in cinder.client().volumes.list(
        search_opts={'metadata': {vp_cinder.TAG_POOL: pool}})
        if v.status != 'deleting'}


def syncs(process):
    return process.log().count('Sync: ')


def claim_over(transport_url, pool, name):
    transport = rpcapi.get_transport(cfg.CONF, url=transport_url)
    try:
        return rpcapi.VolumePoolAPI(transport, timeout=60).claim(
            CTXT, pool, name=name)
    finally:
        transport.cleanup()


def wait_full(db_url, pool, target):
    return waiting.wait_for(
        lambda: len(ready_rows(db_url, pool)) >= target and
        ready_rows(db_url, pool), timeout=120,
        what='%d ready volumes of %s' % (target, pool))


def test_two_deployments_never_touch_each_others_volumes(
        managers, api, cinder, snapshot, pool_name, tmp_path):
    first = managers([(pool_name, snapshot, 4)], host='deployment-a')
    wait_full(managers.db_url, pool_name, 4)
    first_identity = identity(managers.db_url)
    with first.paused(settle=1):
        firsts = tagged(cinder, pool_name)
    assert len(firsts) == 4
    assert {metadata[vp_cinder.TAG_DEPLOYMENT]
            for _name, metadata in firsts.values()} == {first_identity}

    backend = managers.db_url.split('+')[0].split(':')[0]
    with services.provisioned_database(backend, tmp_path / 'b') as other_db, \
            services.rabbit_vhost() as other_broker:
        # A smaller target: adopting the first deployment's volumes would
        # have trimmed them as a surplus.
        second = managers([(pool_name, snapshot, 2)], host='deployment-b',
                          connection=other_db, broker=other_broker)
        seconds = wait_full(other_db, pool_name, 2)
        assert identity(other_db) != first_identity
        assert not seconds & set(firsts)
        claimed = claim_over(other_broker, pool_name, 'vnf-of-b')
        assert claimed['volume_id'] not in firsts
        drained = second.manage('pool', 'drain', pool_name)
        assert drained.returncode == 0, drained.stderr
        # Three more syncs of each deployment, after the drain.
        since = (syncs(first), syncs(second))
        waiting.wait_for(
            lambda: syncs(first) >= since[0] + 3 and
            syncs(second) >= since[1] + 3,
            timeout=90, what='three more syncs of each deployment')
        second.kill()

    # The first deployment's volumes are as they were, and its own.
    now = tagged(cinder, pool_name)
    for volume_id, (name, metadata) in firsts.items():
        assert now.get(volume_id) == (name, metadata), volume_id
    assert set(firsts) <= ready_rows(managers.db_url, pool_name)
    # What the second deployment refilled after its drain stays its own
    # through the first's claim and drain.
    seconds = {volume_id: found for volume_id, found in now.items()
               if found[1].get(vp_cinder.TAG_DEPLOYMENT) != first_identity}
    assert seconds, 'the second deployment refilled after its drain'
    assert api.claim(CTXT, pool_name, name='vnf-of-a')['volume_id'] in firsts
    assert first.manage('pool', 'drain', pool_name).returncode == 0
    after = tagged(cinder, pool_name)
    for volume_id, found in seconds.items():
        assert after.get(volume_id) == found, volume_id
    for volume_id in seconds:
        cinder.client().volumes.delete(volume_id)
