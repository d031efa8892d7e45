"""The per-test RabbitMQ vhost, made either way the fixture knows: the
management API (as .ci/run sets the broker up) and rabbitmqctl."""

import subprocess

import kombu
import pytest

from volume_pool.fixtures import rabbit
from volume_pool.fixtures import services
from volume_pool.tests import services as test_services


def vhosts():
    out = subprocess.run(['rabbitmqctl', '-q', 'list_vhosts', 'name'],
                         check=True, capture_output=True, text=True,
                         timeout=60).stdout
    return set(out.split())


@pytest.fixture(params=['management API', 'rabbitmqctl'])
def admin(request, monkeypatch):
    if request.param == 'rabbitmqctl':
        monkeypatch.setattr(rabbit, '_admin', rabbit._Rabbitmqctl)
    elif not rabbit._ManagementAPI(services.RABBIT_MANAGEMENT_URL).answers():
        test_services.unavailable(
            'RabbitMQ management API',
            'nothing answers at %s (tools/ensure-services.sh enables the '
            'plugin)' % services.RABBIT_MANAGEMENT_URL)
    return request.param


def test_a_vhost_of_its_own_is_usable_then_gone(admin):
    with rabbit.rabbit_vhost(prefix='volume-pool-vhost-test') as url:
        vhost = url.rsplit('/', 1)[1]
        assert vhost in vhosts()
        amqp = 'amqp://' + url.split('://', 1)[1]
        with kombu.Connection(amqp, connect_timeout=10) as conn:
            queue = conn.SimpleQueue('probe')
            queue.put({'admin': admin})
            assert queue.get(timeout=10).payload == {'admin': admin}
            queue.close()
    assert vhost not in vhosts()
