"""The claim's transactions: take a ready row, finish, or hold a new one.

A claim holds its row (``claiming``) under a claim id, the incarnation of
the manager process that runs it and a deadline on the database's clock.
Only the holder may finish it, and only before its deadline; how a hold
ends otherwise is :mod:`volume_pool.db.holds`.  The claim's receipt
follows the row: while the row is held, the receipt's claim id is the
row's.
"""

import dataclasses
import json
import time
import types

from oslo_db import exception as db_exc
import sqlalchemy as sa

from volume_pool.db import api as db_api
from volume_pool.db import clock
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
    # Its answer already went out (see volume_pool.answered_finishes):
    # the lease's end as the answer said, and no deadline to meet.
    answered: bool = False
    lease_at: object = None


@dataclasses.dataclass(frozen=True)
class Existing:
    """A take whose key already has a receipt: the answer comes from it."""

    receipt: object


def commit_steps(pool, cluster, snapshot_id, incarnation, takes=(),
                  finishes=()):
    """The database steps of several claims of one pool, one transaction.

    Returns (taken, finished): per take, the row now held (``claiming``),
    None when the pool has no ready row (its receipt is written all the
    same, for the miss path), or :class:`Existing`; per finish, the answer
    with ``lease_expires_at`` filled in, or None if the claim no longer
    holds its row or its deadline has passed (it must be undone).  A
    finish whose answer went out is None when its claim no longer holds
    its receipt: sync took it over, or a release stopped it.
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
            taken, finished = _commit_or_apart(pool, cluster, snapshot_id,
                                               incarnation, pending,
                                               finishes)
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


class TakesLost(db_exc.DBError):
    """The takes of a batch failed after its finishes had committed on
    their own: ``finished`` holds the finishes' answers.  No take wrote
    anything, so a keyed retry starts afresh."""

    def __init__(self, finished, cause):
        super().__init__(cause)
        self.finished = finished


def _commit_or_apart(pool, cluster, snapshot_id, incarnation, takes,
                     finishes):
    """The takes and finishes in one transaction; if it keeps losing
    races, the finishes alone, then the takes alone.

    A take races other claims for the oldest ready rows (on a Galera
    cluster, claims writing through other nodes, seen only at commit); a
    finish deletes a row its claim already holds, whose volume Cinder has
    already handed over.  The finishes must not pay for the takes' races.
    """
    try:
        return _commit(pool, cluster, snapshot_id, incarnation, takes,
                       finishes)
    except db_exc.DBDeadlock:
        if not (takes and finishes):
            raise
    finished = _commit(pool, cluster, snapshot_id, incarnation, (),
                       finishes)[1]
    try:
        taken = _commit(pool, cluster, snapshot_id, incarnation, takes,
                        ())[0]
    except db_exc.DBError as error:
        raise TakesLost(finished, error) from error
    return taken, finished


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


# The claim's statements are built once: a claim only binds its values,
# and SQLAlchemy runs the compiled form it cached, without building,
# walking and hashing a new statement each time.
_ROW = _ROWS.c
_READY = (_ROW.cluster == sa.bindparam('b_cluster'),
          _ROW.pool == sa.bindparam('b_pool'),
          _ROW.status == models.AVAILABLE)
_OLDEST_FIRST = (_ROW.created_at, _ROW.id)
# What the rest of a claim reads of its row (the hand-over, its undo, the
# events); the claim's own columns are set from what the take writes.
_HELD_COLUMNS = (_ROW.id, _ROW.request_id, _ROW.volume_id, _ROW.name,
                 _ROW.pool, _ROW.cluster, _ROW.snapshot_id, _ROW.size,
                 _ROW.created_at, _ROW.ready_at)
# Lock the oldest ready rows, skipping rows that concurrent claims (of
# any manager) hold; the database's time rides along.  By snapshot, and
# for any snapshot.
_PICK = {
    by_snapshot: sa.select(*_HELD_COLUMNS, clock.utcnow().label('db_now'))
    .where(*_READY, *((_ROW.snapshot_id == sa.bindparam('b_snapshot'),)
                      if by_snapshot else ()))
    .order_by(*_OLDEST_FIRST).limit(sa.bindparam('b_count'))
    .with_for_update(skip_locked=True, of=_ROWS)
    for by_snapshot in (True, False)}
_HOLD = (sa.update(_ROWS).where(_ROW.id == sa.bindparam('b_id'))
         .values(status=models.CLAIMING, incarnation=sa.bindparam('b_inc'),
                 claimed_at=sa.bindparam('b_now'),
                 updated_at=sa.bindparam('b_now'),
                 claim_id=sa.bindparam('b_claim'),
                 claim_deadline=sa.bindparam('b_deadline')))
_WRITE_RECEIPTS = sa.insert(_RECEIPTS)
# Only the holder, only before its deadline.
_STILL_HELD = (_ROW.id == sa.bindparam('b_id'),
               _ROW.claim_id == sa.bindparam('b_claim'),
               _ROW.status == models.CLAIMING,
               _ROW.claim_deadline > clock.utcnow())
_DELETE_HELD = sa.delete(_ROWS).where(*_STILL_HELD)
_DELETE_HELD_RETURNING = _DELETE_HELD.returning(clock.utcnow())


def _recording_answer(updated_at):
    """The receipt of a claim still ``claiming`` records its answer."""
    return (sa.update(_RECEIPTS)
            .where(_RECEIPTS.c.claim_id == sa.bindparam('b_claim'),
                   _RECEIPTS.c.state == models.R_CLAIMING)
            .values(state=sa.bindparam('b_state'),
                    lease_expires_at=sa.bindparam('b_lease_at'),
                    deadline=None, updated_at=updated_at,
                    result=sa.bindparam('b_result'),
                    volume_id=sa.bindparam('b_volume')))


# A finish whose answer went out: its receipt first, as a release that
# stops a claim does (receipt, then row), and no deadline: the volume is
# the caller's.  A claim stopped by a release meanwhile keeps its row for
# the volume's way back.
_RECORD_ANSWERED = _recording_answer(clock.utcnow())
_DELETE_ANSWERED = sa.delete(_ROWS).where(
    _ROW.id == sa.bindparam('b_id'), _ROW.claim_id == sa.bindparam('b_claim'),
    _ROW.status == models.CLAIMING)
# A fenced finish: the time its row's delete returned.
_RECORD_ANSWER = _recording_answer(sa.bindparam('b_now'))


class HeldRow(types.SimpleNamespace):
    """A pool row as its claim now holds it: the columns, detached."""


@db_api.retry
def _commit(pool, cluster, snapshot_id, incarnation, takes, finishes):
    # The database's time rides on the statements that need it (the
    # take's SELECT, the finish's RETURNING): no round trip of its own on
    # the way of a claim.
    with db_api.write_connection() as connection:
        finished = _finish(connection, finishes)
        taken = []
        if takes:
            taken, now = _take(connection, pool, cluster, snapshot_id,
                               incarnation, takes)
            connection.execute(_WRITE_RECEIPTS, [
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


def _take(connection, pool, cluster, snapshot_id, incarnation, takes):
    """Hold the oldest ready rows, one per take, None past the last.

    Returns (rows, the database's time of the take).
    """
    values = dict(b_cluster=db_api.cluster_key(cluster), b_pool=pool,
                  b_snapshot=snapshot_id, b_count=len(takes))
    if connection.dialect.name in db_api.SKIP_LOCKED_DIALECTS:
        found = connection.execute(_PICK[snapshot_id is not None],
                                   values).all()
        now = found[0].db_now if found else clock.now(connection)
        picked = [HeldRow(**row._asdict()) for row in found]
    else:
        picked = _pick_sqlite(connection, values, len(takes))
        now = clock.now(connection)
    if not picked:
        return [None] * len(takes), now
    for row, take in zip(picked, takes, strict=False):
        row.__dict__.pop('db_now', None)
        row.status = models.CLAIMING
        row.claim_id = take.claim_id
        row.claim_deadline = clock.later(now, take.left)
        row.incarnation = incarnation
        row.claimed_at = row.updated_at = now
    connection.execute(_HOLD, [
        dict(b_id=row.id, b_inc=incarnation, b_now=now,
             b_claim=row.claim_id, b_deadline=row.claim_deadline)
        for row in picked])
    return picked + [None] * (len(takes) - len(picked)), now


def _pick_sqlite(connection, values, count):
    """SQLite: the first write takes the database lock, so the reads that
    follow it cannot race."""
    conditions = [_ROW.cluster == values['b_cluster'],
                  _ROW.pool == values['b_pool'],
                  _ROW.status == models.AVAILABLE]
    if values['b_snapshot'] is not None:
        conditions.append(_ROW.snapshot_id == values['b_snapshot'])
    ids = []
    for _ in range(count):
        pick = (sa.select(_ROW.id).where(*conditions,
                                         _ROW.id.not_in(ids or [-1]))
                .order_by(*_OLDEST_FIRST).limit(1).scalar_subquery())
        # A no-op write of the pick: takes SQLite's write lock at once.
        row_id = connection.execute(
            sa.update(_ROWS).where(_ROW.id == pick)
            .values(status=models.AVAILABLE)
            .returning(_ROW.id)).scalar()
        if row_id is None:
            break
        ids.append(row_id)
    found = {row.id: row for row in connection.execute(
        sa.select(*_HELD_COLUMNS).where(_ROW.id.in_(ids or [-1])))}
    return [HeldRow(**found[row_id]._asdict()) for row_id in ids]


def _finish(connection, finishes):
    """Delete the rows still held by their claims (within the deadline
    unless answered) and write their receipts; returns per finish the
    answer or None."""
    answers = {finish.claim_id: _record_answered(connection, finish)
               for finish in finishes if finish.answered}
    answers.update(_finish_in_time(
        connection, [finish for finish in finishes if not finish.answered]))
    return [answers.get(finish.claim_id) for finish in finishes]


def _record_answered(connection, finish):
    """The finish of a claim that answered already: its answer, or None
    if the claim no longer holds its receipt."""
    answer = dict(finish.result, lease_expires_at=clock.iso(finish.lease_at))
    recorded = connection.execute(_RECORD_ANSWERED, dict(
        b_claim=finish.claim_id, b_state=finish.state,
        b_lease_at=finish.lease_at, b_result=json.dumps(answer),
        b_volume=finish.volume_id or answer['volume_id'])).rowcount
    if not recorded:
        return None
    connection.execute(_DELETE_ANSWERED, dict(b_id=finish.row_id,
                                              b_claim=finish.claim_id))
    return answer


def _finish_in_time(connection, finishes):
    """The finishes fenced by their deadline: ``{claim id: answer}``."""
    gone = []
    now = None
    returning = connection.dialect.delete_returning
    for finish in finishes:
        # By primary key, one statement per row, so that only these rows
        # are locked: concurrent claims skip locked rows, and a wider
        # lock would have them find the pool empty.
        held = dict(b_id=finish.row_id, b_claim=finish.claim_id)
        if returning:
            deleted = connection.execute(_DELETE_HELD_RETURNING,
                                         held).scalar()
            now = deleted or now
        else:
            deleted = connection.execute(_DELETE_HELD, held).rowcount == 1
        if deleted:
            gone.append(finish)
    if not gone:
        return {}
    if now is None:
        now = clock.now(connection)
    answers, recorded = {}, []
    for finish in gone:
        lease_at = (clock.later(now, finish.lease)
                    if finish.state == models.R_LEASED and finish.lease
                    else None)
        answer = dict(finish.result, lease_expires_at=clock.iso(lease_at))
        answers[finish.claim_id] = answer
        recorded.append(dict(
            b_claim=finish.claim_id, b_state=finish.state,
            b_lease_at=lease_at, b_now=now, b_result=json.dumps(answer),
            b_volume=finish.volume_id or answer['volume_id']))
    connection.execute(_RECORD_ANSWER, recorded)
    return answers


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
    """Record the volume a held row's create produced, in the row and in
    the claim's receipt: whatever happens to the row, the receipt knows
    which volume the claim made."""
    table, receipt = models.PoolVolume, models.ClaimReceipt
    with db_api.writer() as session:
        bound = session.execute(
            sa.update(table)
            .where(table.id == row_id, table.claim_id == claim_id)
            .values(volume_id=volume_id)).rowcount == 1
        if bound:
            session.execute(
                sa.update(receipt)
                .where(receipt.claim_id == claim_id,
                       receipt.volume_id.is_(None))
                .values(volume_id=volume_id))
        return bound


@db_api.retry
def record_handed_over(row_id, claim_id, result):
    """Cinder accepted the claim's transfer: the volume is the receiving
    project's whatever happens next, so its receipt says ``used`` and its
    row goes, with no deadline check (nothing can undo an accepted
    transfer).  Returns the answer, or None if the claim no longer holds
    its receipt (sync took the row over and settles it)."""
    table, receipt = models.PoolVolume, models.ClaimReceipt
    answer = dict(result, lease_expires_at=None)
    with db_api.writer() as session:
        now = clock.now(session)
        # Answered past its deadline, the receipt keeps it: no caller was
        # told in time, and a release brings the volume back.
        recorded = session.execute(
            sa.update(receipt)
            .where(receipt.claim_id == claim_id,
                   receipt.state == models.R_CLAIMING)
            .values(state=models.R_USED, updated_at=now,
                    deadline=sa.case((receipt.deadline < now,
                                      receipt.deadline), else_=None),
                    result=json.dumps(answer),
                    volume_id=answer['volume_id'])).rowcount
        if not recorded:
            return None
        session.execute(sa.delete(table).where(
            table.id == row_id, table.claim_id == claim_id))
    return answer


@db_api.retry
def drop_receipt(claim_id):
    """A claim that ended without a volume: its key may be used again."""
    receipt = models.ClaimReceipt
    with db_api.writer() as session:
        session.execute(sa.delete(receipt).where(
            receipt.claim_id == claim_id,
            receipt.state == models.R_CLAIMING))
