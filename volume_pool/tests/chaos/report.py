"""The soak's summary: what ran, what broke, and whether the invariant
held; plus the JSON of the whole run for a post-mortem."""

import collections
import dataclasses
import json

from volume_pool.tests.chaos import check

SHOWN_PER_KIND = 10


def counts_text(counter):
    items = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
    return ', '.join('%s %d' % item for item in items) or 'none'


def summary(*, params, report, faults, proxy_faults,
            fault_failures, settled_in, tracebacks, workdir,
            error_messages=None, fault_skips=None, times=None):
    """The lines to print, last the verdict."""
    figures = report.figures
    outcomes = figures['outcomes']
    volumes = collections.Counter(figures['volumes'])
    kinds = report.by_kind()
    topology = ''
    if params.get('topology') == 'ha':
        topology = (', ha: Galera behind HAProxy, RabbitMQ cluster '
                    '(quorum queues), %s' % params.get('coordination'))
    lines = [
        'chaos soak: seed %(seed)s, %(duration)ss, %(managers)d managers, '
        '%(callers)d callers, %(pools)d pools x %(target)d, %(backend)s, '
        'lease %(lease)ss' % params + topology,
        'claims: %d keys, %d answered (%d confirmed, %d released, %d '
        'abandoned, %d attached, %d kept, %d uncertain), %d unanswered' % (
            figures['keys'], figures['answered'], outcomes['confirmed'],
            outcomes['released'], outcomes['abandoned'],
            outcomes['attached'], outcomes['kept'],
            outcomes['uncertain'], outcomes['unanswered']),
        'claim kinds: %d into the second project, %d without a key' % (
            figures['into_project'], figures['unkeyed']),
        'retries: %d claim attempts for %d keys, %d keys retried later' % (
            figures['attempts'], figures['keys'], figures['retried_keys']),
        'errors seen by callers: %s' % counts_text(figures['errors']),
        'keys that saw an error: %d of %d; by type: %s' % (
            figures.get('keys_with_errors', 0), figures['keys'],
            counts_text(figures.get('error_keys', {}))),
    ]
    lines += ['  first %s: %s' % item
              for item in sorted((error_messages or {}).items())]
    lines += [
        'faults: %s' % counts_text(faults),
        'proxy faults: %s' % counts_text(proxy_faults),
    ]
    if fault_failures:
        lines.append('faults that could not run: %s'
                     % counts_text(fault_failures))
    if fault_skips:
        lines.append('faults skipped (did not apply then): %s'
                     % counts_text(fault_skips))
    lines += [
        'volumes in Cinder: %d (%d golden, %d in pools, %d held by keys, '
        '%d deleting, %d leaked)' % (
            volumes['total'], volumes['golden'], volumes['pool'],
            volumes['held'], volumes['deleting'], volumes['leak']),
        'receipts: %s' % counts_text(figures['receipts']),
        'pools: %s' % ', '.join(
            '%s %d/%d' % (name, pool['ready'], pool['target'])
            for name, pool in figures['pools'].items()),
        'manager log tracebacks: %s' % counts_text(tracebacks),
    ]
    for kind in check.KINDS:
        shown = [v.message for v in report.violations if v.kind == kind]
        for message in shown[:SHOWN_PER_KIND]:
            lines.append('  %s: %s' % (kind.upper(), message))
        if len(shown) > SHOWN_PER_KIND:
            lines.append('  %s: ... %d more' % (kind.upper(),
                                                len(shown) - SHOWN_PER_KIND))
    for note in report.notes[:SHOWN_PER_KIND]:
        lines.append('  note: %s' % note)
    lines.append('invariant: %s -> %s%s' % (
        ', '.join('%s %d' % (kind, kinds[kind]) for kind in check.KINDS),
        'OK' if report.ok else 'VIOLATED',
        ' (settled in %.0fs)' % settled_in if settled_in is not None
        else ' (did not settle)'))
    if times:
        lines.append('times: %s' % ', '.join(
            '%s %.0fs' % item for item in times.items()
            if item[1] is not None))
    lines.append('run details (logs, chaos-result.json): %s'
                 % (workdir or 'removed, --keep keeps them'))
    return lines


def dump(path, *, params, records, state, report, faults, proxy_faults):
    volumes, rows, receipts = state
    with open(path, 'w') as out:
        json.dump({'params': params,
                   'records': [dataclasses.asdict(r) for r in records],
                   'volumes': volumes, 'rows': rows, 'receipts': receipts,
                   'violations': [dataclasses.asdict(v)
                                  for v in report.violations],
                   'notes': report.notes, 'figures': report.figures,
                   'faults': dict(faults),
                   'proxy_faults': dict(proxy_faults)},
                  out, indent=1, default=str)
