"""Checks of the exactly-once claims, from what the simulator's Cinder and
the tables hold -- never a log line: a volume is handed to one caller at
most, a failed or undone claim leaves its volume in the pool with its pool
name and tags, a retry with the same key gets the same answer, and the
pool ends at its target with a row for every tagged volume.
"""

import concurrent.futures
import datetime

import sqlalchemy as sa

from volume_pool import cinder as vp_cinder
from volume_pool.db import api as db_api
from volume_pool.db import deployment as db_deployment
from volume_pool.db import models
from volume_pool.db import receipts as db_receipts
from volume_pool.tests.unit.manager_steps import counts
from volume_pool.tests.unit.manager_steps import tagged

PUT = ('PUT', '/volumes/{id}')
POST = ('POST', '/volumes')
# A volume by id (GET and PUT), not the listing (/volumes/detail).
ONE_VOLUME = r'^/volumes/[0-9a-f]{8}-[0-9a-f-]+$'
PAST = datetime.datetime(2000, 1, 1)


def pool_tags(pool, cluster, request_id):
    """The tags the test database's deployment puts on a pool volume."""
    return vp_cinder.pool_tags(pool, cluster, request_id,
                               db_deployment.identity())


def lease_tags(cluster=None):
    """The tags of a volume this deployment leased to a caller."""
    return vp_cinder.lease_tags(cluster, db_deployment.identity())


def receipt(key, project=''):
    return db_receipts.get(None, project, key)


def all_receipts():
    with db_api.reader() as session:
        return list(session.execute(
            sa.select(models.ClaimReceipt)).scalars())


def rows_by_volume():
    return {r.volume_id: r for r in db_api.get_rows(None)}


def snapshot_of_world(simulator):
    """Cinder's volumes and the table's rows and receipts, comparable."""
    volumes = sorted((v['id'], v['name'], v['status'],
                      tuple(sorted(v['metadata'].items())))
                     for v in simulator.list_volumes())
    rows = sorted((r.id, r.volume_id, r.status, r.claim_id)
                  for r in db_api.get_rows(None))
    receipts = sorted((r.claim_id, r.claim_key, r.state, r.volume_id)
                      for r in all_receipts())
    return volumes, rows, receipts


def assert_in_pool(simulator, volume_id, pool='debian'):
    """The volume is a ready pool volume: row available, and in Cinder the
    row's name and the pool's tags, no lease tag."""
    row = rows_by_volume().get(volume_id)
    assert row is not None, 'volume %s has no row' % volume_id
    assert row.status == models.AVAILABLE
    assert row.claim_id is None
    volume = simulator.get_volume(volume_id)
    assert volume['name'] == row.name
    assert volume['metadata'].get(vp_cinder.TAG_POOL) == pool
    assert volume['metadata'].get(vp_cinder.TAG_REQUEST) == row.request_id
    assert vp_cinder.TAG_LEASE not in volume['metadata']


def assert_settled(mgr, simulator, pool='debian'):
    """At target, every tagged volume has a row and every row a volume,
    nothing held."""
    target = mgr.specs[pool].target
    assert counts(pool) == ({models.AVAILABLE: target} if target else {})
    volumes = tagged(simulator, pool)
    assert len(volumes) == target
    assert {v['id'] for v in volumes} == set(rows_by_volume())
    for volume in volumes:
        assert_in_pool(simulator, volume['id'], pool)


def in_thread(function, *args, **kwargs):
    """Run ``function`` in a thread; returns a future."""
    executor = concurrent.futures.ThreadPoolExecutor(1)
    future = executor.submit(function, *args, **kwargs)
    executor.shutdown(wait=False)
    return future


def past_the_late_window(mgr):
    """Move past the late window of the requests a claim gave up on: the
    rule allows sync to give their volumes back from now."""
    mgr.late_window.seconds = 0.0
