"""volume-pool-manage, run as the operator runs it: its console script's
``main(argv)`` here; the installed script in a process of its own, on
RabbitMQ and Redis, when the functional layer re-collects these tests."""

import json
import subprocess
import sys
import uuid

from oslo_db import exception as db_exc
from oslo_utils import uuidutils
import pytest
import yaml

from volume_pool import cinder as vp_cinder
from volume_pool import cluster_names
from volume_pool.cmd import manage_claims
from volume_pool.cmd import manage_clusters
from volume_pool.cmd import manage_output
from volume_pool.cmd import manage_pools
from volume_pool.cmd import manage_rpc
from volume_pool.db import api as db_api
from volume_pool.db import managers as db_managers
from volume_pool.db import migration
from volume_pool.db import models
from volume_pool.fixtures import waiting
from volume_pool.tests import conftest
from volume_pool.tests.conftest import cinder_section
from volume_pool.tests.conftest import own_conf
from volume_pool.tests.conftest import service_config
from volume_pool.tests.conftest import serving
from volume_pool.tests.unit import claim_checks

SNAP = '6f1c1a3e-0d8e-4c54-9a43-8f0a3a2f7e11'


@pytest.fixture
def manage(tmp_path, simulator, console):
    snapshot = simulator.add_snapshot(size=1)
    conf_path = tmp_path / 'volume-pool.conf'
    conf_path.write_text(
        '[database]\nconnection = sqlite:///%s/pool.sqlite\n'
        '[volume_pool]\nenabled_pools = debian\n%s'
        '[pool:debian]\nsnapshot_id = %s\ntarget = 2\n'
        % (tmp_path, cinder_section(simulator), snapshot))

    def _run(*args, config=True):
        argv = ['--config-file', str(conf_path)] if config else []
        return console('volume-pool-manage', *argv, *args, timeout=60)
    _run.conf_path = conf_path
    _run.snapshot = snapshot
    return _run


@pytest.mark.recollect
def test_db_sync_then_version(manage):
    assert manage('db', 'version').stdout.startswith('None')
    result = manage('db', 'sync')
    assert result.returncode == 0, result.stderr
    assert 'Database is at revision %s' % migration.head() in result.stdout
    assert manage('db', 'version').stdout.strip() == migration.head()


def test_db_sync_to_an_unknown_revision_is_one_line(manage):
    """alembic is loaded by the schema's commands only; its error is
    still a service error: one line naming it, no traceback."""
    result = manage('db', 'sync', '--revision', 'nosuchrevision')
    assert result.returncode == 1
    assert 'Traceback' not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith('volume-pool-manage: CommandError: '), line
    assert 'nosuchrevision' in line


def test_the_command_line_loads_without_alembic():
    """A third of a command's start-up: only the schema's commands pay
    it."""
    probe = subprocess.run(
        [sys.executable, '-c', 'import sys, volume_pool.cmd.manage; '
         'print(any(m.split(".")[0] == "alembic" for m in sys.modules))'],
        capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == 'False'


@pytest.mark.recollect
def test_db_sync_makes_the_deployment_identity_once(manage):
    first = manage('db', 'sync')
    assert first.returncode == 0, first.stderr
    [identity] = [line.split(': ', 1)[1] for line in
                  first.stdout.splitlines()
                  if line.startswith('Deployment identity: ')]
    assert uuidutils.is_uuid_like(identity)
    # A second sync keeps it: the volumes in Cinder carry it.
    again = manage('db', 'sync')
    assert 'Deployment identity: %s' % identity in again.stdout


@pytest.mark.recollect
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
                        'deleting': 0, 'snapshot_id': manage.snapshot,
                        'reason': manage_rpc.NO_TRANSPORT}]
    assert yaml.safe_load(manage('pool', 'list', '--format',
                                 'yaml').stdout) == listing
    table = manage('pool', 'list').stdout
    assert '| debian |' in table.replace('  ', ' ')
    shown = json.loads(manage('pool', 'show', 'debian', '--format',
                              'json').stdout)
    assert [v['volume_id'] for v in shown] == [volume_id]
    shown_yaml = yaml.safe_load(manage('pool', 'show', 'debian', '--format',
                                       'yaml').stdout)
    assert shown_yaml == shown

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


@pytest.mark.recollect
def test_help_explains_each_command(manage):
    top = manage('--help', config=False)
    assert top.returncode == 0
    for command in ('db', 'pool', 'claim', 'cluster'):
        assert command in top.stdout
    pool_help = manage('pool', '--help', config=False)
    for action in ('list', 'show', 'refill', 'drain'):
        assert action in pool_help.stdout


# Every command and subcommand, and a phrase of the why/when its --help
# must carry beyond the one-line summary.
HELP_PAGES = [
    (('db',), 'refuses to start'),
    (('db', 'sync'), 'Safe to run again'),
    (('db', 'version'), 'before an upgrade'),
    (('pool',), 'a pool is short'),
    (('pool', 'list'), 'reason'),
    (('pool', 'show'), 'stuck in creating'),
    (('pool', 'refill'), 'paused after repeated failed creates'),
    (('pool', 'drain'), 'free Cinder quota'),
    (('claim',), 'leaves a receipt'),
    (('claim', 'take'), 'same RPC call'),
    (('claim', 'list'), 'no manager needed'),
    (('claim', 'show'), 'was answered'),
    (('claim', 'release'), 'attached or handed to another project'),
    (('claim', 'confirm'), 'Ends the lease'),
    (('cluster',), 'NoLiveManager'),
    (('cluster', 'list'), 'backend_url'),
    (('cluster', 'adopt'), 'After changing [DEFAULT] cluster'),
    (('cluster', 'drain'), 'Refused while a manager of OLD is alive'),
]


@pytest.mark.parametrize('words, phrase', HELP_PAGES)
def test_every_command_has_a_help_that_says_why(manage, words, phrase):
    result = manage(*words, '--help', config=False)
    assert result.returncode == 0, result.stderr
    text = ' '.join(result.stdout.split())
    assert text.startswith('usage: volume-pool-manage ' + ' '.join(words))
    assert phrase in text


def test_cluster_list_formats_parse(manage, coordination_url):
    with open(manage.conf_path, 'a') as conf_file:
        conf_file.write('[coordination]\nbackend_url = %s\n'
                        % coordination_url)
    as_json = manage('cluster', 'list', '--cluster', 'nowhere', '--format',
                     'json')
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == []
    as_yaml = manage('cluster', 'list', '--cluster', 'nowhere', '--format',
                     'yaml')
    assert yaml.safe_load(as_yaml.stdout) == []
    for fmt, printed in (('table', '(none)\n'), ('value', ''),
                         ('csv', '"cluster","host","last_seen",'
                                 '"started_at"\n')):
        empty = manage('cluster', 'list', '--cluster', 'nowhere', '-f', fmt)
        assert (empty.returncode, empty.stdout) == (0, printed), empty


# -- -f and -c ---------------------------------------------------------------

# The commands that print data (listings, then show commands).
PRINTING = [('pool', 'list'), ('pool', 'show', 'debian'), ('cluster', 'list'),
            ('claim', 'list'), ('claim', 'take', 'debian'),
            ('claim', 'show', 'k'), ('claim', 'release', 'k'),
            ('claim', 'confirm', 'k')]


@pytest.mark.parametrize('words', PRINTING)
def test_every_printing_command_takes_format_and_column(manage, words):
    result = manage(*words[:2], '--help', config=False)
    assert result.returncode == 0, result.stderr
    text = ' '.join(result.stdout.split())
    assert '-f {table,json,yaml,value,csv}, --format' in text
    assert '-c COLUMN, --column COLUMN' in text


def _fields_of(words):
    """What -c accepts on a command, as it declares them."""
    return {
        ('pool', 'list'): manage_pools.POOL_FIELDS,
        ('pool', 'show'): manage_pools.VOLUME_COLUMNS,
        ('cluster', 'list'): manage_clusters.CLUSTER_COLUMNS,
        ('claim', 'list'): manage_claims.RECEIPT_FIELDS,
        ('claim', 'take'): manage_claims.CLAIMED_FIELDS,
        ('claim', 'show'): manage_claims.SHOWN_FIELDS,
        ('claim', 'release'): manage_claims.RECEIPT_FIELDS,
        ('claim', 'confirm'): manage_claims.RECEIPT_FIELDS,
    }[words[:2]]


@pytest.mark.parametrize('words', PRINTING)
def test_an_unknown_column_is_one_usage_line(manage, words):
    """Checked first: before the database, the config a command needs
    (transport_url, backend_url) or an RPC call is touched."""
    result = manage(*words, '-c', _fields_of(words)[0], '-c', 'nope', '-f',
                    'value')
    assert result.returncode == manage_output.EXIT_USAGE, result
    assert result.stdout == ''
    assert result.stderr == (
        "volume-pool-manage: unknown column 'nope'; valid columns: %s\n"
        % ', '.join(_fields_of(words)))


def test_pool_list_and_show_in_each_format(manage, simulator, monkeypatch):
    _database_of(manage, monkeypatch)
    for fmt, printed in (('table', '(none)\n'), ('value', ''),
                         ('csv', '"volume_id","status"\n')):
        empty = manage('pool', 'show', 'debian', '-f', fmt,
                       '-c', 'volume_id', '-c', 'status')
        assert (empty.returncode, empty.stdout) == (0, printed), empty
    volume_id = _pool_volume(simulator, manage, None)

    def out(*args):
        result = manage(*args)
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert out('pool', 'list', '-f', 'value') == (
        'debian - 2 1 0 0 0 %s %s\n' % (manage_rpc.NO_TRANSPORT,
                                       manage.snapshot))
    assert out('pool', 'list', '-f', 'value', '-c', 'name', '-c',
               'ready') == 'debian 1\n'
    assert out('pool', 'list', '-f', 'value', '-c', 'ready', '-c',
               'name') == '1 debian\n'
    assert out('pool', 'list', '-f', 'csv', '-c', 'name', '-c', 'target',
               '-c', 'reason') == (
        '"name","target","reason"\n"debian",2,"%s"\n'
        % manage_rpc.NO_TRANSPORT)
    assert out('pool', 'list', '-c', 'ready', '-c', 'name') == (
        '+-------+--------+\n'
        '| ready | name   |\n'
        '+-------+--------+\n'
        '|     1 | debian |\n'
        '+-------+--------+\n')
    header = out('pool', 'list').splitlines()[1]
    assert [c.strip() for c in header.strip('|').split('|')] == \
        manage_pools.POOL_COLUMNS
    # A field only the managers know: empty from the database, in -c order.
    as_json = out('pool', 'list', '-f', 'json', '-c', 'backoff', '-c',
                  'name')
    assert as_json == ('[\n  {\n    "backoff": null,\n'
                       '    "name": "debian"\n  }\n]\n')
    assert out('pool', 'list', '-f', 'yaml', '-c', 'name') == \
        '- name: debian\n'

    assert out('pool', 'show', 'debian', '-f', 'value', '-c', 'volume_id',
               '-c', 'status', '-c', 'size') == '%s available 1\n' % volume_id
    assert out('pool', 'show', 'debian', '-f', 'csv', '-c', 'status', '-c',
               'volume_id') == '"status","volume_id"\n"available","%s"\n' % (
        volume_id)


# -- a renamed cluster --------------------------------------------------------

def _database_of(manage, monkeypatch):
    """The CLI's database, synced, for this process to read and write."""
    assert manage('db', 'sync').returncode == 0
    conftest.use_database('sqlite:///%s' % manage.conf_path.parent.joinpath(
        'pool.sqlite'), monkeypatch)


def _pool_volume(simulator, manage, cluster, status=models.AVAILABLE):
    request_id = str(uuid.uuid4())
    volume_id = simulator.add_volume(
        snapshot_id=manage.snapshot,
        metadata=claim_checks.pool_tags('debian', cluster, request_id))
    db_api.create_volume_row(
        request_id=request_id, volume_id=volume_id, pool='debian',
        cluster=cluster, snapshot_id=manage.snapshot, size=1, name='n',
        host='h', status=status)
    return volume_id


def test_pool_list_notes_what_nobody_syncs(manage, simulator, monkeypatch):
    _database_of(manage, monkeypatch)
    _pool_volume(simulator, manage, 'old')
    db_managers.register('h1', None, 'inc-1')
    db_managers.register('h2', None, 'inc-2')
    result = manage('pool', 'list', '--format', 'json')
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]['name'] == 'debian'
    assert result.stderr.splitlines() == [
        'Note: cluster "old" has 1 volumes in the table (1 available) and '
        'no live manager: "volume-pool-manage cluster adopt old" or '
        '"cluster drain old".',
        'Note: 2 managers share cluster default without [coordination] '
        'backend_url: replenish is serialised by the database, but every '
        'manager syncs every pool; configure a coordination backend.']


def test_cluster_adopt_from_the_cli(manage, simulator, monkeypatch):
    _database_of(manage, monkeypatch)
    volume_id = _pool_volume(simulator, manage, 'old')
    result = manage('cluster', 'adopt', 'old')
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        'Cluster old adopted into default: 1 rows moved, 0 claim receipts '
        'moved, 1 volumes re-tagged, 0 re-tags failed.']
    assert [r.volume_id for r in db_api.get_rows(None)] == [volume_id]
    assert db_api.get_rows('old') == []
    assert simulator.get_volume(volume_id)['metadata'][
        vp_cinder.TAG_CLUSTER] == cluster_names.NO_CLUSTER
    assert manage('pool', 'list').stderr == ''  # nothing stranded now


@pytest.mark.parametrize('args, needle', [
    (('cluster', 'adopt', 'default'), "this manager's own cluster"),
    (('cluster', 'adopt', 'old'), 'manager(s) old-host are alive'),
    (('cluster', 'drain', 'old'), 'manager(s) old-host are alive'),
])
def test_cluster_adopt_and_drain_refusals(manage, simulator, monkeypatch,
                                          args, needle):
    _database_of(manage, monkeypatch)
    volume_id = _pool_volume(simulator, manage, 'old')
    db_managers.register('old-host', 'old', 'inc-old')
    result = manage(*args)
    assert result.returncode == manage_output.EXIT_USAGE, result
    assert needle in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert [r.volume_id for r in db_api.get_rows('old')] == [volume_id]
    assert simulator.get_volume(volume_id)['metadata'][
        vp_cinder.TAG_CLUSTER] == 'old'


def test_cluster_drain_from_the_cli(manage, simulator, monkeypatch):
    _database_of(manage, monkeypatch)
    volume_id = _pool_volume(simulator, manage, 'old')
    held_id = _pool_volume(simulator, manage, 'old', models.CLAIMING)
    result = manage('cluster', 'drain', 'old', '--timeout', '10')
    assert result.returncode == manage_output.EXIT_FAILED, result
    assert result.stdout.splitlines() == [
        'Cluster old: 1 volumes deleted, 1 rows dropped, 0 volumes in use '
        'released, 0 deletes failed, 0 volumes still in Cinder after 10 s.',
        '1 rows held by claims of stopped managers: adopt the cluster to '
        'settle them ("volume-pool-manage cluster adopt old").',
        'Left in cluster old: 1 rows in the table, 0 volumes in Cinder; '
        'run the command again.']
    assert simulator.get_volume(volume_id) is None
    assert [(r.volume_id, r.status) for r in db_api.get_rows('old')] == [
        (held_id, models.CLAIMING)]
    assert simulator.get_volume(held_id)['status'] == 'available'

    db_api.delete_row(db_api.get_rows('old')[0].id)
    simulator.remove_volume(held_id)
    again = manage('cluster', 'drain', 'old')
    assert again.returncode == manage_output.EXIT_OK, again
    assert db_api.get_rows('old') == []


def test_claim_without_transport_url_is_a_usage_error(manage):
    result = manage('claim', 'take', 'debian')
    assert result.returncode == 2
    assert 'transport_url is not set' in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# -- against a running manager, over RPC ------------------------------------

@pytest.fixture
def live(tmp_path, database, simulator, transport_url, console):
    """A manager serving RPC in this process, on a config of its own (a
    console script run in this process parses the global one), and the
    CLI on the same config file."""
    path = tmp_path / 'live.conf'
    path.write_text(service_config(simulator, transport_url,
                                   host='manage-test', database=database))

    def _run(*args):
        return console('volume-pool-manage', '--config-file', str(path),
                       *args, timeout=90)
    _run.conf_path = path
    with serving(own_conf(path)):
        yield _run


def _listing(live, fmt='json'):
    result = live('pool', 'list', '--format', fmt)
    assert result.returncode == 0, result.stderr
    return (json.loads if fmt == 'json' else yaml.safe_load)(result.stdout)


@pytest.mark.recollect
def test_claim_refill_and_live_pool_list_over_rpc(live, simulator):
    waiting.wait_for(lambda: _listing(live)[0]['ready'] == 2, timeout=30,
                     what='pool full')
    listing = _listing(live)
    assert listing[0]['reason'] not in (manage_rpc.NO_ANSWER,
                                        manage_rpc.NO_TRANSPORT)
    assert 'backoff' in listing[0]  # a live field, not a database count
    assert _listing(live, 'yaml') == _listing(live)

    claimed = live('claim', 'take', 'debian', '--name', 'by-hand',
                   '--key', 'by-hand-1', '--format', 'json')
    assert claimed.returncode == 0, claimed.stderr
    volume = json.loads(claimed.stdout)
    assert (volume['source'], volume['name']) == ('pool', 'by-hand')
    assert volume['claim_key'] == 'by-hand-1'
    assert simulator.get_volume(volume['volume_id'])['name'] == 'by-hand'

    refilled = live('pool', 'refill', 'debian')
    assert refilled.returncode == 0, refilled.stderr
    assert refilled.stdout.strip() == \
        'Pool debian: 1 volume creates queued.'
    waiting.wait_for(lambda: _listing(live)[0]['ready'] == 2, timeout=30,
                     what='pool refilled')

    as_yaml = live('claim', 'take', 'debian', '--no-create-on-miss',
                   '--format', 'yaml')
    assert as_yaml.returncode == 0, as_yaml.stderr
    assert yaml.safe_load(as_yaml.stdout)['source'] == 'pool'
    table = live('claim', 'take', 'debian')
    assert table.returncode == 0 and '| source ' in table.stdout

    # The same key again: the same volume, no second one.
    again = live('claim', 'take', 'debian', '--name', 'by-hand', '--key',
                 'by-hand-1', '--format', 'json')
    assert json.loads(again.stdout)['volume_id'] == volume['volume_id']
    listed = live('claim', 'list', '--state', 'leased', '--format', 'json')
    assert ('by-hand-1', volume['volume_id']) in [
        (c['claim_key'], c['volume_id']) for c in json.loads(listed.stdout)]
    shown = live('claim', 'show', 'by-hand-1', '--format', 'json')
    assert json.loads(shown.stdout)['answer'] == volume
    released = live('claim', 'release', 'by-hand-1', '--format', 'json')
    assert released.returncode == 0, released.stderr
    assert json.loads(released.stdout)['state'] == 'released'
    returned = simulator.get_volume(volume['volume_id'])
    assert returned['metadata'][vp_cinder.TAG_POOL] == 'debian'


@pytest.mark.recollect
def test_claim_commands_print_the_chosen_fields(live):
    refused = live('claim', 'take', 'debian', '--key', 'k1', '-c', 'nope')
    assert refused.returncode == manage_output.EXIT_USAGE, refused
    assert "unknown column 'nope'" in refused.stderr
    assert live('claim', 'list', '-f', 'value', '-c',
                'claim_key').stdout == ''  # nothing was claimed

    taken = live('claim', 'take', 'debian', '--key', 'k1', '--name',
                 'by-hand', '-f', 'value', '-c', 'claim_key', '-c', 'name',
                 '-c', 'volume_id')
    assert taken.returncode == 0, taken.stderr
    key, name, volume_id = taken.stdout.split('\n')[:3]
    assert (key, name) == ('k1', 'by-hand')
    assert taken.stdout == 'k1\nby-hand\n%s\n' % volume_id

    def out(*args):
        result = live(*args)
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert out('claim', 'list', '-f', 'value', '-c', 'state', '-c',
               'claim_key') == 'leased k1\n'
    assert out('claim', 'list', '-f', 'csv', '-c', 'claim_key', '-c',
               'pool') == '"claim_key","pool"\n"k1","debian"\n'
    assert out('claim', 'show', 'k1', '-f', 'value', '-c', 'volume_id',
               '-c', 'state') == '%s\nleased\n' % volume_id
    assert out('claim', 'show', 'k1', '-f', 'csv', '-c', 'claim_key', '-c',
               'state') == '"claim_key","state"\n"k1","leased"\n'
    assert out('claim', 'show', 'k1', '-c', 'state', '-c', 'claim_key') == (
        '+-----------+--------+\n'
        '| field     | value  |\n'
        '+-----------+--------+\n'
        '| state     | leased |\n'
        '| claim_key | k1     |\n'
        '+-----------+--------+\n')
    answer = json.loads(out('claim', 'show', 'k1', '-f', 'json', '-c',
                            'answer'))
    assert list(answer) == ['answer']
    assert answer['answer']['volume_id'] == volume_id
    assert out('claim', 'release', 'k1', '-f', 'value', '-c', 'state') == \
        'released\n'


@pytest.mark.recollect
def test_rpc_errors_are_one_line(live):
    for args, needle in ((('claim', 'take', 'nope'), "Unknown pool 'nope'"),
                         (('claim', 'confirm', 'nope'), "No claim with key"),
                         (('pool', 'refill', 'nope'), "Unknown pool 'nope'")):
        result = live(*args)
        assert result.returncode == 1, result
        assert needle in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.recollect
def test_pool_list_falls_back_to_the_database(manage, transport_url):
    """transport_url set, nobody listening: the database counts, said so."""
    manage('db', 'sync')
    manage.conf_path.write_text('[DEFAULT]\ntransport_url = %s\n%s'
                                % (transport_url,
                                   manage.conf_path.read_text()))
    result = manage('pool', 'list', '--format', 'json', '--timeout', '1')
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    assert listing[0]['name'] == 'debian'
    assert listing[0]['reason'] == manage_rpc.NO_ANSWER
    assert 'showing the database counts' in result.stderr


# -- in process: which errors are one line --------------------------------

def test_cluster_notes_skip_a_database_error_but_not_a_bug(conf, monkeypatch,
                                                           capsys):
    def unreadable(*args):
        raise db_exc.DBConnectionError('gone')
    monkeypatch.setattr(manage_pools.clusters, 'stranded_warnings', unreadable)
    manage_pools._cluster_notes()
    assert capsys.readouterr().err == (
        'volume-pool-manage: could not look for clusters without a live '
        'manager: gone\n')

    def broken(*args):
        raise TypeError('a bug')
    monkeypatch.setattr(manage_pools.clusters, 'stranded_warnings', broken)
    with pytest.raises(TypeError, match='a bug'):
        manage_pools._cluster_notes()
