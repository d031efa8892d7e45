"""Footprint of an idle manager: resident memory and CPU per minute of a
real ``volume-pool-manager`` process with 1, 10 and 100 full pools.

The processes run at once, each with its own SQLite file, all on one
RabbitMQ vhost (each listens on its own host's queue).  Once every pool is
full, CPU is sampled over a short window and scaled to a minute.  The
replenish and sync tasks run every 10 s and 30 s here (60 s and 300 s by
default), so the window holds their idle runs: an upper bound.
"""

import concurrent.futures
import os

from volume_pool.bench import manager_proc
from volume_pool.bench import services
from volume_pool.db import models
from volume_pool.fixtures import cinder_handles

REPLENISH_INTERVAL = 10
SYNC_INTERVAL = 30


def run(sim, transport_url, workdir, pool_counts, window):
    snapshot_id = sim.add_snapshot(size=1)
    managers = []
    try:
        for count in pool_counts:
            url = 'sqlite:///%s' % os.path.join(workdir,
                                                'footprint-%d.sqlite' % count)
            text = manager_proc.config_text(
                host='footprint-%d' % count, transport_url=transport_url,
                connection=url,
                cinder_section=cinder_handles.cinder_section(sim.endpoint,
                                                       sim.project_id),
                pools={'p%03d' % n: {'snapshot_id': snapshot_id,
                                     'target': 1}
                       for n in range(count)},
                volume_pool_options={
                    'replenish_interval': REPLENISH_INTERVAL,
                    'sync_interval': SYNC_INTERVAL,
                    'create_poll_interval': 0.5})
            manager = manager_proc.ManagerProcess(
                workdir, 'footprint-%d' % count, text)
            manager.db_sync()
            managers.append((count, url, manager.start()))
        for count, url, manager in managers:
            manager.wait_until(
                lambda url=url, count=count: services.count_rows(
                    url, models.AVAILABLE) >= count,
                timeout=180, what='%d pools full' % count)
        figures = []
        with concurrent.futures.ThreadPoolExecutor(len(managers)) as ex:
            samples = list(ex.map(lambda m: m[2].resources(window),
                                  managers))
        for (count, _url, _manager), sample in zip(managers, samples,
                                                   strict=True):
            figures.append(dict(sample, pools=count))
        return {'replenish_interval_s': REPLENISH_INTERVAL,
                'sync_interval_s': SYNC_INTERVAL, 'window_s': window,
                'managers': figures}
    finally:
        for _count, _url, manager in managers:
            manager.stop()
