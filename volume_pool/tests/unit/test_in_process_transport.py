"""fake:// never leaves its process: the commands that would call a
manager over it, or serve one to others, say so in one line at once
instead of waiting for a timeout."""

import time

import pytest

CONFIG = ('[DEFAULT]\ntransport_url = fake:///\n'
          '[database]\nconnection = sqlite:///%s/x.sqlite\n'
          '[volume_pool]\nenabled_pools = debian\n[pool:debian]\n'
          'snapshot_id = 6f1c1a3e-0d8e-4c54-9a43-8f0a3a2f7e11\n'
          '[cinder]\nauth_type = noauth\n'
          'endpoint = http://127.0.0.1:9/v3\nproject_id = p\nuser_id = u\n')


def _one_line(result, needle):
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert needle in lines[0]
    return lines[0]


@pytest.mark.parametrize('command', [
    ('volume-pool-manage', 'claim', 'take', 'debian', '--timeout', '30'),
    ('volume-pool-manage', 'pool', 'refill', 'debian'),
    ('volume-pool-status', 'health', '--timeout', '30'),
])
def test_a_command_on_fake_transport_says_why_at_once(tmp_path, console,
                                                      command):
    path = tmp_path / 'fake.conf'
    path.write_text(CONFIG % tmp_path)
    started = time.monotonic()
    result = console(command[0], '--config-file', str(path), *command[1:])
    line = _one_line(result, '[DEFAULT] transport_url: fake:// is '
                             "oslo.messaging's in-process transport")
    assert 'rabbit://' in line
    assert time.monotonic() - started < 10  # no time-out waited for


def test_pool_list_on_fake_transport_shows_the_database_and_why(tmp_path,
                                                               console):
    path = tmp_path / 'fake.conf'
    path.write_text(CONFIG % tmp_path)
    assert console('volume-pool-manage', '--config-file', str(path), 'db',
                   'sync').returncode == 0
    started = time.monotonic()
    result = console('volume-pool-manage', '--config-file', str(path),
                     'pool', 'list', '--timeout', '30')
    assert result.returncode == 0, result.stderr
    assert 'debian' in result.stdout
    assert ("fake:// is oslo.messaging's in-process transport"
            in result.stderr)
    assert 'showing the database counts' in result.stderr
    assert time.monotonic() - started < 10


def test_serving_the_demo_on_fake_transport_is_refused(console):
    result = console('volume-pool-demo', '--serve',
                     '--transport-url', 'fake:///')
    line = _one_line(result, "fake:// is oslo.messaging's in-process "
                             'transport, no other process can reach it')
    assert 'rabbit://guest:guest@127.0.0.1:5672/' in line


def test_serving_on_a_broker_that_does_not_answer_is_one_line(console):
    result = console('volume-pool-demo', '--serve', '--transport-url',
                     'rabbit://guest:guest@127.0.0.1:9/')
    _one_line(result, 'no RabbitMQ answers at 127.0.0.1:9')


def test_the_help_tells_how_to_serve(console):
    result = console('volume-pool-demo', '--help')
    assert result.returncode == 0
    assert '--serve' in result.stdout
    assert 'fake:// never leaves its process' in ' '.join(
        result.stdout.split())
