"""The DevStack plugin and the shell tools, run by bash and checked by
shellcheck (which .ci/run installs)."""

import os
import shutil
import subprocess
import textwrap

import pytest

from volume_pool.tests import services

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
SCRIPTS = ['devstack/plugin.sh', 'devstack/settings',
           'volume_pool/fixtures/cinder-local.sh', 'tools/ensure-services.sh',
           'tools/render-diagrams.sh', '.ci/run']


@pytest.mark.parametrize('script', SCRIPTS)
def test_scripts_parse(script):
    subprocess.run(['bash', '-n', os.path.join(TOP, script)], check=True)


def test_scripts_pass_shellcheck():
    shellcheck = shutil.which('shellcheck')
    if shellcheck is None:
        services.unavailable('shellcheck', 'apt-get install shellcheck')
    result = subprocess.run(
        [shellcheck, '-s', 'bash', *[os.path.join(TOP, s) for s in SCRIPTS]],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


# DevStack functions, stubbed to record what the plugin asks for.
_STUBS = textwrap.dedent('''
    set -e
    DEST=/opt/stack; STACK_USER=stack; ENABLE_DEBUG_LOG_LEVEL=True
    KEYSTONE_SERVICE_URI=http://keystone; SERVICE_PASSWORD=secret
    SERVICE_PROJECT_NAME=service; SERVICE_DOMAIN_NAME=Default
    REGION_NAME=RegionOne
    rec() { echo "$*" >> "$LOG"; }
    get_python_exec_prefix() { echo "$STUB_BIN"; }
    enable_service() { rec enable_service "$@"; }
    is_service_enabled() { [[ " $STUB_DISABLED " != *" $1 "* ]]; }
    trueorfalse() { local v=${!2:-$1}; [[ $v == [Tt]rue ]] && echo True ||
        echo False; }
    SERVICE_HOST=10.0.0.5; ETCD_PORT=2379
    echo_summary() { :; }
    setup_develop() { rec setup_develop "$@"; }
    iniset() { rec iniset "$@"; }
    iniset_rpc_backend() { rec iniset_rpc_backend "$@"; }
    database_connection_url() { echo "mysql+pymysql://root@db/$1"; }
    recreate_database() { rec recreate_database "$@"; }
    create_service_user() { rec create_service_user "$@"; }
    run_process() { rec run_process "$@"; }
    stop_process() { rec stop_process "$@"; }
    sudo() { rec sudo "$@"; }
    is_ubuntu() { [[ "$STUB_DISTRO" == ubuntu ]]; }
    install_package() { rec install_package "$@"; }
    restart_service() { rec restart_service "$@"; }
    die() { rec die "$@"; exit 1; }
    openstack() {
        rec openstack "$@"
        case "$*" in
            *" show "*) echo available ;;
            *snapshot*) echo snap-1 ;;
            *) echo vol-1 ;;
        esac
    }
    hostname() { echo node-1; }
    source devstack/settings
    ''')


def _run_phase(tmp_path, *phase, env=None, check=True):
    log = tmp_path / 'calls.log'
    stub_bin = tmp_path / 'bin'
    stub_bin.mkdir(exist_ok=True)
    manage = stub_bin / 'volume-pool-manage'
    manage.write_text('#!/bin/sh\necho "volume-pool-manage $*" >> "$LOG"\n')
    manage.chmod(0o755)
    script = _STUBS + 'source devstack/plugin.sh %s\n' % ' '.join(phase)
    subprocess.run(['bash', '-c', script], cwd=TOP, check=check,
                   env={'LOG': str(log), 'PATH': os.environ['PATH'],
                        'STUB_BIN': str(stub_bin), 'STUB_DISTRO': 'ubuntu',
                        **(env or {})})
    return log.read_text().splitlines() if log.exists() else []


def test_devstack_phases(tmp_path):
    calls = _run_phase(tmp_path, 'stack', 'install')
    assert 'setup_develop /opt/stack/volume-pool' in calls
    # No coordination URL, no Redis.
    assert not [c for c in calls if c.startswith(('install_package',
                                                  'restart_service'))]

    calls = _run_phase(tmp_path, 'stack', 'post-config')
    conf = '/etc/volume-pool/volume-pool.conf'
    assert not [c for c in calls if ' coordination ' in c]
    assert 'iniset_rpc_backend volume-pool %s DEFAULT' % conf in calls
    assert ('iniset %s database connection '
            'mysql+pymysql://root@db/volume_pool' % conf) in calls
    assert 'iniset %s cinder auth_type password' % conf in calls
    assert 'recreate_database volume_pool' in calls

    calls = _run_phase(tmp_path, 'stack', 'extra')
    assert 'iniset %s pool:debian snapshot_id snap-1' % conf in calls
    assert 'iniset %s pool:debian target 2' % conf in calls
    assert 'iniset %s volume_pool enabled_pools debian' % conf in calls
    assert 'volume-pool-manage --config-file %s db sync' % conf in calls
    assert ('run_process volume-pool-manager %s/bin/volume-pool-manager '
            '--config-file %s' % (tmp_path, conf)) in calls

    assert 'stop_process volume-pool-manager' in _run_phase(tmp_path,
                                                            'unstack')


@pytest.mark.parametrize('distro, package', [('ubuntu', 'redis-server'),
                                             ('fedora', 'redis')])
def test_devstack_installs_the_redis_it_configures(tmp_path, distro,
                                                   package):
    env = {'VOLUME_POOL_COORDINATION_URL': 'redis://127.0.0.1:6379',
           'STUB_DISTRO': distro}
    calls = _run_phase(tmp_path, 'stack', 'install', env=env)
    assert calls.index('install_package %s' % package) < calls.index(
        'restart_service %s' % package)

    calls = _run_phase(tmp_path, 'stack', 'post-config', env=env)
    assert ('iniset /etc/volume-pool/volume-pool.conf coordination '
            'backend_url redis://127.0.0.1:6379') in calls


def test_devstack_leaves_other_coordination_backends_alone(tmp_path):
    env = {'VOLUME_POOL_COORDINATION_URL': 'etcd3+http://127.0.0.1:2379'}
    calls = _run_phase(tmp_path, 'stack', 'install', env=env)
    assert not [c for c in calls if c.startswith('install_package')]
    calls = _run_phase(tmp_path, 'stack', 'post-config', env=env)
    assert ('iniset /etc/volume-pool/volume-pool.conf coordination '
            'backend_url etcd3+http://127.0.0.1:2379') in calls


def test_devstack_points_at_its_own_etcd(tmp_path):
    env = {'VOLUME_POOL_COORDINATION_URL': 'etcd3'}
    calls = _run_phase(tmp_path, 'stack', 'post-config', env=env)
    assert ('iniset /etc/volume-pool/volume-pool.conf coordination '
            'backend_url etcd3+http://10.0.0.5:2379') in calls
    without = tmp_path / 'without-etcd3'
    without.mkdir()
    calls = _run_phase(without, 'stack', 'post-config', check=False,
                       env=dict(env, STUB_DISABLED='etcd3'))
    assert [c for c in calls if c.startswith('die ')], calls
    assert not [c for c in calls if ' coordination ' in c]


def test_devstack_turns_quorum_queues_on(tmp_path):
    conf = '/etc/volume-pool/volume-pool.conf'
    calls = _run_phase(tmp_path, 'stack', 'post-config')
    assert not [c for c in calls if 'oslo_messaging_rabbit' in c]
    quorum = tmp_path / 'quorum'
    quorum.mkdir()
    calls = _run_phase(quorum, 'stack', 'post-config',
                       env={'VOLUME_POOL_RABBIT_QUORUM_QUEUES': 'True'})
    for option in ('rabbit_quorum_queue', 'rabbit_transient_quorum_queue'):
        assert ('iniset %s oslo_messaging_rabbit %s True' % (conf, option)
                in calls)
