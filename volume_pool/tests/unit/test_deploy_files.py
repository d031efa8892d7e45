"""The systemd unit of volume-pool-manager (the shell tools and the
DevStack plugin are run by bash in the functional layer)."""

import configparser
import os

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


def test_systemd_unit():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(os.path.join(TOP, 'etc', 'systemd',
                           'volume-pool-manager.service'))
    service = unit['Service']
    assert service['Type'] == 'simple'
    assert service['ExecStart'].split()[:3] == [
        '/usr/bin/volume-pool-manager', '--config-file',
        '/etc/volume-pool/volume-pool.conf']
    assert '-HUP' in service['ExecReload']
    # Longer than the service's own graceful_shutdown_timeout (60 s).
    assert int(service['TimeoutStopSec']) > 60
    assert unit['Install']['WantedBy'] == 'multi-user.target'
