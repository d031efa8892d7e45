"""A held row's end: kept past an undo, given back, let go, or taken over.

Only the holder of a row (its claim id) may extend, give back or let go
of it; sync takes a row over once its holder is gone or out of time, under
a claim id of its own, so a volume is never both handed out and given
back.  The receipt follows the row's fate.
"""

import json

from oslo_utils import uuidutils
import sqlalchemy as sa

from volume_pool.db import api as db_api
from volume_pool.db import clock
from volume_pool.db import managers
from volume_pool.db import models

_ROWS = models.PoolVolume.__table__


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


class _ReleasedMeanwhile(Exception):
    """A release stopped the claim after its settler read the receipt:
    roll back, the volume may yet come back from its project."""


# What ``let_go`` returns when it changed nothing for that reason.
RELEASED_MEANWHILE = 'released meanwhile'


@db_api.retry
def let_go(row_id, claim_id, owner=None, given_up=False):
    """The volume is not the pool's (in use, or gone): forget the row; a
    release or return in progress ends ``used``.

    ``owner``: the project Cinder says owns the volume now.  A claim into
    that very project whose end was lost (deadline, crash) did hand the
    volume over: its receipt ends ``used``, so a retry with its key gets
    this volume, not a second one; past its deadline, the receipt keeps
    it (no caller was told in time: a release brings the volume back).
    ``given_up``: the settler read the receipt as given up by its caller
    and the volume stays in ``owner`` all the same (in use there).
    Returns RELEASED_MEANWHILE, changing nothing, if a release stopped
    the claim since the settler read its receipt: it is settled again.
    """
    try:
        return _end_hold(row_id, claim_id, None, _LET_GO, owner=owner,
                         given_up=given_up)
    except _ReleasedMeanwhile:
        return RELEASED_MEANWHILE


def _end_hold(row_id, claim_id, status, outcomes, size=None, owner=None,
              given_up=False):
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
        unanswered = state == models.R_CLAIMING or (
            state == models.R_RELEASING and found.result is None)
        if (unanswered and owner is not None and
                found.target_project == owner):
            if state == models.R_RELEASING and not given_up:
                raise _ReleasedMeanwhile()
            session.execute(
                sa.update(receipt).where(receipt.claim_id == claim_id)
                .values(state=models.R_USED, updated_at=now,
                        deadline=(_past(found.deadline, now)
                                  if state == models.R_CLAIMING else None),
                        result=json.dumps(_handed_over(found))))
        elif state == models.R_CLAIMING:
            session.execute(sa.delete(receipt).where(
                receipt.claim_id == claim_id))
        elif unanswered:
            # A claim its caller released before it answered: the caller
            # has nothing, wherever the volume went; the key stays spent.
            session.execute(
                sa.update(receipt).where(receipt.claim_id == claim_id)
                .values(state=models.R_RELEASED, updated_at=now,
                        deadline=None))
        elif state in outcomes:
            session.execute(
                sa.update(receipt).where(receipt.claim_id == claim_id)
                .values(state=outcomes[state], updated_at=now,
                        deadline=None))
        return state


class _NotHeld(Exception):
    """The row was not the claim's any more: undo the receipt's change."""


@db_api.retry
def hand_out(row_id, claim_id, answer, lease=0.0):
    """A claim's hand-over landed in Cinder and it may have answered: the
    volume is its caller's.  The receipt, still ``claiming``, records the
    answer (``leased`` for ``lease`` seconds from now, or ``used``) and
    the row goes.  The receipt first, as a release that stops a claim
    changes it first.  Returns the answer, or None if the claim's
    receipt or row had changed."""
    receipt = models.ClaimReceipt
    try:
        with db_api.writer() as session:
            now = clock.now(session)
            lease_at = clock.later(now, lease) if lease else None
            answer = dict(answer, lease_expires_at=clock.iso(lease_at))
            if not session.execute(
                    sa.update(receipt)
                    .where(receipt.claim_id == claim_id,
                           receipt.state == models.R_CLAIMING)
                    .values(state=(models.R_LEASED if lease_at
                                   else models.R_USED),
                            lease_expires_at=lease_at, deadline=None,
                            updated_at=now, result=json.dumps(answer),
                            volume_id=answer['volume_id'])).rowcount:
                return None
            table = models.PoolVolume
            if not session.execute(sa.delete(table).where(
                    table.id == row_id, table.claim_id == claim_id,
                    table.status == models.CLAIMING)).rowcount:
                raise _NotHeld()
    except _NotHeld:
        return None
    return answer


def _past(deadline, now):
    """A claim's deadline, kept on a receipt answered after it (no caller
    was told in time); None when the answer came in time."""
    return deadline if deadline is not None and deadline < now else None


def _handed_over(receipt):
    """The answer of a claim into a project that ended without one."""
    return {'volume_id': receipt.volume_id, 'name': None,
            'snapshot_type': receipt.pool, 'snapshot_id': receipt.snapshot_id,
            'size': receipt.size, 'status': 'available',
            'cluster': receipt.cluster or None, 'source': receipt.source,
            'project_id': receipt.target_project,
            'claim_key': receipt.claim_key, 'lease_expires_at': None}


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
