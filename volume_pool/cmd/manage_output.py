"""What volume-pool-manage prints, and its exit codes.

A command that prints data declares its fields with
:func:`add_output_options`; ``-f/--format`` and ``-c/--column`` then work
as in OpenStack's CLIs: a listing prints its rows, a show command one
record as field/value.  ``-c`` is checked before the command runs (see
:func:`check_columns`), so a typo never costs a claim.
"""

from volume_pool.cmd import manage_formats

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# The message broker could not be reached within --timeout: nothing was
# done, or, for a claim, see the key printed with the error.  Try again.
EXIT_BROKER_UNREACHABLE = 3


class UnknownColumn(ValueError):
    """A ``-c`` that names no field of the command: a usage error."""


def add_output_options(parser, fields, columns=None):
    """``-f`` and ``-c`` on a command that prints data.

    ``fields``: every name ``-c`` accepts.  ``columns``: a listing's
    default table columns; None for a show command, which prints every
    field of its record.
    """
    listing = columns is not None
    parser.add_argument(
        '-f', '--format', choices=manage_formats.FORMATS, default='table',
        help='Output format: table to read; json, yaml, value (%s, no '
             'header) or csv to script (default: table).'
             % ('the values of a row separated by spaces' if listing
                else 'each value on a line of its own'))
    parser.add_argument(
        '-c', '--column', dest='columns', action='append', metavar='COLUMN',
        help='Print only this %s, in the order given (repeatable): %s.'
             % ('column' if listing else 'field', ', '.join(fields)))
    parser.set_defaults(output_fields=list(fields), output_columns=columns)


def check_columns(command):
    """Raise UnknownColumn for a ``-c`` the command does not know.

    ``command``: the parsed subcommand (``CONF.command``); one without
    output options passes.
    """
    fields = getattr(command, 'output_fields', None)
    for name in (fields and command.columns) or ():
        if name not in fields:
            raise UnknownColumn(
                'unknown column %r; valid columns: %s'
                % (name, ', '.join(fields)))


def emit(rows, command):
    """A listing: ``rows`` (dicts) in the command's format and columns.

    Without ``-c``, JSON and YAML carry every key of the rows (more than
    the table shows); the other formats the default columns.
    """
    chosen = command.columns
    fmt = command.format
    if fmt in ('json', 'yaml'):
        data = [_only(row, chosen) for row in rows] if chosen else rows
        print(_structured(fmt, data, sort_keys=not chosen), end='')
        return
    columns = chosen or command.output_columns
    if fmt == 'table' and not rows:
        print('(none)')
        return
    print(_flat(fmt)(columns, rows), end='')


def emit_one(record, command):
    """A show command's record: field/value table, each value on a line
    of its own (``value``), one CSV row, or the record itself."""
    chosen = command.columns
    fmt = command.format
    if fmt in ('json', 'yaml'):
        data = _only(record, chosen) if chosen else record
        print(_structured(fmt, data, sort_keys=not chosen), end='')
        return
    fields = chosen or sorted(record)
    if fmt == 'table':
        rows = [{'field': f, 'value': record.get(f)} for f in fields]
        text = manage_formats.table(['field', 'value'], rows)
    elif fmt == 'value':
        text = manage_formats.value(['value'], [
            {'value': record.get(f)} for f in fields])
    else:
        text = manage_formats.csv_text(fields, [record])
    print(text, end='')


def _only(record, names):
    return {name: record.get(name) for name in names}


def _structured(fmt, data, sort_keys):
    render = (manage_formats.json_text if fmt == 'json'
              else manage_formats.yaml_text)
    return render(data, sort_keys)


def _flat(fmt):
    return {'table': manage_formats.table, 'value': manage_formats.value,
            'csv': manage_formats.csv_text}[fmt]
