"""The exactly-once invariant, as a pure function over what a run left.

Inputs are plain data: the claimer's :class:`record.KeyRecord` list, every
Cinder volume of every project the run used (dicts with id, name, status,
metadata, project), the pool rows and the claim receipts read from the
database.  Nothing here talks to a
service, so the unit tests feed it hand-made states.

The invariant:

* every key got at most one volume, and every key that was answered got
  exactly one, which its receipt holds;
* no volume went to two keys unless the first had let it go (released,
  or its lease had run out) before the second got it; a lease runs from
  the answer the caller received until the ``lease_expires_at`` it
  carried, so a lease that ended early is caught;
* every volume in Cinder, in every project, tagged or not, is accounted
  for: a golden volume, a pool volume (tagged for its pool, with a row,
  in the pools' project), or held by exactly one key, in the project that
  key claimed into, under the name that key asked for;
* every pool is back at its target, with nothing left half-done.
"""

import collections
import dataclasses

from volume_pool.tests.chaos import record as rec

TAG_POOL = 'volume_pool'
TAG_LEASE = 'volume_pool_lease'

# Receipt states that leave the volume with the caller.
HOLDING = frozenset(('leased', 'used'))
# Receipt states a settled run may show.
TERMINAL = frozenset(('used', 'released', 'returned'))

DUPLICATE = 'duplicate'    # one volume for two keys, two volumes for a key
LOST = 'lost'              # a key's volume or receipt is not where it must be
LEAK = 'leak'              # a volume nobody accounts for, or still held
POOL = 'pool'              # a pool off target, or a row off Cinder
UNSETTLED = 'unsettled'    # half-done work left after the settle time
ERROR = 'error'            # callers saw an error no fault explains
KINDS = (DUPLICATE, LOST, LEAK, POOL, UNSETTLED, ERROR)

# The key of a claim without a key until the client's key is learnt.
UNKEYED_PREFIX = 'unkeyed-'


@dataclasses.dataclass(frozen=True)
class Violation:
    kind: str
    message: str


@dataclasses.dataclass
class Report:
    violations: list
    figures: dict
    notes: list

    @property
    def ok(self):
        return not self.violations

    def by_kind(self):
        counts = collections.Counter(v.kind for v in self.violations)
        return {kind: counts.get(kind, 0) for kind in KINDS}


class _Checker:
    def __init__(self, records, volumes, rows, receipts, pools, golden,
                 lease, slack, expected_errors, home):
        self.records = list(records)
        self.records_by_key = {r.key: r for r in self.records}
        self.records_by_name = {r.name: r for r in self.records if r.name}
        self.home = home
        self.volumes = {v['id']: v for v in volumes}
        self.rows = list(rows)
        self.receipts = None if receipts is None else list(receipts)
        self.pools = dict(pools)
        self.golden = set(golden)
        self.lease = lease
        self.slack = slack
        self.expected_errors = expected_errors
        self.violations = []
        self.notes = []
        self.rows_by_volume = collections.defaultdict(list)
        for row in self.rows:
            if row.get('volume_id'):
                self.rows_by_volume[row['volume_id']].append(row)
        self.receipts_by_key = collections.defaultdict(list)
        self.holders = collections.defaultdict(list)  # volume -> keys
        for receipt in self.receipts or ():
            if receipt.get('claim_key'):
                self.receipts_by_key[receipt['claim_key']].append(receipt)
            if receipt['state'] in HOLDING and receipt.get('volume_id'):
                self.holders[receipt['volume_id']].append(
                    receipt.get('claim_key'))
        if self.receipts is None:
            # Without receipts the claimer's word is all there is.
            for record in self.records:
                if (record.outcome in rec.KEEPING
                        or record.outcome == rec.UNCERTAIN):
                    for volume_id in record.volume_ids:
                        self.holders[volume_id].append(record.key)

    def fail(self, kind, message, *args):
        self.violations.append(Violation(kind, message % args))

    def run(self):
        for record in self.records:
            self.check_key(record)
        self.check_handovers()
        self.check_receipts()
        categories = self.check_volumes()
        ready = self.check_rows()
        self.check_pools(ready)
        self.check_errors()
        return Report(self.violations, self.figures(categories, ready),
                      self.notes)

    def check_key(self, record):
        self._check_lease_answer(record)
        ids = record.volume_ids
        if len(ids) > 1:
            self.fail(DUPLICATE, 'key %s got %d volumes: %s', record.key,
                      len(ids), ', '.join(ids))
        if record.outcome != rec.UNANSWERED and not ids:
            self.fail(LOST, 'key %s is %s but was never answered',
                      record.key, record.outcome)
        if self.receipts is None:
            return
        receipts = self.receipts_by_key.get(record.key, [])
        if len(receipts) > 1:
            self.fail(DUPLICATE, 'key %s has %d receipts', record.key,
                      len(receipts))
        receipt = receipts[0] if receipts else None
        if not ids:
            if receipt and receipt['state'] in HOLDING:
                self.fail(LEAK, 'key %s was never answered but its receipt '
                          'holds volume %s (%s)', record.key,
                          receipt.get('volume_id'), receipt['state'])
            return
        if receipt is None:
            self.fail(LOST, 'key %s was answered volume %s but has no '
                      'receipt', record.key, ids[0])
            return
        if receipt.get('volume_id') not in ids:
            self.fail(DUPLICATE, 'key %s was answered %s but its receipt '
                      'holds %s', record.key, ', '.join(ids),
                      receipt.get('volume_id'))
        state = receipt['state']
        allowed = {rec.RELEASED: {'released', 'returned'},
                   rec.ABANDONED: {'returned'},
                   }.get(record.outcome, TERMINAL)
        if record.outcome in rec.KEEPING:
            allowed = {'used'}
        if state not in allowed:
            kind = LOST if record.outcome in rec.KEEPING else LEAK
            if state not in TERMINAL:
                kind = UNSETTLED
            self.fail(kind, 'key %s is %s by the claimer but its receipt '
                      'is %s', record.key, record.outcome, state)

    def _check_lease_answer(self, record):
        """A lease that was over before its answer reached the caller
        gave the caller nothing it could keep."""
        answered = record.first_answer_at
        if (record.lease_until is not None and answered is not None
                and record.lease_until < answered - self.slack):
            self.fail(LOST, 'key %s was answered %s at %.1f with a lease '
                      'that had ended at %.1f', record.key,
                      ', '.join(record.volume_ids), answered,
                      record.lease_until)

    def check_handovers(self):
        """A volume may serve several keys only one after the other."""
        by_volume = collections.defaultdict(list)
        for record in self.records:
            for volume_id, at in record.answers:
                by_volume[volume_id].append((at, record))
        for volume_id, answers in by_volume.items():
            answers.sort(key=lambda pair: pair[0])
            first_at = {}
            for at, record in answers:
                first_at.setdefault(record.key, (at, record))
            keys = sorted(first_at.values(), key=lambda pair: pair[0])
            for (_, before), (at, after) in zip(keys, keys[1:], strict=False):
                if not self._let_go(before, at):
                    self.fail(DUPLICATE, 'volume %s went to key %s (%s) and '
                              'then to key %s while the first held it',
                              volume_id, before.key, before.outcome,
                              after.key)

    def _let_go(self, record, at):
        """Had ``record``'s key given its volume back by ``at``?"""
        if (record.outcome in (rec.RELEASED, rec.UNCERTAIN)
                and record.released_at is not None
                and record.released_at <= at + self.slack):
            return True
        if record.outcome in (rec.ABANDONED, rec.UNCERTAIN, rec.RELEASED):
            lease_end = self.lease_end(record)
            return lease_end is not None and lease_end <= at + self.slack
        return False

    def lease_end(self, record):
        """When ``record``'s lease let its volume go, or None: no lease.

        Measured from the answer, never from the send: the answer's
        ``lease_expires_at``, else the first answer plus the lease.  A
        claim without a key, or into another project, has no lease.
        """
        if not record.keyed or record.project is not None:
            return None
        if record.lease_until is not None:
            return record.lease_until
        if record.first_answer_at is None or not self.lease:
            return None
        return record.first_answer_at + self.lease

    def check_receipts(self):
        known = {record.key for record in self.records}
        for receipt in self.receipts or ():
            key = receipt.get('claim_key')
            if key is not None and key not in known:
                self._unknown_receipt(receipt)
            if receipt['state'] not in TERMINAL:
                self.fail(UNSETTLED, 'receipt of key %s still %s (volume '
                          '%s)', key, receipt['state'],
                          receipt.get('volume_id'))
        for volume_id, keys in self.holders.items():
            if len(keys) > 1:
                self.fail(DUPLICATE, 'volume %s is held by %d keys: %s',
                          volume_id, len(keys), ', '.join(map(str, keys)))

    def _unknown_receipt(self, receipt):
        """A receipt of a key no caller knows: a leak if it holds a
        volume, or if every key is known; else the key of a claim without
        a key whose answer never came, holding nothing: a note."""
        unlearnt = any(not r.keyed and r.key.startswith(UNKEYED_PREFIX)
                       for r in self.records)
        message = 'receipt of unknown key %s (%s, volume %s)' % (
            receipt['claim_key'], receipt['state'], receipt.get('volume_id'))
        if receipt['state'] in HOLDING or not unlearnt:
            self.fail(LEAK, '%s', message)
        else:
            self.notes.append(message)

    def check_volumes(self):
        """Every Cinder volume in exactly one category."""
        categories = collections.Counter()
        for volume_id, volume in sorted(self.volumes.items()):
            metadata = volume.get('metadata') or {}
            rows = self.rows_by_volume.get(volume_id, [])
            holders = self.holders.get(volume_id, [])
            if volume_id in self.golden:
                categories['golden'] += 1
            elif rows:
                categories['pool'] += 1
                if holders:
                    self.fail(DUPLICATE, 'volume %s is in pool %s and held '
                              'by key %s', volume_id, rows[0]['pool'],
                              holders[0])
                if metadata.get(TAG_POOL) != rows[0]['pool']:
                    self.fail(POOL, 'volume %s has a row in pool %s but is '
                              'tagged %r', volume_id, rows[0]['pool'],
                              metadata.get(TAG_POOL))
            elif holders:
                categories['held'] += 1
                self._check_held(volume_id, volume, metadata)
                self._check_project(volume_id, volume, holders[0])
                self._check_name(volume_id, volume, holders[0])
            elif volume.get('status') == 'deleting':
                categories['deleting'] += 1
                self.notes.append('volume %s is still deleting' % volume_id)
            else:
                categories['leak'] += 1
                self.fail(LEAK, 'volume %s (%s, %s, tags %s, project %s) is '
                          'in no pool and held by no key', volume_id,
                          volume.get('name'), volume.get('status'),
                          _tags(metadata), volume.get('project', '?'))
        for volume_id, holders in self.holders.items():
            if volume_id not in self.volumes:
                self.fail(LOST, 'volume %s held by key %s is gone from '
                          'Cinder', volume_id, holders[0])
        return categories

    def _check_held(self, volume_id, volume, metadata):
        if metadata.get(TAG_POOL):
            self.notes.append('volume %s is held but still tagged for pool '
                              '%s' % (volume_id, metadata[TAG_POOL]))
        if TAG_LEASE in metadata:
            self.notes.append('volume %s is held but keeps its lease tag'
                              % volume_id)

    def _check_project(self, volume_id, volume, holder):
        """A held volume sits in the project its key claimed into."""
        record = self.records_by_key.get(holder)
        if self.home is None or record is None or 'project' not in volume:
            return
        wanted = record.project or self.home
        if volume['project'] != wanted:
            self.fail(LOST, 'volume %s of key %s is in project %s, not %s',
                      volume_id, holder, volume['project'], wanted)

    def _check_name(self, volume_id, volume, holder):
        """A held volume carries the name its own claim asked for: a
        late rename meant for another claim shows here."""
        record = self.records_by_key.get(holder)
        if record is None or record.name is None:
            return
        if volume.get('name') == record.name:
            return
        other = self.records_by_name.get(volume.get('name'))
        if other is not None:
            self.fail(DUPLICATE, 'volume %s of key %s carries the name key '
                      '%s asked for (%s)', volume_id, holder, other.key,
                      volume.get('name'))
        else:
            self.fail(LOST, 'volume %s of key %s is named %r, not %r',
                      volume_id, holder, volume.get('name'), record.name)

    def check_rows(self):
        ready = collections.Counter()
        for row in self.rows:
            volume_id = row.get('volume_id')
            if row['status'] != 'available':
                self.fail(UNSETTLED, 'row of volume %s in pool %s is %s',
                          volume_id, row['pool'], row['status'])
                continue
            volume = self.volumes.get(volume_id)
            if volume is None:
                self.fail(POOL, 'row of pool %s names volume %s that Cinder '
                          'does not have', row['pool'], volume_id)
                continue
            if volume.get('status') != 'available':
                self.fail(POOL, 'pool %s volume %s is %s in Cinder',
                          row['pool'], volume_id, volume.get('status'))
                continue
            if self.home is not None and volume.get(
                    'project', self.home) != self.home:
                self.fail(POOL, 'pool %s volume %s is in project %s',
                          row['pool'], volume_id, volume['project'])
                continue
            ready[row['pool']] += 1
        for volume_id, rows in self.rows_by_volume.items():
            if len(rows) > 1:
                self.fail(DUPLICATE, 'volume %s has %d pool rows',
                          volume_id, len(rows))
        return ready

    def check_pools(self, ready):
        for pool, target in sorted(self.pools.items()):
            if ready.get(pool, 0) != target:
                self.fail(POOL, 'pool %s has %d ready volumes, target %d',
                          pool, ready.get(pool, 0), target)
        for pool in sorted(set(ready) - set(self.pools)):
            self.notes.append('rows of unconfigured pool %s' % pool)

    def check_errors(self):
        """A soak whose claims all failed, or failed for a reason no
        fault explains, proves nothing about the invariant."""
        if self.records and not any(r.answers for r in self.records):
            self.fail(ERROR, 'none of the %d keys was answered',
                      len(self.records))
        if self.expected_errors is None:
            return
        unexpected = collections.Counter(
            error for r in self.records for error in set(r.errors)
            if error not in self.expected_errors)
        for error, keys in sorted(unexpected.items()):
            self.fail(ERROR, '%d keys saw %s', keys, error)

    def figures(self, categories, ready):
        outcomes = collections.Counter(r.outcome for r in self.records)
        states = collections.Counter(r['state'] for r in self.receipts or ())
        return {
            'keys': len(self.records),
            'answered': sum(1 for r in self.records if r.answers),
            'outcomes': {o: outcomes.get(o, 0) for o in rec.OUTCOMES},
            'attempts': sum(r.attempts for r in self.records),
            'into_project': sum(1 for r in self.records
                                if r.project is not None),
            'unkeyed': sum(1 for r in self.records if not r.keyed),
            'retried_keys': sum(1 for r in self.records if r.attempts > 1),
            'errors': dict(collections.Counter(
                e for r in self.records for e in r.errors)),
            # Keys (one caller's claim each) that saw each error, and
            # that saw any.
            'error_keys': dict(collections.Counter(
                e for r in self.records for e in set(r.errors))),
            'keys_with_errors': sum(1 for r in self.records if r.errors),
            'receipts': dict(states),
            'volumes': dict(categories, total=len(self.volumes)),
            'pools': {p: {'ready': ready.get(p, 0), 'target': t}
                      for p, t in sorted(self.pools.items())},
        }


def _tags(metadata):
    return ','.join('%s=%s' % item for item in sorted(metadata.items())
                    if item[0].startswith(TAG_POOL)) or 'none'


def check(records, volumes, rows, receipts, *, pools, golden=(), lease=0.0,
          slack=2.0, expected_errors=None, home=None):
    """Check a settled run; returns a :class:`Report`.

    ``receipts`` None means the database has no receipts table.  ``lease``
    is the claim lease in seconds: a key left to its lease may see its
    volume go to another key once its answer's ``lease_expires_at`` has
    passed (without one, that much after the answer).  ``slack``
    absorbs the clock steps between the claimer and the database.
    ``expected_errors``: error names the faults explain; any other one
    the callers saw is a violation (None: not checked).  ``home``: the
    pools' project; volumes carrying a ``project`` are then checked to sit
    where they belong (None: not checked).
    """
    return _Checker(records, volumes, rows, receipts, pools, golden, lease,
                    slack, expected_errors, home).run()
