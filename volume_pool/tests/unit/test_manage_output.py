"""What volume-pool-manage prints, format by format, byte for byte: the
renderers and the -c selection on their own, without a command behind
them (test_manage runs the commands)."""

import argparse
import datetime
import json
import types

import pytest
import yaml

from volume_pool import claim_request
from volume_pool import pool_spec
from volume_pool import pool_status
from volume_pool import sizing
from volume_pool.cmd import manage_claims
from volume_pool.cmd import manage_formats
from volume_pool.cmd import manage_output
from volume_pool.cmd import manage_pools
from volume_pool.db import receipts as db_receipts

ROWS = [{'name': 'debian', 'ready': 12, 'reason': None},
        {'name': 'ubuntu-long', 'ready': 3, 'reason': 'creating'}]


def _command(fmt='table', columns=None, fields=('name', 'ready', 'reason'),
             default=('name', 'ready')):
    """The parsed subcommand as add_output_options leaves it; default
    None: a show command."""
    parser = argparse.ArgumentParser()
    manage_output.add_output_options(
        parser, list(fields), None if default is None else list(default))
    argv = ['-f', fmt]
    for column in columns or ():
        argv += ['-c', column]
    return parser.parse_args(argv)


def _printed(capsys, emit, data, command):
    emit(data, command)
    return capsys.readouterr().out


# -- the renderers -------------------------------------------------------

def test_table_is_prettytable_numbers_right_text_left():
    assert manage_formats.table(['name', 'ready', 'reason'], ROWS) == (
        '+-------------+-------+----------+\n'
        '| name        | ready | reason   |\n'
        '+-------------+-------+----------+\n'
        '| debian      |    12 |          |\n'
        '| ubuntu-long |     3 | creating |\n'
        '+-------------+-------+----------+\n')


def test_value_is_cells_separated_by_a_space_without_header():
    assert manage_formats.value(['ready', 'name', 'reason'], ROWS) == (
        '12 debian \n'
        '3 ubuntu-long creating\n')


def test_csv_quotes_strings_not_numbers():
    rows = [{'s': 'say "hi"', 'n': 2, 'f': 0.5, 'none': None, 'b': True,
             'nested': {'k': [1]}}]
    assert manage_formats.csv_text(['s', 'n', 'f', 'none', 'b', 'nested'],
                                   rows) == (
        '"s","n","f","none","b","nested"\n'
        '"say ""hi""",2,0.5,"","True","{""k"": [1]}"\n')


def test_cells_of_nested_data_are_json_and_none_is_empty():
    stamp = datetime.datetime(2024, 5, 6, 7, 8, 9)
    assert manage_formats.cell({'b': 1, 'a': [None]}) == \
        '{"a": [null], "b": 1}'
    assert manage_formats.cell(None) == ''
    assert manage_formats.cell(stamp) == '2024-05-06 07:08:09'
    assert manage_formats.cell(False) == 'False'


# -- a listing -----------------------------------------------------------

def test_listing_default_columns_in_table_value_and_csv(capsys):
    assert _printed(capsys, manage_output.emit, ROWS,
                    _command('value')) == 'debian 12\nubuntu-long 3\n'
    assert _printed(capsys, manage_output.emit, ROWS, _command('csv')) == (
        '"name","ready"\n"debian",12\n"ubuntu-long",3\n')
    table = _printed(capsys, manage_output.emit, ROWS, _command())
    assert table.splitlines()[1] == '| name        | ready |'


def test_listing_columns_follow_the_c_order(capsys):
    command = _command('value', ['reason', 'name'])
    assert _printed(capsys, manage_output.emit, ROWS, command) == (
        ' debian\ncreating ubuntu-long\n')
    table = _printed(capsys, manage_output.emit, ROWS,
                     _command('table', ['ready', 'name']))
    assert table.splitlines()[1] == '| ready | name        |'
    as_csv = _printed(capsys, manage_output.emit, ROWS,
                      _command('csv', ['reason', 'ready']))
    assert as_csv == '"reason","ready"\n"",12\n"creating",3\n'


def test_listing_json_and_yaml_keep_every_key_unless_c(capsys):
    rows = [dict(row, extra='only in json') for row in ROWS]
    whole = _printed(capsys, manage_output.emit, rows, _command('json'))
    assert json.loads(whole) == rows
    assert yaml.safe_load(_printed(capsys, manage_output.emit, rows,
                                   _command('yaml'))) == rows
    chosen = _printed(capsys, manage_output.emit, rows[:1],
                      _command('json', ['ready', 'name']))
    assert chosen == ('[\n  {\n    "ready": 12,\n    "name": "debian"\n'
                      '  }\n]\n')
    as_yaml = _printed(capsys, manage_output.emit, rows[:1],
                       _command('yaml', ['ready', 'name']))
    assert as_yaml == '- ready: 12\n  name: debian\n'


@pytest.mark.parametrize('fmt, printed', [
    ('table', '(none)\n'),
    ('value', ''),
    ('csv', '"name","ready"\n'),
    ('json', '[]\n'),
    ('yaml', '[]\n'),
])
def test_an_empty_listing(capsys, fmt, printed):
    assert _printed(capsys, manage_output.emit, [], _command(fmt)) == printed


# -- a show command ------------------------------------------------------

RECORD = {'volume_id': 'v-1', 'size': 1, 'source': 'pool', 'key': None}
SHOW_FIELDS = ('volume_id', 'size', 'source', 'key')


def _show(fmt, columns=None):
    return _command(fmt, columns, fields=SHOW_FIELDS, default=None)


def test_show_table_is_field_value_sorted_by_field(capsys):
    assert _printed(capsys, manage_output.emit_one, RECORD,
                    _show('table')) == (
        '+-----------+-------+\n'
        '| field     | value |\n'
        '+-----------+-------+\n'
        '| key       |       |\n'
        '| size      | 1     |\n'
        '| source    | pool  |\n'
        '| volume_id | v-1   |\n'
        '+-----------+-------+\n')


def test_show_c_selects_fields_in_order(capsys):
    assert _printed(capsys, manage_output.emit_one, RECORD,
                    _show('table', ['source', 'volume_id'])) == (
        '+-----------+-------+\n'
        '| field     | value |\n'
        '+-----------+-------+\n'
        '| source    | pool  |\n'
        '| volume_id | v-1   |\n'
        '+-----------+-------+\n')


def test_show_value_prints_each_value_on_its_own_line(capsys):
    assert _printed(capsys, manage_output.emit_one, RECORD,
                    _show('value', ['size', 'volume_id', 'key'])) == \
        '1\nv-1\n\n'
    assert _printed(capsys, manage_output.emit_one, RECORD,
                    _show('value')) == '\n1\npool\nv-1\n'


def test_show_csv_is_a_header_and_one_row(capsys):
    assert _printed(capsys, manage_output.emit_one, RECORD,
                    _show('csv', ['volume_id', 'size'])) == \
        '"volume_id","size"\n"v-1",1\n'


def test_show_json_and_yaml(capsys):
    assert json.loads(_printed(capsys, manage_output.emit_one, RECORD,
                               _show('json'))) == RECORD
    assert _printed(capsys, manage_output.emit_one, RECORD,
                    _show('json', ['size', 'source'])) == \
        '{\n  "size": 1,\n  "source": "pool"\n}\n'
    assert _printed(capsys, manage_output.emit_one, RECORD,
                    _show('yaml', ['source', 'size'])) == \
        'source: pool\nsize: 1\n'


# -- -c checked before the command runs ----------------------------------

def test_an_unknown_column_names_itself_and_the_valid_ones():
    with pytest.raises(manage_output.UnknownColumn) as raised:
        manage_output.check_columns(_command('value', ['name', 'nope']))
    assert str(raised.value) == (
        "unknown column 'nope'; valid columns: name, ready, reason")


def test_known_columns_and_commands_without_output_pass():
    manage_output.check_columns(_command('csv', ['reason', 'name']))
    manage_output.check_columns(_command('csv'))
    manage_output.check_columns(argparse.Namespace(func=None))


# -- the fields each command declares match what it prints ---------------

def test_pool_list_fields_cover_the_managers_pool_status():
    live = pool_status.record('p', None, None, {}, sizing.target_now(None))
    assert sorted(manage_pools.POOL_FIELDS) == sorted(live)
    assert manage_pools.POOL_FIELDS[:len(manage_pools.POOL_COLUMNS)] == \
        manage_pools.POOL_COLUMNS


def test_receipt_fields_are_the_receipt_view():
    receipt = types.SimpleNamespace(
        claim_key='k', claim_id='c', state='leased', pool='p', cluster='',
        project_id='', volume_id='v', source='pool', target_project=None,
        lease_expires_at=None, created_at=None, updated_at=None)
    assert list(db_receipts.view(receipt)) == manage_claims.RECEIPT_FIELDS
    assert set(manage_claims.CLAIM_COLUMNS) <= set(
        manage_claims.RECEIPT_FIELDS)
    assert manage_claims.SHOWN_FIELDS == \
        manage_claims.RECEIPT_FIELDS + ['answer']


def test_claimed_fields_cover_a_claims_answer():
    volume = types.SimpleNamespace(id='v', name='n', snapshot_id='s',
                                   size=1, status='available')
    spec = pool_spec.PoolSpec(name='debian', cluster=None, snapshot_id='s',
                              target=1)
    answer = claim_request.volume_view(volume, spec, 'pool')
    assert list(answer) == manage_claims.CLAIMED_FIELDS[:len(answer)]
    assert manage_claims.CLAIMED_FIELDS[len(answer):] == [
        'project_id', 'claim_key', 'lease_expires_at']
