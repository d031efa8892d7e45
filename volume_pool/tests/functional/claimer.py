"""Claim from another process:
``python claimer.py URL POOL CLAIMS THREADS [CLUSTER]``.

Prints one JSON list of the claimed volumes (or error class names), so the
contention test can count distinct volumes across processes.
"""

import volume_pool.cmd  # noqa: F401  (first: no eventlet, threading)

# isort: split

import concurrent.futures
import json
import sys

from oslo_config import cfg

from volume_pool import context as vp_context
from volume_pool import rpcapi


def main(url, pool, claims, threads, cluster=None):
    cfg.CONF([], project='volume-pool-claimer')
    transport = rpcapi.get_transport(cfg.CONF, url=url)
    api = rpcapi.VolumePoolAPI(transport, timeout=120)

    def claim(number):
        try:
            result = api.claim(vp_context.RequestContext(), pool,
                               name='claimer-%d' % number, cluster=cluster)
            return {'volume_id': result['volume_id'],
                    'source': result['source'],
                    'cluster': result['cluster'],
                    'snapshot_id': result['snapshot_id']}
        except Exception as exc:
            return {'error': exc.__class__.__name__, 'message': str(exc)}

    try:
        with concurrent.futures.ThreadPoolExecutor(threads) as executor:
            results = list(executor.map(claim, range(claims)))
    finally:
        transport.cleanup()
    print(json.dumps(results))


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]),
         sys.argv[5] if len(sys.argv) > 5 else None)
