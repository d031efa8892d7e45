"""Fixtures of the unit tests that run a Manager, or the whole service,
in process."""

import pytest

from volume_pool import cinder as vp_cinder
from volume_pool import manager as vp_manager
from volume_pool import rpc
from volume_pool import service
from volume_pool.tests import services
from volume_pool.tests.conftest import cinder_section


@pytest.fixture
def make_manager(write_config, database, simulator, conf):
    """Build Managers on the simulator, stopped at the end of the test.

    ``pools`` maps a name to its target, or to its ``[pool:NAME]`` options
    (the key ``snapshot_size`` sizes the pool's snapshot instead);
    ``options`` go to ``[volume_pool]``.  The pools' snapshot ids are in
    ``mgr.snapshots``.
    """
    managers = []

    def _make(pools=None, **options):
        pools = pools or {'debian': 3}
        snapshots, sections = {}, ''
        for name, pool in pools.items():
            pool = dict(pool) if isinstance(pool, dict) else {'target': pool}
            snapshots[name] = simulator.add_snapshot(
                size=pool.pop('snapshot_size', 1))
            sections += '[pool:%s]\nsnapshot_id = %s\n%s' % (
                name, snapshots[name],
                ''.join('%s = %s\n' % item for item in pool.items()))
        write_config('[DEFAULT]\nhost = test-host\n'
                     '[volume_pool]\nenabled_pools = %s\n'
                     'create_poll_interval = 0.05\n%s\n%s%s'
                     % (','.join(pools),
                        ''.join('%s = %s\n' % item
                                for item in options.items()),
                        cinder_section(simulator), sections))
        mgr = vp_manager.Manager(vp_cinder.Cinder(conf), conf=conf)
        mgr.init_host()
        mgr.snapshots = snapshots
        managers.append(mgr)
        return mgr

    yield _make
    for mgr in managers:
        mgr.prepare_for_shutdown()
        mgr.cleanup_host()


@pytest.fixture(params=['fake', 'rabbit'])
def transport_url(request):
    if request.param == 'fake':
        yield 'fake:///'
        return
    with services.rabbit_vhost() as url:
        yield url


@pytest.fixture
def running_service(write_config, database, simulator, conf, transport_url):
    snapshot = simulator.add_snapshot(size=1)
    write_config('[DEFAULT]\nhost = rpc-test\ntransport_url = %s\n'
                 '[volume_pool]\nenabled_pools = debian\n'
                 'create_poll_interval = 0.05\nperiodic_fuzzy_delay = 0\n'
                 '%s[pool:debian]\nsnapshot_id = %s\ntarget = 2\n'
                 % (transport_url, cinder_section(simulator), snapshot))
    rpc.init(conf)
    server = service.Service(conf)
    server.start()
    yield server
    server.stop()
    rpc.cleanup()
