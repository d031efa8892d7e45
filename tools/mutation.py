#!/usr/bin/env python3
"""Mutation testing of the modules that decide who holds a volume.

A driver around cosmic-ray that gives each mutant only the unit tests that
run the mutated function, so that one worker gets through a module in
minutes, not hours:

1. the module's candidate test files (``MODULES`` below) run once under
   coverage, with one coverage context per test: the map from each line
   of the module to the tests that ran it (``.mutation/NAME.map.json``,
   kept while the module and those files are unchanged);
2. ``cosmic-ray init`` lists the mutants, the operators filter drops the
   operators this project does not use (``EXCLUDED_OPERATORS``);
3. ``cosmic-ray exec`` applies each mutant to the file in this work tree
   in turn and runs ``tools/mutation.py --test NAME``: that reads the
   mutated line from ``git diff``, finds the statement around it (of an
   ``if`` or a ``while``, its condition) and runs the tests that ran it
   (all the module's tests for a line outside every function), ``-x``, in
   one process: a test that never runs the statement cannot kill it;
4. the report: killed, survived and total, then each survivor as
   ``file:line operator`` and its diff (``.mutation/NAME.txt``).

Usage (from the repository's root, ``tox -e mutation`` does the same)::

    tools/mutation.py                 # every module in MODULES
    tools/mutation.py db/claims sync  # some of them
    tools/mutation.py --report db/claims
    tools/mutation.py --again db/claims  # its survivors, after new tests

A mutated file is restored when cosmic-ray is done with it; a run cut short
(Ctrl-C) may leave one mutated: ``git diff volume_pool`` shows it, ``git
checkout volume_pool`` puts it back.
"""

import argparse
import ast
import hashlib
import json
import os
import pathlib
import re
import sqlite3
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
WORK = ROOT / '.mutation'
UNIT = 'volume_pool/tests/unit/'

# Each module, and the unit test files that exercise it.
MODULES = {
    'db/claims': [
        'db/test_claims.py', 'db/test_hold_guards.py', 'db/test_api.py',
        'db/test_claim_step_guards.py', 'test_claim_undo.py',
        'test_claim_keys.py', 'test_claim_guards.py', 'test_claim_release.py',
        'test_claim_give_up.py', 'test_claim_lease.py',
        'test_sync_beside_claims.py', 'test_manager_claim.py',
        'test_claim_keyed_miss.py', 'db/test_receipt_guards.py',
        'test_handback.py', 'test_late_requests.py', 'test_miss_creates.py',
        'test_transfer.py', 'test_transfer_edges.py',
        'test_claim_failures.py', 'test_rpcapi_retry.py',
        'test_answered_finishes.py'],
    'db/holds': [
        'db/test_claims.py', 'db/test_hold_guards.py', 'db/test_api.py',
        'test_claim_undo.py',
        'test_claim_guards.py', 'test_sync_beside_claims.py',
        'test_manager_sync.py', 'test_transfer_edges.py',
        'test_late_requests.py', 'test_answered_finishes.py'],
    'db/receipts': [
        'db/test_claims.py', 'db/test_hold_guards.py', 'db/test_api.py',
        'test_claim_keys.py',
        'test_claim_release.py', 'test_claim_give_up.py',
        'test_claim_keyed_miss.py', 'test_sync_beside_claims.py',
        'test_transfer.py', 'test_transfer_edges.py',
        'db/test_receipt_guards.py', 'test_lease_reads.py'],
    'handback': [
        'test_claim_undo.py', 'test_claim_guards.py', 'test_transfer.py',
        'test_transfer_edges.py', 'test_claim_keyed_miss.py',
        'test_late_requests.py', 'test_miss_creates.py',
        'test_claim_release.py', 'test_handback.py',
        'test_answered_finishes.py', 'test_sync_beside_claims.py'],
    'claims': [
        'test_manager_claim.py', 'test_claim_undo.py', 'test_claim_guards.py',
        'test_claim_keys.py', 'test_claim_give_up.py', 'test_claim_lease.py',
        'test_claim_keyed_miss.py', 'test_miss_creates.py',
        'test_transfer.py', 'test_claim_failures.py',
        'test_claim_release.py', 'test_late_requests.py',
        'test_transfer_edges.py', 'test_sync_beside_claims.py',
        'test_handback.py', 'test_rpcapi_retry.py',
        'test_claimer_guards.py', 'test_answered_finishes.py'],
    'leases': [
        'test_claim_lease.py', 'test_claim_release.py',
        'test_manager_sync.py', 'test_claim_keys.py', 'test_claim_give_up.py',
        'test_claim_guards.py', 'test_claim_undo.py',
        'test_lease_tag_removal.py', 'test_sync_beside_claims.py',
        'test_transfer_edges.py', 'test_rpcapi_retry.py', 'test_manage.py',
        'test_lease_keeper_guards.py', 'test_lease_reads.py'],
    'sync': [
        'test_manager_sync.py', 'test_sync_beside_claims.py',
        'test_transfer_edges.py', 'test_late_requests.py',
        'test_claim_keys.py', 'test_claim_lease.py', 'test_claim_undo.py',
        'test_claim_guards.py', 'test_claim_keyed_miss.py',
        'test_claim_release.py', 'test_claim_give_up.py', 'test_handback.py',
        'test_transfer.py', 'test_cluster_rename.py', 'test_deployments.py',
        'test_shared_cluster.py', 'test_newer_release.py',
        'test_reconcile_before_refill.py', 'test_manager_replenish.py',
        'test_task_costs.py', 'test_sync_changes.py',
        'test_orphan_guards.py'],
    'orphans': [
        'test_manager_sync.py', 'test_sync_beside_claims.py',
        'test_transfer_edges.py', 'test_claim_keys.py',
        'test_claim_lease.py', 'test_claim_guards.py',
        'test_cluster_rename.py', 'test_newer_release.py',
        'test_reconcile_before_refill.py', 'test_orphan_guards.py'],
    'retag': [
        'test_manager_sync.py', 'test_sync_beside_claims.py',
        'test_claim_undo.py', 'test_cluster_rename.py', 'test_deployments.py',
        'test_shared_cluster.py', 'test_manager_replenish.py',
        'test_retag_guards.py'],
    'project_claims': [
        'test_transfer.py', 'test_transfer_edges.py',
        'test_claim_keyed_miss.py', 'test_late_requests.py',
        'db/test_claim_step_guards.py'],
    'late_requests': [
        'test_late_requests.py', 'test_transfer_edges.py',
        'test_claim_undo.py'],
}

# The operators are those that turn a decision around: every boolean
# operator, ``not`` added or removed, True and False swapped, a loop run
# zero times, break and continue swapped, an exception handler that never
# matches, numbers moved by one, + and - swapped and a minus dropped
# (deadlines are sums and differences, ``later(now, -grace)``), and a
# comparison negated (== and !=, is and is not, in and
# not in) or moved across its boundary (< and <=, > and >=, < and >=, >
# and <=).  Left out: the other comparison swaps (``is None`` made ``==
# None``, or ``==`` made ``<``, say nothing the negation does not), the
# other binary and unary operators (type errors), the removal of
# decorators (``db_api.retry`` only retries a deadlock, which SQLite never
# raises) and the variable replacers (random, and many).
_COMPARISONS = ('Eq_NotEq', 'NotEq_Eq', 'Is_IsNot', 'IsNot_Is', 'In_NotIn',
                'NotIn_In', 'Lt_LtE', 'LtE_Lt', 'Gt_GtE', 'GtE_Gt',
                'Lt_GtE', 'GtE_Lt', 'Gt_LtE', 'LtE_Gt')
EXCLUDED_OPERATORS = [
    r'core/ReplaceBinaryOperator_(?!Add_Sub$|Sub_Add$)',
    r'core/ReplaceComparisonOperator_(?!(%s)$)' % '|'.join(_COMPARISONS),
    r'core/ReplaceUnaryOperator_(?!Delete_Not$|Delete_USub$|USub_UAdd$)',
    r'core/RemoveDecorator',
    r'core/Variable(Replacer|Inserter)',
]
TIMEOUT = 120.0
TEST_TIMEOUT = 30


def _path(name):
    return f'volume_pool/{name}.py'


def _tests(name):
    return [UNIT + f for f in MODULES[name]]


def _digest(paths):
    h = hashlib.sha256()
    for p in paths:
        h.update(p.encode() + b'\0' + (ROOT / p).read_bytes())
    return h.hexdigest()


class _Contexts:
    """A pytest plugin: one coverage context per test."""

    def __init__(self, cov):
        self.cov = cov

    def pytest_runtest_setup(self, item):
        self.cov.switch_context(item.nodeid)


def build_map(name):
    """Line of the module -> the tests that ran it."""
    source = _path(name)
    tests = _tests(name)
    digest = _digest([source] + tests)
    out = WORK / f'{name.replace("/", "-")}.map.json'
    if out.exists():
        kept = json.loads(out.read_text())
        if kept.get('digest') == digest:
            return kept['lines']
    import coverage
    data_file = WORK / f'{name.replace("/", "-")}.coverage'
    cov = coverage.Coverage(data_file=str(data_file),
                            include=[str(ROOT / source)])
    cov.start()
    import pytest
    rc = pytest.main(['-q', '-p', 'no:cacheprovider', *tests],
                     plugins=[_Contexts(cov)])
    cov.stop()
    cov.save()
    if rc != 0:
        sys.exit(f'the tests of {name} fail without a mutant: {rc}')
    data = cov.get_data()
    lines = {}
    for line, contexts in data.contexts_by_lineno(
            str(ROOT / source)).items():
        lines[str(line)] = sorted(c for c in contexts if c)
    out.write_text(json.dumps({'digest': digest, 'lines': lines}))
    return lines


def _statements(source):
    """(first line, last line) of every statement of the module inside a
    function; of a compound statement, its header (``if ...:``) only."""
    spans = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for stmt in ast.walk(node):
            if not isinstance(stmt, ast.stmt) or stmt is node:
                continue
            body = getattr(stmt, 'body', None)
            last = (body[0].lineno - 1 if isinstance(body, list) and body
                    else stmt.end_lineno)
            spans.append((stmt.lineno, max(last, stmt.lineno)))
    return spans


def _changed_lines(path):
    diff = subprocess.run(['git', 'diff', '-U0', '--', path], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout
    lines = []
    for m in re.finditer(r'^@@ -(\d+)(?:,(\d+))? ', diff, re.M):
        start, count = int(m.group(1)), int(m.group(2) or 1)
        lines.extend(range(start, start + max(count, 1)))
    return lines


def select_tests(name):
    """The tests for the mutant now applied to the module."""
    path = _path(name)
    kept = json.loads(
        (WORK / f'{name.replace("/", "-")}.map.json').read_text())['lines']
    original = subprocess.run(['git', 'show', f'HEAD:{path}'], cwd=ROOT,
                              capture_output=True, text=True).stdout
    statements = _statements(original or (ROOT / path).read_text())
    everything = sorted({t for ts in kept.values() for t in ts})
    chosen = set()
    for line in _changed_lines(path):
        around = [s for s in statements if s[0] <= line <= s[1]]
        if not around:
            return everything
        first, last = min(around, key=lambda s: s[1] - s[0])
        for n in range(first, last + 1):
            chosen.update(kept.get(str(n), ()))
    return sorted(chosen)


def run_tests(name):
    """The test command of one mutant: 0 if it survived."""
    tests = select_tests(name)
    if not tests:
        print('no test runs the mutated code')
        return 0
    import pytest
    # A mutant that makes a test wait for ever is killed by its timeout.
    return pytest.main(['-x', '-q', '-p', 'no:cacheprovider',
                        '-o', f'timeout={TEST_TIMEOUT}',
                        *tests])


def _cosmic(*args):
    exe = pathlib.Path(sys.executable).parent
    subprocess.run([str(exe / args[0]), *args[1:]], cwd=ROOT, check=True)


def run(name, again=False):
    stem = name.replace('/', '-')
    config = WORK / f'{stem}.toml'
    session = WORK / f'{stem}.sqlite'
    if again and not session.exists():
        sys.exit(f'{name}: no earlier run to take the survivors of')
    build_map(name)
    if again:
        # The last run's survivors only, against the tests as they are now.
        with sqlite3.connect(session) as db:
            db.execute("DELETE FROM work_results WHERE test_outcome = ?",
                       ('SURVIVED',))
        _cosmic('cosmic-ray', 'exec', str(config), str(session))
        report(name)
        return
    config.write_text(
        '[cosmic-ray]\n'
        f'module-path = "{_path(name)}"\n'
        f'timeout = {TIMEOUT}\n'
        'excluded-modules = []\n'
        f'test-command = "{sys.executable} tools/mutation.py --test {name}"\n'
        '[cosmic-ray.distributor]\nname = "local"\n'
        '[cosmic-ray.filters.operators-filter]\n'
        f'exclude-operators = {json.dumps(EXCLUDED_OPERATORS)}\n')
    if session.exists():
        session.unlink()
    _cosmic('cosmic-ray', 'init', str(config), str(session))
    _cosmic('cr-filter-operators', str(session), str(config))
    _cosmic('cr-filter-pragma', str(session))
    _cosmic('cosmic-ray', 'exec', str(config), str(session))
    report(name)


def report(name):
    from cosmic_ray.work_db import use_db
    from cosmic_ray.work_db import WorkDB
    from cosmic_ray.work_item import TestOutcome
    from cosmic_ray.work_item import WorkerOutcome
    stem = name.replace('/', '-')
    session = WORK / f'{stem}.sqlite'
    killed, survived, other = 0, [], 0
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item, result in db.completed_work_items:
            if result.worker_outcome == WorkerOutcome.SKIPPED:
                continue  # an operator left out
            if result.test_outcome == TestOutcome.KILLED:
                killed += 1
            elif result.test_outcome == TestOutcome.SURVIVED:
                survived.append((item, result))
            else:
                other += 1
        skipped = sum(1 for _ in db.pending_work_items)
    total = killed + len(survived) + other
    lines = [f'{_path(name)}: {killed} killed, {len(survived)} survived, '
             f'{other} incompetent, of {total}'
             + (f' ({skipped} not run)' if skipped else '')]
    for item, result in sorted(
            survived, key=lambda s: s[0].mutations[0].start_pos):
        m = item.mutations[0]
        diff = [d for d in (result.diff or '').splitlines()
                if d[:1] in '+-' and d[:3] not in ('+++', '---')]
        lines.append(f'  {m.module_path}:{m.start_pos[0]} '
                     f'{m.operator_name.split("/")[-1]} #{m.occurrence}')
        lines.extend(f'      {d.strip()[:100]}' for d in diff)
    text = '\n'.join(lines) + '\n'
    (WORK / f'{stem}.txt').write_text(text)
    print(text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('modules', nargs='*', metavar='MODULE',
                        help='under volume_pool/, without .py: '
                        + ', '.join(MODULES))
    parser.add_argument('--test', action='store_true',
                        help=argparse.SUPPRESS)
    parser.add_argument('--again', action='store_true',
                        help='run the last run\'s survivors again')
    parser.add_argument('--report', action='store_true',
                        help='print the last run\'s result, run nothing')
    args = parser.parse_args(argv)
    names = args.modules or list(MODULES)
    for name in names:
        if name not in MODULES:
            parser.error(f'{name}: not one of {", ".join(MODULES)}')
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    WORK.mkdir(exist_ok=True)
    if args.test:
        return run_tests(names[0])
    # The machine is shared: the mutants wait for everyone else.
    os.nice(15)
    for name in names:
        report(name) if args.report else run(name, again=args.again)
    return 0


if __name__ == '__main__':
    sys.exit(main())
