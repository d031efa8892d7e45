"""The per-test RabbitMQ vhost, made either way the fixture knows: the
management API (where tools/ensure-services.sh enabled the plugin) and
rabbitmqctl."""

import subprocess

import kombu
import pytest

from volume_pool.fixtures import rabbit
from volume_pool.fixtures import services


def vhosts():
    out = subprocess.run(['rabbitmqctl', '-q', 'list_vhosts', 'name'],
                         check=True, capture_output=True, text=True,
                         timeout=60).stdout
    return set(out.split())


@pytest.fixture(params=['chosen', 'rabbitmqctl'])
def admin(request, monkeypatch):
    """The way the fixture picks by itself, and rabbitmqctl forced."""
    if request.param == 'rabbitmqctl':
        monkeypatch.setattr(rabbit, '_admin', rabbit.Rabbitmqctl)
    return rabbit._admin().name


def test_a_vhost_of_its_own_is_usable_then_gone(admin):
    with rabbit.rabbit_vhost(prefix='volume-pool-vhost-test') as url:
        vhost = url.rsplit('/', 1)[1]
        assert vhost in vhosts()
        amqp = 'amqp://' + url.split('://', 1)[1]
        with kombu.Connection(amqp, connect_timeout=10) as conn:
            queue = conn.SimpleQueue('probe')
            queue.put({'made by': admin})
            assert queue.get(timeout=10).payload == {'made by': admin}
            queue.close()
    assert vhost not in vhosts()


def test_an_api_that_does_not_answer_leaves_it_to_rabbitmqctl(monkeypatch):
    monkeypatch.setattr(services, 'RABBIT_MANAGEMENT_URL',
                        'http://guest:guest@127.0.0.1:9/api')
    assert isinstance(rabbit._admin(), rabbit.Rabbitmqctl)

