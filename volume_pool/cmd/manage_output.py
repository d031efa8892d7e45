"""What volume-pool-manage prints: tables, JSON or YAML, and exit codes."""

import json

import yaml

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _print_table(columns, rows):
    if not rows:
        print('(none)')
        return
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells))
              for i, c in enumerate(columns)]
    line = '+' + '+'.join('-' * (w + 2) for w in widths) + '+'
    print(line)
    print(_table_row(columns, widths))
    print(line)
    for row in cells:
        print(_table_row(row, widths))
    print(line)


def _table_row(values, widths):
    return '| ' + ' | '.join(
        v.ljust(w) for v, w in zip(values, widths, strict=True)) + ' |'


def _cell(value):
    return '' if value is None else str(value)


def emit(columns, rows, fmt):
    if fmt == 'json':
        print(json.dumps(rows, indent=2, sort_keys=True, default=str))
    elif fmt == 'yaml':
        # Through JSON first: plain types only, so safe_load reads it back.
        print(yaml.safe_dump(json.loads(json.dumps(rows, default=str)),
                             default_flow_style=False, sort_keys=True),
              end='')
    else:
        _print_table(columns, rows)


def emit_one(record, fmt):
    """One record: a Field/Value table, or the object itself."""
    if fmt == 'table':
        _print_table(['field', 'value'],
                     [{'field': k, 'value': v}
                      for k, v in sorted(record.items())])
    else:
        emit(None, record, fmt)
