"""The claim path once more against a real Cinder (fake driver, no
Keystone) of :class:`volume_pool.fixtures.local_cinder.LocalCinder`: same
manager process, real RabbitMQ, MariaDB."""

import time

from volume_pool import cinder as vp_cinder
from volume_pool import context as vp_context
from volume_pool import rpcapi
from volume_pool.bench import claim
from volume_pool.bench import measure
from volume_pool.bench import services
from volume_pool.fixtures import cinder_handles
from volume_pool.fixtures import seeding


def _create_tagged(cinder, snapshot_id, count, timeout=300):
    """``count`` pool volumes made the way replenish makes them."""
    rows = []
    for _ in range(count):
        row = seeding.row_values(claim.POOL, None, snapshot_id,
                                  host='bench')
        volume = cinder.create_volume(
            snapshot_id=snapshot_id, name=row['name'], size=1,
            metadata=vp_cinder.pool_tags(claim.POOL, None,
                                         row['request_id']))
        row['volume_id'] = volume.id
        rows.append(row)
    wanted = {r['volume_id'] for r in rows}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = {v.id for v in cinder.list_volumes(
            {vp_cinder.TAG_POOL: claim.POOL}) if v.status == 'available'}
        if wanted <= ready:
            return rows
        time.sleep(0.5)
    raise RuntimeError('real Cinder did not make %d volumes available in '
                       '%ss' % (count, timeout))


def run(transport, transport_url, workdir, levels, calls, samples, poll):
    from volume_pool.fixtures import local_cinder
    local = local_cinder.LocalCinder()
    started = time.monotonic()
    local.start()
    try:
        startup = time.monotonic() - started
        snapshot_id = local.make_snapshot(size=1)
        cinder = cinder_handles.make_cinder(local.endpoint, local.project_id,
                                      timeout=60)
        seeded = claim.claims_needed(levels, calls)
        rows = _create_tagged(cinder, snapshot_id, seeded + max(levels))
        rename_ids = [r['volume_id'] for r in rows[seeded:]]
        pool_rows = rows[:seeded]
        with services.database('mysql', workdir) as url:
            manager = claim.serve(
                workdir, 'claim-real-cinder', transport_url, url,
                local.cinder_section(), snapshot_id,
                lambda engine: seeding.insert_rows(pool_rows, engine))
            api = rpcapi.VolumePoolAPI(transport, timeout=120)
            ctxt = vp_context.RequestContext()
            try:
                claim.wait_serving(manager, api, ctxt)
                figures, claimed = claim.run_levels(
                    api, ctxt, cinder, rename_ids, levels, calls, manager,
                    db_url=url)
            finally:
                manager.stop()
            db_server = services.server_version(url)
        unique = measure.check_unique(claimed)
        claim.check_handed_over(
            claimed, lambda vid: {'metadata': cinder.get_volume(vid)
                                  .metadata})
        no_pool = claim.no_pool_path(cinder, snapshot_id, samples, poll)
    finally:
        local.stop()
    return {'backend': 'mysql', 'label': 'MariaDB',
            'server': db_server, 'cinder': 'real (fake driver)',
            'cinder_startup_s': round(startup, 1),
            'levels': figures, 'claims_checked_unique': unique,
            'no_pool': no_pool,
            'speedup_vs_claim_p50': measure.ratio(
                no_pool['p50_ms'], figures[0]['claim']['p50_ms'], 1)}
