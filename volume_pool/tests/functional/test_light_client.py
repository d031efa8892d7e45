"""The controller's client installed on its own: the volume-pool-client
distribution (client/) in a fresh virtualenv that gets only its declared
requirements, oslo.messaging and what it needs, claims, confirms and
releases against a real manager over RabbitMQ, with a real Cinder."""

import json
import os
import subprocess
import sys
import textwrap

from volume_pool import cinder as vp_cinder
from volume_pool.fixtures import waiting
from volume_pool.tests.functional import engines

# MariaDB only: what is tested is the client's installation; the
# claim itself is proven on both databases by the other tests.
pytestmark = engines.ON_MARIADB

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..',
                                   '..'))
# What the service needs and the controller must not have to install.
SERVICE_ONLY = ('sqlalchemy', 'oslo_db', 'alembic', 'pymysql',
                'cinderclient', 'keystoneauth1', 'tooz', 'oslo_upgradecheck')

CONTROLLER = textwrap.dedent('''
    import importlib.util, json, sys
    from oslo_config import cfg
    from oslo_context import context
    from volume_pool import exception
    from volume_pool import rpcapi

    url, pool = sys.argv[1], sys.argv[2]
    cfg.CONF([], project='controller')
    api = rpcapi.VolumePoolAPI(rpcapi.get_transport(cfg.CONF, url=url),
                               timeout=60)
    ctxt = context.RequestContext(project_id='tenant-1')
    first = api.claim(ctxt, pool, name='light-1', claim_key='light-1-root')
    again = api.claim(ctxt, pool, name='light-1', claim_key='light-1-root')
    api.confirm(ctxt, 'light-1-root')
    second = api.claim(ctxt, pool, name='light-2', claim_key='light-2-root')
    released = api.release(ctxt, 'light-2-root')
    try:
        api.claim(ctxt, 'no-such-pool')
    except exception.PoolNotFound:
        typed = True
    print(json.dumps({
        'first': first, 'again': again, 'released': released,
        'typed': typed, 'second': second,
        'absent': [m for m in %r if importlib.util.find_spec(m) is None],
    }))
''' % (SERVICE_ONLY,))


def _run(*args, timeout=600):
    result = subprocess.run(args, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_light_client_in_a_venv_of_its_own(managers, api, cinder, snapshot,
                                           pool_name, tmp_path):
    managers([(pool_name, snapshot, 2)])
    waiting.pool_ready(api, pool_name, 2)
    wheels = tmp_path / 'wheels'
    # pbr builds it, with the version of this clone.
    _run(sys.executable, '-m', 'pip', 'wheel', '--no-deps',
         '--no-build-isolation', '-q', '-w', str(wheels),
         os.path.join(TOP, 'client'))
    [wheel] = list(wheels.iterdir())
    venv = tmp_path / 'controller'
    _run(sys.executable, '-m', 'venv', str(venv))
    python = str(venv / 'bin' / 'python')
    _run(python, '-m', 'pip', 'install', '-q', '-c',
         os.path.join(TOP, 'upper-constraints.txt'), str(wheel))
    out = json.loads(_run(python, '-c', CONTROLLER,
                          managers.transport_url, pool_name))
    # Nothing of the service came with the client.
    assert out['absent'] == list(SERVICE_ONLY)
    first, second = out['first'], out['second']
    assert first['source'] == 'pool' and first['name'] == 'light-1'
    # The retry with the same key got the same volume.
    assert out['again']['volume_id'] == first['volume_id']
    assert out['typed'] is True
    volume = cinder.client().volumes.get(first['volume_id'])
    assert volume.name == 'light-1'
    assert vp_cinder.TAG_POOL not in volume.metadata
    assert vp_cinder.TAG_LEASE not in volume.metadata  # confirmed
    # The released one is back in its pool.
    assert out['released']['state'] in ('released', 'releasing')
    back = cinder.client().volumes.get(second['volume_id'])
    assert back.metadata.get(vp_cinder.TAG_POOL) == pool_name
