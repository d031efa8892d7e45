"""The claim's transactions: take, finish, undo, and sync's take-over.

A claim holds its row (``claiming``) under a claim id, the incarnation of
the manager process that runs it and a deadline on the database's clock.
Only the holder may finish or undo it, and it may finish only before its
deadline.  Sync takes a row over once its holder is gone or its deadline
has passed, under a claim id of its own, so a volume is never both handed
out and given back.  The claim's receipt follows the row: while the row is
held, the receipt's claim id is the row's.
"""

import dataclasses
import json
import time

from oslo_db import exception as db_exc
from oslo_utils import uuidutils
import sqlalchemy as sa

from volume_pool.db import api as db_api
from volume_pool.db import clock
from volume_pool.db import managers
from volume_pool.db import models
from volume_pool.db import receipts

# Core tables for the claim's own statements: no ORM unit of work.
_ROWS = models.PoolVolume.__table__
_RECEIPTS = models.ClaimReceipt.__table__
# A batch whose key turned out to be taken is run again without it; a
# second collision in a row is somebody else's bug, not a retry.
_DUPLICATE_RERUNS = 3


@dataclasses.dataclass(frozen=True)
class Take:
    """One claim asking for a ready row of the pool."""

    claim_id: str
    hold: float                  # seconds from ``since`` to the deadline
    fingerprint: str = ''
    claim_key: str | None = None
    project_id: str = ''
    target_project: str | None = None
    # When the claim arrived (monotonic): time spent queued for a batch
    # or on earlier attempts counts against its hold.
    since: float = dataclasses.field(default_factory=time.monotonic)

    @property
    def left(self):
        """Seconds of its hold left now."""
        return self.hold - (time.monotonic() - self.since)


@dataclasses.dataclass(frozen=True)
class Finish:
    """One claim done in Cinder: its row leaves the pool, its receipt
    records the answer."""

    row_id: int
    claim_id: str
    state: str                   # models.R_LEASED or models.R_USED
    result: dict
    lease: float = 0.0           # seconds, for models.R_LEASED
    volume_id: str | None = None


@dataclasses.dataclass(frozen=True)
class Existing:
    """A take whose key already has a receipt: the answer comes from it."""

    receipt: object


def iso(moment):
    return None if moment is None else moment.strftime(
        '%Y-%m-%dT%H:%M:%S.%fZ')


def settle_claims(pool, cluster, snapshot_id, incarnation, takes=(),
                  finishes=()):
    """The database steps of several claims of one pool, one transaction.

    Returns (taken, finished): per take, the row now held (``claiming``),
    None when the pool has no ready row (its receipt is written all the
    same, for the miss path), or :class:`Existing`; per finish, the answer
    with ``lease_expires_at`` filled in, or None if the claim no longer
    holds its row or its deadline has passed (it must be undone).
    """
    answered = {}
    seen, repeats = set(), []
    for take in takes:
        key = (take.project_id, take.claim_key)
        if take.claim_key and key in seen:
            repeats.append(take)  # answered from the first one's receipt
        seen.add(key)
    for _rerun in range(_DUPLICATE_RERUNS):
        pending = [take for take in takes if take.claim_id not in answered
                   and take not in repeats]
        try:
            taken, finished = _settle(pool, cluster, snapshot_id,
                                      incarnation, pending, finishes)
        except db_exc.DBDuplicateEntry:
            fresh = _own_takes(pending)
            found = receipts.by_keys(cluster, [
                (take.project_id, take.claim_key) for take in pending
                if take.claim_key and take.claim_id not in fresh])
            fresh.update({take.claim_id: Existing(found[key])
                          for take in pending
                          if (key := (take.project_id or '',
                                      take.claim_key)) in found
                          and take.claim_id not in fresh})
            if not fresh:
                raise
            answered.update(fresh)
            continue
        answered.update(zip([take.claim_id for take in pending], taken,
                            strict=True))
        if repeats:
            found = receipts.by_keys(cluster, [
                (take.project_id, take.claim_key) for take in repeats])
            answered.update(
                (take.claim_id,
                 Existing(found[(take.project_id or '', take.claim_key)]))
                for take in repeats)
        return [answered[take.claim_id] for take in takes], finished
    raise db_exc.DBError('claim keys kept colliding')


def _own_takes(takes):
    """Takes whose transaction committed although its answer was lost
    (oslo.db ran it again): their receipts are there under their own
    claim ids.  Returns ``{claim id: the row it holds, or None}``."""
    table, row = _RECEIPTS.c, _ROWS.c
    ids = [take.claim_id for take in takes]
    with db_api.reader() as session:
        committed = set(session.execute(
            sa.select(table.claim_id).where(table.claim_id.in_(ids)))
            .scalars())
        if not committed:
            return {}
        held = {r.claim_id: r for r in session.execute(
            sa.select(models.PoolVolume)
            .where(row.claim_id.in_(committed))).scalars()}
        session.expunge_all()
    return {claim_id: held.get(claim_id) for claim_id in committed}


@db_api.retry
def _settle(pool, cluster, snapshot_id, incarnation, takes, finishes):
    # The database's time rides on the statements that need it (the
    # take's SELECT, the finish's RETURNING): no round trip of its own on
    # the way of a claim.
    with db_api.writer() as session:
        finished = _finish(session, finishes)
        taken = []
        if takes:
            taken, now = _take(session, pool, cluster, snapshot_id,
                               incarnation, takes)
            session.execute(sa.insert(_RECEIPTS), [
                _receipt(take, row, pool, cluster, snapshot_id, now)
                for take, row in zip(takes, taken, strict=True)])
    return taken, finished


def _receipt(take, row, pool, cluster, snapshot_id, now):
    return dict(
        claim_id=take.claim_id, cluster=db_api.cluster_key(cluster),
        project_id=take.project_id or '', claim_key=take.claim_key,
        fingerprint=take.fingerprint, state=models.R_CLAIMING, pool=pool,
        snapshot_id=row.snapshot_id if row else snapshot_id,
        volume_id=row.volume_id if row else None,
        volume_name=row.name if row else None,
        request_id=row.request_id if row else None,
        size=row.size if row else None,
        source='pool' if row else 'created',
        target_project=take.target_project,
        deadline=clock.later(now, take.left))


def _take(session, pool, cluster, snapshot_id, incarnation, takes):
    """Hold the oldest ready rows, one per take, None past the last.

    Returns (rows, the database's time of the take).
    """
    row = models.PoolVolume
    conditions = [row.cluster == db_api.cluster_key(cluster),
                  row.pool == pool, row.status == models.AVAILABLE]
    if snapshot_id is not None:
        conditions.append(row.snapshot_id == snapshot_id)
    if session.bind.dialect.name in db_api.SKIP_LOCKED_DIALECTS:
        # Lock the oldest ready rows, skipping rows that concurrent claims
        # (of any manager) hold.
        found = session.execute(
            sa.select(row, clock.utcnow()).where(*conditions)
            .order_by(row.created_at, row.id).limit(len(takes))
            .with_for_update(skip_locked=True, of=row)).all()
        picked = [taken for taken, _now in found]
        now = found[0][1] if found else clock.now(session)
    else:
        # SQLite: the first write takes the database lock, so the read
        # that follows it cannot race.
        picked = _pick_sqlite(session, conditions, len(takes))
        now = clock.now(session)
    if not picked:
        return [None] * len(takes), now
    holders = dict(zip([r.id for r in picked], takes, strict=False))
    claim_of = {row_id: take.claim_id for row_id, take in holders.items()}
    deadline_of = {row_id: clock.later(now, take.left)
                   for row_id, take in holders.items()}
    rows = _ROWS.c
    session.execute(
        sa.update(_ROWS).where(rows.id.in_(claim_of))
        .values(status=models.CLAIMING, incarnation=incarnation,
                claimed_at=now, updated_at=now,
                claim_id=sa.case(claim_of, value=rows.id),
                claim_deadline=sa.case(deadline_of, value=rows.id)))
    # The rows leave the session as they now are in the table.
    session.expunge_all()
    for taken in picked:
        taken.status = models.CLAIMING
        taken.claim_id = claim_of[taken.id]
        taken.claim_deadline = deadline_of[taken.id]
        taken.incarnation = incarnation
    return picked + [None] * (len(takes) - len(picked)), now


def _pick_sqlite(session, conditions, count):
    row = models.PoolVolume
    ids = []
    for _ in range(count):
        pick = (sa.select(row.id).where(*conditions,
                                        row.id.not_in(ids or [-1]))
                .order_by(row.created_at, row.id).limit(1)
                .scalar_subquery())
        # A no-op write of the pick: takes SQLite's write lock at once.
        row_id = session.execute(
            sa.update(row).where(row.id == pick)
            .values(status=models.AVAILABLE)
            .returning(row.id)
            .execution_options(synchronize_session=False)).scalar()
        if row_id is None:
            break
        ids.append(row_id)
    if not ids:
        return []
    found = {r.id: r for r in session.execute(
        sa.select(row).where(row.id.in_(ids))).scalars()}
    return [found[row_id] for row_id in ids]


def _finish(session, finishes):
    """Delete the rows still held by their claims within the deadline,
    and write their receipts; returns per finish the answer or None."""
    if not finishes:
        return []
    row = _ROWS.c
    claim_of = {finish.row_id: finish.claim_id for finish in finishes}
    conditions = (row.status == models.CLAIMING,
                  row.claim_deadline > clock.utcnow())
    now = None
    if session.bind.dialect.delete_returning:
        # By primary key, so that only these rows are locked: a row-value
        # IN makes MariaDB scan and lock the whole table, and concurrent
        # claims, which skip locked rows, would find the pool empty.
        deleted = session.execute(
            sa.delete(_ROWS)
            .where(row.id.in_(claim_of), *conditions,
                   row.claim_id == sa.case(claim_of, value=row.id))
            .returning(row.id, clock.utcnow())).all()
        gone = {row_id for row_id, _now in deleted}
        now = deleted[0][1] if deleted else None
    else:
        gone = {finish.row_id for finish in finishes
                if session.execute(
                    sa.delete(_ROWS).where(row.id == finish.row_id,
                                         row.claim_id == finish.claim_id,
                                         *conditions)).rowcount == 1}
    if gone and now is None:
        now = clock.now(session)
    answers = {}
    groups = {}
    for finish in finishes:
        if finish.row_id not in gone:
            continue
        lease_at = (clock.later(now, finish.lease)
                    if finish.state == models.R_LEASED and finish.lease
                    else None)
        answer = dict(finish.result, lease_expires_at=iso(lease_at))
        answers[finish.claim_id] = answer
        groups.setdefault((finish.state, lease_at), []).append(
            (finish, answer))
    receipt = _RECEIPTS.c
    for (state, lease_at), members in groups.items():
        results = {f.claim_id: json.dumps(answer) for f, answer in members}
        volumes = {f.claim_id: f.volume_id or answer['volume_id']
                   for f, answer in members}
        session.execute(
            sa.update(_RECEIPTS)
            .where(receipt.claim_id.in_(results),
                   receipt.state == models.R_CLAIMING)
            .values(state=state, lease_expires_at=lease_at, deadline=None,
                    updated_at=now,
                    result=sa.case(results, value=receipt.claim_id),
                    volume_id=sa.case(volumes, value=receipt.claim_id)))
    return [answers.get(finish.claim_id) for finish in finishes]


# ---------------------------------------------------------------------------
# A miss: the intent row, written before Cinder is asked


@db_api.retry
def write_receipt(pool, cluster, snapshot_id, take):
    """The receipt of a claim that holds no row yet (its miss follows)."""
    with db_api.writer() as session:
        now = clock.now(session)
        session.execute(sa.insert(models.ClaimReceipt), [
            _receipt(take, None, pool, cluster, snapshot_id, now)])


@db_api.retry
def hold_new_volume(claim_id, *, request_id, pool, cluster, snapshot_id,
                    size, name, host, incarnation):
    """The row of a volume a claim is about to create, held by the claim.

    Written before the create, with the pool's tags on the volume, so a
    lost answer leaves a row and a tagged volume that sync settles.
    Returns the row, or None if the claim's deadline has passed.
    """
    receipt = models.ClaimReceipt
    with db_api.writer() as session:
        now = clock.now(session)
        held = session.execute(
            sa.update(receipt)
            .where(receipt.claim_id == claim_id,
                   receipt.state == models.R_CLAIMING,
                   receipt.deadline > now)
            .values(request_id=request_id, volume_name=name, size=size,
                    updated_at=now)).rowcount
        if not held:
            return None
        deadline = session.execute(
            sa.select(receipt.deadline)
            .where(receipt.claim_id == claim_id)).scalar_one()
        row = models.PoolVolume(
            request_id=request_id, pool=pool,
            cluster=db_api.cluster_key(cluster), snapshot_id=snapshot_id,
            size=size, name=name, host=host, status=models.CLAIMING,
            claim_id=claim_id, claimed_at=now, incarnation=incarnation,
            claim_deadline=deadline)
        session.add(row)
        session.flush()
        session.expunge(row)
    return row


@db_api.retry
def bind_volume(row_id, claim_id, volume_id):
    """Record the volume a held row's create produced."""
    table = models.PoolVolume
    with db_api.writer() as session:
        return session.execute(
            sa.update(table)
            .where(table.id == row_id, table.claim_id == claim_id)
            .values(volume_id=volume_id)).rowcount == 1


@db_api.retry
def drop_receipt(claim_id):
    """A claim that ended without a volume: its key may be used again."""
    receipt = models.ClaimReceipt
    with db_api.writer() as session:
        session.execute(sa.delete(receipt).where(
            receipt.claim_id == claim_id,
            receipt.state == models.R_CLAIMING))


# ---------------------------------------------------------------------------
# Undo and settle: only the holder of the row acts


@db_api.retry
def extend_hold(row_id, claim_id, incarnation, hold):
    """Keep holding a row for an undo; False if it is not ours any more.

    Allowed past the deadline: the holder may always give back, and sync
    takes the row over only if this has not happened first.
    """
    table = models.PoolVolume
    with db_api.writer() as session:
        now = clock.now(session)
        return session.execute(
            sa.update(table)
            .where(table.id == row_id, table.claim_id == claim_id,
                   table.status.in_((models.CLAIMING, models.UNCERTAIN)))
            .values(incarnation=incarnation,
                    claim_deadline=clock.later(now, hold))).rowcount == 1


@db_api.retry
def still_holds(row_id, claim_id):
    """True while the claim holds its row and its deadline has not
    passed: checked before each Cinder step that cannot be undone."""
    table = _ROWS.c
    with db_api.reader() as session:
        return session.execute(
            sa.select(table.id).where(
                table.id == row_id, table.claim_id == claim_id,
                table.status == models.CLAIMING,
                table.claim_deadline > clock.utcnow())).first() is not None


@db_api.retry
def mark_uncertain(row_id, claim_id):
    """The undo failed: Cinder's state of the volume is unknown.  Sync
    settles the row at its next run; replenish counts it as ready."""
    table = models.PoolVolume
    with db_api.writer() as session:
        # From now, a request of the failed claim may still land for the
        # take-over's grace; sync settles the row after that.
        return session.execute(
            sa.update(table)
            .where(table.id == row_id, table.claim_id == claim_id,
                   table.status == models.CLAIMING)
            .values(status=models.UNCERTAIN,
                    claim_deadline=clock.utcnow())).rowcount == 1


# Receipt outcomes when the pool keeps the volume, and when it lets go.
_GIVEN_BACK = {models.R_RELEASING: models.R_RELEASED,
               models.R_RETURNING: models.R_RETURNED}
_LET_GO = {models.R_RELEASING: models.R_USED,
           models.R_RETURNING: models.R_USED}


@db_api.retry
def give_back(row_id, claim_id, status=models.AVAILABLE, size=None):
    """The volume is the pool's again (tags restored in Cinder first).

    The row leaves the hold as ``status``; the receipt of a failed claim
    is dropped, a release ends ``released``, a lease return ``returned``.
    Returns the receipt's state before, or False if the row was not held.
    """
    return _end_hold(row_id, claim_id, status, _GIVEN_BACK, size=size)


@db_api.retry
def let_go(row_id, claim_id, owner=None):
    """The volume is not the pool's (in use, or gone): forget the row; a
    release or return in progress ends ``used``.

    ``owner``: the project Cinder says owns the volume now.  A claim into
    that very project whose end was lost (deadline, crash) did hand the
    volume over: its receipt ends ``used``, so a retry with its key gets
    this volume, not a second one.
    """
    return _end_hold(row_id, claim_id, None, _LET_GO, owner=owner)


def _end_hold(row_id, claim_id, status, outcomes, size=None, owner=None):
    table, receipt = models.PoolVolume, models.ClaimReceipt
    held = (table.id == row_id, table.claim_id == claim_id,
            table.status.in_((models.CLAIMING, models.UNCERTAIN)))
    with db_api.writer() as session:
        now = clock.now(session)
        if status is None:
            done = session.execute(sa.delete(table).where(*held)).rowcount
        else:
            values = dict(status=status, claim_id=None, incarnation=None,
                          claim_deadline=None, claimed_at=None,
                          updated_at=now)
            if status == models.AVAILABLE:
                values['ready_at'] = now
            if size is not None:
                values['size'] = size
            done = session.execute(
                sa.update(table).where(*held).values(**values)).rowcount
        if not done:
            return False
        found = session.execute(
            sa.select(receipt).where(receipt.claim_id == claim_id)).scalar()
        state = found.state if found is not None else None
        if (state == models.R_CLAIMING and owner is not None and
                found.target_project == owner):
            session.execute(
                sa.update(receipt).where(receipt.claim_id == claim_id)
                .values(state=models.R_USED, updated_at=now, deadline=None,
                        result=json.dumps(_handed_over(found))))
        elif state == models.R_CLAIMING:
            session.execute(sa.delete(receipt).where(
                receipt.claim_id == claim_id))
        elif state in outcomes:
            session.execute(
                sa.update(receipt).where(receipt.claim_id == claim_id)
                .values(state=outcomes[state], updated_at=now,
                        deadline=None))
        return state


def _handed_over(receipt):
    """The answer of a claim into a project that ended without one."""
    return {'volume_id': receipt.volume_id, 'name': None,
            'snapshot_type': receipt.pool, 'snapshot_id': receipt.snapshot_id,
            'size': receipt.size, 'status': 'available',
            'cluster': receipt.cluster or None, 'source': receipt.source,
            'project_id': receipt.target_project,
            'claim_key': receipt.claim_key, 'lease_expires_at': None}


# ---------------------------------------------------------------------------
# Sync's take-over of abandoned holds


@db_api.retry
def take_over(cluster, pool, incarnation, hold, down_time, legacy_timeout,
              grace=0.0):
    """Hold the rows of ``pool`` whose holder is gone or out of time.

    A row is taken over when it is ``uncertain``, or ``claiming`` and its
    deadline has passed ``grace`` seconds ago or its incarnation is gone
    (stopped, or no heartbeat for ``down_time`` seconds), all by the
    database's clock; a row held by a manager of the previous release (no
    incarnation) after ``legacy_timeout`` seconds.  ``grace`` is the
    longest a Cinder request of the holder may still run: its late rename
    must land before the volume can go to the next caller.  Each row gets
    a claim id of sync's own, and its receipt follows.  Returns
    ``[(row, receipt state or None)]``.
    """
    table, receipt = models.PoolVolume, models.ClaimReceipt
    with db_api.writer() as session:
        now = clock.now(session)
        alive = managers.alive_condition(session, now, down_time)
        abandoned = sa.or_(
            sa.and_(table.status == models.UNCERTAIN,
                    table.claim_deadline < clock.later(now, -grace)),
            sa.and_(table.status == models.CLAIMING, sa.or_(
                table.claim_deadline < clock.later(now, -grace),
                sa.and_(table.incarnation.is_not(None),
                        table.incarnation.not_in(alive)),
                sa.and_(table.incarnation.is_(None),
                        table.claimed_at < clock.later(
                            now, -legacy_timeout)))))
        query = sa.select(table).where(
            table.cluster == db_api.cluster_key(cluster),
            table.pool == pool, abandoned)
        if session.bind.dialect.name in db_api.SKIP_LOCKED_DIALECTS:
            query = query.with_for_update(skip_locked=True)
        taken = []
        candidates = list(session.execute(query).scalars())
        session.expunge_all()
        for row in candidates:
            old_claim, new_claim = row.claim_id, uuidutils.generate_uuid()
            moved = session.execute(
                sa.update(table)
                .where(table.id == row.id, table.status == row.status,
                       (table.claim_id == old_claim) if old_claim
                       else table.claim_id.is_(None))
                .values(claim_id=new_claim, incarnation=incarnation,
                        claim_deadline=clock.later(now, hold))).rowcount
            if not moved:
                continue
            state = None
            if old_claim:
                state = session.execute(
                    sa.select(receipt.state)
                    .where(receipt.claim_id == old_claim)).scalar()
                session.execute(
                    sa.update(receipt).where(receipt.claim_id == old_claim)
                    .values(claim_id=new_claim))
            row.claim_id = new_claim
            taken.append((row, state))
    return taken
