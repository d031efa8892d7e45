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


@dataclasses.dataclass(frozen=True)
class Existing:
    """A take whose key already has a receipt: the answer comes from it."""

    receipt: object


def iso(moment):
    return None if moment is None else moment.strftime(
        '%Y-%m-%dT%H:%M:%S.%fZ')


def commit_steps(pool, cluster, snapshot_id, incarnation, takes=(),
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
            taken, finished = _commit(pool, cluster, snapshot_id,
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
def _commit(pool, cluster, snapshot_id, incarnation, takes, finishes):
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
