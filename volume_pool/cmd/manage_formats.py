"""Rows as text, in the formats of OpenStack's CLIs (cliff, osc).

Each renderer takes the column names and the rows (dicts; a missing key
is an empty cell) and returns the text to print, so that an operator who
knows ``openstack ... -f value -c id`` knows these too.
"""

import csv
import io
import json

import prettytable
import yaml

FORMATS = ('table', 'json', 'yaml', 'value', 'csv')


def cell(value):
    """A value as one cell of text: nested data as JSON, which a script
    can read back, and None as nothing."""
    if value is None:
        return ''
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def table(columns, rows):
    """A prettytable; numbers aligned right, everything else left, as
    cliff aligns them."""
    drawn = prettytable.PrettyTable(field_names=list(columns))
    for column in columns:
        values = [row.get(column) for row in rows]
        numeric = any(v is not None for v in values) and all(
            v is None or _number(v) for v in values)
        drawn.align[column] = 'r' if numeric else 'l'
    for row in rows:
        drawn.add_row([cell(row.get(c)) for c in columns])
    return drawn.get_string() + '\n'


def value(columns, rows):
    """The cells of each row separated by a space, no header."""
    return ''.join(' '.join(cell(row.get(c)) for c in columns) + '\n'
                   for row in rows)


def csv_text(columns, rows):
    """A header row, then every row; strings quoted, numbers not
    (QUOTE_NONNUMERIC, as cliff)."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_NONNUMERIC,
                        lineterminator='\n')
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(row.get(c)) for c in columns])
    return out.getvalue()


def _csv_cell(raw):
    return raw if raw is None or _number(raw) else cell(raw)


def json_text(data, sort_keys):
    """JSON; keys sorted unless the caller ordered them (``-c``)."""
    return json.dumps(data, indent=2, sort_keys=sort_keys, default=str) + '\n'


def yaml_text(data, sort_keys):
    # Through JSON first: plain types only, so safe_load reads it back.
    return yaml.safe_dump(json.loads(json.dumps(data, default=str)),
                          default_flow_style=False, sort_keys=sort_keys)
