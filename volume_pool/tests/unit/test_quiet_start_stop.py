"""A normal start and stop of volume-pool-manager logs no WARNING: a
warning at every start or stop teaches operators to ignore warnings.
Re-collected on RabbitMQ by the functional layer, where the broker's
own notices at stop come in."""

import time

import pytest

from volume_pool.fixtures import manager_process
from volume_pool.tests.conftest import cinder_section

# The functional layer runs these again on the real services.
pytestmark = pytest.mark.recollect

CONFIG = """\
[DEFAULT]
host = quiet-manager
transport_url = %(transport_url)s

[database]
connection = sqlite:///%(workdir)s/pool.sqlite

[volume_pool]
enabled_pools = debian
replenish_interval = 1
periodic_fuzzy_delay = 0

%(cinder)s
[pool:debian]
snapshot_id = %(snapshot)s
target = 2
"""
SERVING = 'volume-pool-manager serving pools'


def _wait_for(path, text, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path) as log:
            if text in log.read():
                return
        time.sleep(0.2)
    raise AssertionError('%r not logged within %ss' % (text, timeout))


def _wait_filled(simulator, count, timeout=60):
    """The manager ran its periodic work: it made the pool's volumes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(simulator.list_volumes()) >= count:
            return
        time.sleep(0.2)
    raise AssertionError('the pool did not fill within %ss' % timeout)


def _not_quiet(log_text):
    return [line for line in log_text.splitlines()
            if ' WARNING ' in line or ' ERROR ' in line or
            'Traceback' in line]


def test_a_normal_start_and_stop_log_no_warning(tmp_path, simulator,
                                                transport_url):
    config = CONFIG % {
        'transport_url': transport_url, 'workdir': tmp_path,
        'cinder': cinder_section(simulator),
        'snapshot': simulator.add_snapshot(size=1)}
    manager = manager_process.ManagerProcess(str(tmp_path), 'quiet', config)
    manager.db_sync()
    manager.start()
    try:
        _wait_for(manager.log_path, SERVING)
        _wait_filled(simulator, 2)
    finally:
        code = manager.terminate()
    with open(manager.log_path) as log:
        text = log.read()
    assert code == 0, text
    assert 'volume-pool-manager stopped' in text
    assert _not_quiet(text) == []
