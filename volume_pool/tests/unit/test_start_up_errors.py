"""volume-pool-manager and volume-pool-manage refuse a bad configuration
in one line on stderr, exit code 2, before they reach any service."""

import pytest

from volume_pool.tests.conftest import cinder_section


@pytest.mark.parametrize('body, needle', [
    ('[volume_pool]\nenabled_pools = debian\n[pool:debian]\ntarget = 1\n'
     '[cinder]\nauth_type = noauth\n',
     '[pool:debian] snapshot_id is required'),
    ('[volume_pool]\nenabled_pools = debian\n[pool:debian]\n'
     'snapshot_id = 6f1c1a3e-0d8e-4c54-9a43-8f0a3a2f7e11\n',
     '[cinder] auth_type is required'),
    ('[volume_pool]\nenabled_pools = debian\n[pool:debian]\n'
     'snapshot_id = 6f1c1a3e-0d8e-4c54-9a43-8f0a3a2f7e11\n'
     '[cinder]\nauth_type = noauth\n',
     '[cinder] Auth plugin requires parameters which were not given'),
    ('[volume_pool]\nenabled_pools = debian\n[pool:debian]\n'
     'snapshot_id = 6f1c1a3e-0d8e-4c54-9a43-8f0a3a2f7e11\n'
     '[cinder]\nauth_type = noauth\nendpoint = http://127.0.0.1:9/v3\n'
     'project_id = p\nuser_id = u\nconnection_pool_size = 0\n',
     'connection_pool_size'),
    ('[volume_pool]\nenabled_pools = debian\n[pool:debian]\n'
     'snapshot_id = 6f1c1a3e-0d8e-4c54-9a43-8f0a3a2f7e11\n'
     '[cinder]\nauth_type = noauth\nendpoint = http://127.0.0.1:9/v3\n'
     'project_id = p\nuser_id = u\n[metrics]\nport = 99999\n',
     'port'),
])
def test_bad_config_stops_start_up_with_one_line(tmp_path, console, body,
                                                 needle):
    path = tmp_path / 'bad.conf'
    path.write_text('[database]\nconnection = sqlite:///%s/x.sqlite\n%s'
                    % (tmp_path, body))
    result = console('volume-pool-manager', '--config-file', str(path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert needle in lines[0]


GOOD_CINDER = ('[cinder]\nauth_type = noauth\nendpoint = http://127.0.0.1:9/v3\n'
               'project_id = p\nuser_id = u\n')


@pytest.mark.parametrize('section, needle', [
    ('[volume_pool]\nreplenish_interval = -5\n',
     '[volume_pool] replenish_interval: Should be greater than or equal to '
     '-1 (in '),
    ('[volume_pool]\nsync_interval = -2\n', '[volume_pool] sync_interval:'),
    ('[volume_pool]\nclaim_timeout = abc\n',
     "[volume_pool] claim_timeout: invalid literal for int() with base 10: "
     "'abc' (in "),
    ('[metrics]\nport = 99999\n',
     '[metrics] port: Should be less than or equal to 65535 (in '),
])
@pytest.mark.parametrize('command', [
    ('volume-pool-manager',), ('volume-pool-manage', 'pool', 'list'),
    ('volume-pool-status', 'upgrade', 'check')])
def test_a_value_out_of_range_names_group_option_and_file(
        tmp_path, console, section, needle, command):
    path = tmp_path / 'bad.conf'
    path.write_text('[database]\nconnection = sqlite:///%s/x.sqlite\n%s%s'
                    % (tmp_path, GOOD_CINDER, section))
    result = console(command[0], '--config-file', str(path), *command[1:])
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert needle in lines[0]
    assert str(path) in lines[0]
    assert 'LocationInfo' not in lines[0]


def test_a_pool_value_out_of_range_names_its_section_and_file(tmp_path,
                                                             console):
    path = tmp_path / 'bad.conf'
    path.write_text('[database]\nconnection = sqlite:///%s/x.sqlite\n%s'
                    '[volume_pool]\nenabled_pools = debian\n[pool:debian]\n'
                    'snapshot_id = 6f1c1a3e-0d8e-4c54-9a43-8f0a3a2f7e11\n'
                    'target = lots\n' % (tmp_path, GOOD_CINDER))
    result = console('volume-pool-manager', '--config-file', str(path))
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert '[pool:debian] target: ' in line
    assert '(in %s)' % path in line
    assert 'LocationInfo' not in line


@pytest.mark.parametrize('argv, option', [
    (('volume-pool-manage', 'claim', 'list', '--limit', '-3'), '--limit'),
    (('volume-pool-manage', 'claim', 'list', '--limit', '0'), '--limit'),
    (('volume-pool-manage', 'claim', 'take', 'debian', '--timeout', '-1'),
     '--timeout'),
    (('volume-pool-manage', 'pool', 'list', '--timeout', 'soon'),
     '--timeout'),
    (('volume-pool-manage', 'cluster', 'drain', 'old', '--timeout', '-1'),
     '--timeout'),
    (('volume-pool-status', 'health', '--timeout', '0'), '--timeout'),
])
def test_negative_limits_and_timeouts_are_refused(tmp_path, console, argv,
                                                  option):
    path = tmp_path / 'good.conf'
    path.write_text('[database]\nconnection = sqlite:///%s/x.sqlite\n%s'
                    % (tmp_path, GOOD_CINDER))
    result = console(argv[0], '--config-file', str(path), *argv[1:])
    assert result.returncode == 2
    assert 'argument %s' % option in result.stderr
    assert 'Traceback' not in result.stderr


@pytest.mark.recollect
def test_missing_config_file_is_one_line(tmp_path, console):
    missing = str(tmp_path / 'nowhere.conf')
    result = console('volume-pool-manager', '--config-file', missing)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        'volume-pool-manager: Configuration error: Failed to find some '
        'config files: %s' % missing]


GOOD_START = ('[volume_pool]\nenabled_pools = debian\n[pool:debian]\n'
              'snapshot_id = 6f1c1a3e-0d8e-4c54-9a43-8f0a3a2f7e11\n'
              '[cinder]\nauth_type = noauth\n'
              'endpoint = http://127.0.0.1:9/v3\nproject_id = p\n'
              'user_id = u\n')


def _run_with(console, tmp_path, messaging_conf, *command):
    """Run ``command`` on a config that is good but for ``messaging_conf``
    (the database is never synced: the URL must fail first)."""
    path = tmp_path / 'bad-url.conf'
    path.write_text('%s\n[database]\nconnection = sqlite:///%s/x.sqlite\n%s'
                    % (messaging_conf, tmp_path, GOOD_START))
    return console(command[0], '--config-file', str(path), *command[1:])


def _one_line(result, needle):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert needle in lines[0]
    return lines[0]


@pytest.mark.parametrize('url, reason', [
    ('foo://x', 'no oslo.messaging driver for "foo://"'),
    ('rabbit://h:notaport/', "'notaport'"),
    ('garbage', 'No scheme specified'),
    ('rabbit://[::1/', 'Invalid IPv6 URL'),
    ('rabbit://h/?no_such_option=1', 'no_such_option'),
])
def test_bad_transport_url_stops_start_up_with_one_line(tmp_path, console,
                                                        url, reason):
    result = _run_with(console, tmp_path,
                       '[DEFAULT]\ntransport_url = %s' % url,
                       'volume-pool-manager')
    line = _one_line(result, 'volume-pool-manager: Configuration error: '
                             '[DEFAULT] transport_url: ')
    assert reason in line


def test_bad_notification_url_names_its_own_option(tmp_path, console):
    result = _run_with(console, tmp_path, '[DEFAULT]\ntransport_url = fake://\n'
                       '[oslo_messaging_notifications]\n'
                       'transport_url = garbage', 'volume-pool-manager')
    _one_line(result, '[oslo_messaging_notifications] transport_url: ')


@pytest.mark.recollect
def test_bad_transport_url_never_shows_the_password(tmp_path, console):
    result = _run_with(console, tmp_path, '[DEFAULT]\ntransport_url = '
                       'rabbit://guest:s3cret@h:notaport/',
                       'volume-pool-manager')
    line = _one_line(result, '[DEFAULT] transport_url')
    assert 's3cret' not in line


@pytest.mark.parametrize('command', [
    ('claim', 'take', 'debian'),
    ('pool', 'refill', 'debian'),
    ('pool', 'list'),
])
@pytest.mark.parametrize('url', ['foo://x', 'rabbit://h:notaport/'])
def test_manage_bad_transport_url_is_one_line(tmp_path, console, command,
                                              url):
    result = _run_with(console, tmp_path,
                       '[DEFAULT]\ntransport_url = %s' % url,
                       'volume-pool-manage', *command)
    _one_line(result, 'volume-pool-manage: Configuration error: '
                      '[DEFAULT] transport_url: ')


def test_a_missing_report_trigger_file_is_one_clear_line(tmp_path, console,
                                                        simulator):
    snapshot = simulator.add_snapshot(size=1)
    conf_path = tmp_path / 'volume-pool.conf'
    conf_path.write_text(
        '[DEFAULT]\ntransport_url = fake:///\n'
        '[database]\nconnection = sqlite:///%s/pool.sqlite\n'
        '[volume_pool]\nenabled_pools = debian\n%s'
        '[pool:debian]\nsnapshot_id = %s\ntarget = 1\n'
        '[oslo_reports]\nfile_event_handler = %s\n'
        % (tmp_path, cinder_section(simulator), snapshot,
           tmp_path / 'no-such-file'))
    result = console('volume-pool-manager', '--config-file', str(conf_path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert '[oslo_reports] file_event_handler' in lines[0]
