"""volume-pool-manage, run as the operator runs it: a console script."""

import json
import subprocess

import pytest

from volume_pool.db import api as db_api
from volume_pool.db import models
from volume_pool.tests import conftest
from volume_pool.tests.conftest import cinder_section
from volume_pool.tests.unit.test_process import console_script

SNAP = '6f1c1a3e-0d8e-4c54-9a43-8f0a3a2f7e11'


@pytest.fixture
def manage(tmp_path, simulator):
    snapshot = simulator.add_snapshot(size=1)
    conf_path = tmp_path / 'volume-pool.conf'
    conf_path.write_text(
        '[database]\nconnection = sqlite:///%s/pool.sqlite\n'
        '[volume_pool]\nenabled_pools = debian\n%s'
        '[pool:debian]\nsnapshot_id = %s\ntarget = 2\n'
        % (tmp_path, cinder_section(simulator), snapshot))

    def _run(*args, config=True):
        argv = [console_script('volume-pool-manage')]
        if config:
            argv += ['--config-file', str(conf_path)]
        return subprocess.run(argv + list(args), capture_output=True,
                              text=True, timeout=60)
    _run.conf_path = conf_path
    _run.snapshot = snapshot
    return _run


def test_db_sync_then_version(manage):
    assert manage('db', 'version').stdout.startswith('None')
    result = manage('db', 'sync')
    assert result.returncode == 0, result.stderr
    assert 'Database is at revision b1f0c0a1e001' in result.stdout
    assert manage('db', 'version').stdout.strip() == 'b1f0c0a1e001'


def test_pool_list_show_and_drain(manage, simulator, monkeypatch):
    assert manage('db', 'sync').returncode == 0
    url = 'sqlite:///%s' % manage.conf_path.parent.joinpath('pool.sqlite')
    conftest.use_database(url, monkeypatch)
    volume_id = simulator.add_volume(snapshot_id=manage.snapshot,
                                     metadata={'volume_pool': 'debian'})
    db_api.create_volume_row(
        request_id='r1', volume_id=volume_id, pool='debian', cluster=None,
        snapshot_id=manage.snapshot, size=1, name='n1', host='h',
        status=models.AVAILABLE)

    result = manage('pool', 'list', '--format', 'json')
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    assert listing == [{'name': 'debian', 'cluster': '-', 'target': 2,
                        'ready': 1, 'creating': 0, 'claiming': 0,
                        'deleting': 0, 'snapshot_id': manage.snapshot}]
    table = manage('pool', 'list').stdout
    assert '| debian |' in table.replace('  ', ' ')
    shown = json.loads(manage('pool', 'show', 'debian', '--format',
                              'json').stdout)
    assert [v['volume_id'] for v in shown] == [volume_id]

    drained = manage('pool', 'drain', 'debian')
    assert drained.returncode == 0, drained.stderr
    assert '1 volumes deleted' in drained.stdout
    volume = simulator.get_volume(volume_id)
    assert volume is None or volume['status'] == 'deleting'
    listing = json.loads(manage('pool', 'list', '--format', 'json').stdout)
    assert listing[0]['ready'] == 0 and listing[0]['deleting'] == 1


@pytest.mark.parametrize('args, code, needle', [
    (('pool', 'show', 'nope'), 1, "Unknown pool 'nope'"),
    (('pool', 'frobnicate'), 2, 'invalid choice'),
    (('db',), 2, 'required'),
])
def test_errors_are_one_line_with_exit_code(manage, args, code, needle):
    manage('db', 'sync')
    result = manage(*args)
    assert result.returncode == code, result
    assert needle in result.stderr
    assert 'Traceback' not in result.stderr


def test_bad_config_is_one_clear_line(manage):
    manage.conf_path.write_text(manage.conf_path.read_text().replace(
        'target = 2', 'target = -3'))
    result = manage('pool', 'list')
    assert result.returncode == 2
    assert '[pool:debian] target' in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_help_explains_each_command(manage):
    top = manage('--help', config=False)
    assert top.returncode == 0
    assert 'db' in top.stdout and 'pool' in top.stdout
    pool_help = manage('pool', '--help', config=False)
    for action in ('list', 'show', 'drain'):
        assert action in pool_help.stdout
