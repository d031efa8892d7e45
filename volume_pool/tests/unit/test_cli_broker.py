"""The commands' exit codes and one-line errors when the broker is away
or refuses the credentials (the client's typed errors, scripted here;
the functional layer meets the real broker)."""

import pytest

from volume_pool import rpcapi
from volume_pool.cmd import manage_output
from volume_pool.cmd import status

URL = 'rabbit://guest:guest@127.0.0.1:1/'


@pytest.fixture
def conf_path(tmp_path):
    path = tmp_path / 'volume-pool.conf'
    path.write_text('[DEFAULT]\ntransport_url = %s\n[database]\n'
                    'connection = sqlite:///%s/pool.sqlite\n'
                    % (URL, tmp_path))
    return path


def _raising(monkeypatch, method, error):
    def call(self, *args, **kwargs):
        raise error
    monkeypatch.setattr(rpcapi.VolumePoolAPI, method, call)


UNREACHABLE = rpcapi.BrokerUnreachable(reason='no connection in time',
                                       maybe_sent=False)
REFUSED = rpcapi.BrokerRefused(reason='AccessRefused: (403)')


@pytest.mark.parametrize('error, code', [
    (UNREACHABLE, status.EXIT_BROKER_UNREACHABLE),
    (REFUSED, status.EXIT_CONFIG)])
def test_health_says_why_in_one_line(console, conf_path, monkeypatch,
                                     error, code):
    _raising(monkeypatch, 'ping', error)
    result = console('volume-pool-status', '--config-file', str(conf_path),
                     'health', '--host', 'mgr-1', '--timeout', '1')
    assert result.returncode == code
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in lines[0]
    assert 'message broker' in lines[0]


@pytest.mark.parametrize('error, code', [
    (UNREACHABLE, manage_output.EXIT_BROKER_UNREACHABLE),
    (REFUSED, manage_output.EXIT_USAGE)])
def test_manage_says_why_in_one_line(console, conf_path, monkeypatch,
                                     error, code):
    _raising(monkeypatch, 'refill', error)
    result = console('volume-pool-manage', '--config-file', str(conf_path),
                     'pool', 'refill', 'debian', '--timeout', '1')
    assert result.returncode == code
    assert result.stdout == ''
    [line] = result.stderr.strip().splitlines()
    assert line.startswith('volume-pool-manage: The message broker')


def test_a_claim_that_may_have_been_sent_names_its_key(console, conf_path,
                                                        monkeypatch):
    _raising(monkeypatch, 'claim', rpcapi.BrokerUnreachable(
        reason='gone', claim_key='k-1', maybe_sent=True))
    result = console('volume-pool-manage', '--config-file', str(conf_path),
                     'claim', 'take', 'debian', '--timeout', '1')
    assert result.returncode == manage_output.EXIT_BROKER_UNREACHABLE
    assert '"claim release k-1"' in result.stderr
