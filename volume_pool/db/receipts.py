"""Claim receipts: what each claim did, its lease, confirm and release.

Every claim writes a receipt with the take of its row (see
:mod:`volume_pool.db.claims`); a claim key makes it findable, so a retry on
any manager gets the same answer.  A volume whose receipt holds it is a
caller's: sync never adopts it into a pool.  Returning a volume (a release
or a lease that ran out) holds it with a ``claiming`` row under the
receipt's claim id first, so a crash half-way is settled by sync like any
abandoned claim.
"""

import json

from oslo_db import exception as db_exc
from oslo_utils import uuidutils
import sqlalchemy as sa

from volume_pool.db import api as db_api
from volume_pool.db import clock
from volume_pool.db import models


def answer(receipt):
    """The claim's answer as it was sent."""
    return json.loads(receipt.result) if receipt.result else None


def view(receipt):
    """A receipt as the RPC API and the operator CLI show it."""
    return {
        'claim_key': receipt.claim_key,
        'claim_id': receipt.claim_id,
        'state': receipt.state,
        'pool': receipt.pool or None,
        'cluster': receipt.cluster or None,
        'project_id': receipt.project_id or None,
        'volume_id': receipt.volume_id,
        'source': receipt.source,
        'target_project': receipt.target_project,
        'lease_expires_at': _iso(receipt.lease_expires_at),
        'created_at': _iso(receipt.created_at),
        'updated_at': _iso(receipt.updated_at),
    }


def _iso(moment):
    return None if moment is None else moment.strftime('%Y-%m-%dT%H:%M:%SZ')


def _key_of(cluster, project_id, claim_key):
    table = models.ClaimReceipt
    return (table.cluster == db_api.cluster_key(cluster),
            table.project_id == (project_id or ''),
            table.claim_key == claim_key)


@db_api.retry
def by_keys(cluster, keys):
    """``{(project_id, claim_key): receipt}`` of the given keys."""
    keys = [(project or '', key) for project, key in keys]
    if not keys:
        return {}
    table = models.ClaimReceipt
    with db_api.reader() as session:
        found = session.execute(
            sa.select(table).where(
                table.cluster == db_api.cluster_key(cluster),
                # Both parts of the key: the unique index finds them
                # (by the key alone, MariaDB read the whole table).
                table.project_id.in_({project for project, _key in keys}),
                table.claim_key.in_({key for _project, key in keys})))
        return {(r.project_id, r.claim_key): r for r in found.scalars()
                if (r.project_id, r.claim_key) in keys}


@db_api.retry
def get(cluster, project_id, claim_key):
    table = models.ClaimReceipt
    with db_api.reader() as session:
        return session.execute(sa.select(table).where(
            *_key_of(cluster, project_id, claim_key))).scalar()


@db_api.retry
def get_by_claim(claim_id):
    table = models.ClaimReceipt
    with db_api.reader() as session:
        return session.execute(sa.select(table).where(
            table.claim_id == claim_id)).scalar()


@db_api.retry
def listing(cluster, states=None, pool=None, limit=1000):
    """Receipts of a cluster, newest first (the operator's claim list)."""
    table = models.ClaimReceipt
    query = sa.select(table).where(
        table.cluster == db_api.cluster_key(cluster))
    if states:
        query = query.where(table.state.in_(states))
    if pool:
        query = query.where(table.pool == pool)
    query = query.order_by(table.created_at.desc(), table.id.desc())
    with db_api.reader() as session:
        return list(session.execute(query.limit(limit)).scalars())


@db_api.retry
def confirm(cluster, project_id, claim_key):
    """leased -> used; returns the receipt as it is after, or None."""
    table = models.ClaimReceipt
    with db_api.writer() as session:
        # The time of the update itself, not of the transaction's start:
        # sync's lease pass looks for receipts used since its last pass.
        session.execute(
            sa.update(table)
            .where(*_key_of(cluster, project_id, claim_key),
                   table.state == models.R_LEASED)
            .values(state=models.R_USED, lease_expires_at=None,
                    updated_at=clock.utcnow()))
        return session.execute(sa.select(table).where(
            *_key_of(cluster, project_id, claim_key))).scalar()


@db_api.retry
def latch_used(claim_id):
    """Seen attached: the volume is the caller's for good."""
    table = models.ClaimReceipt
    with db_api.writer() as session:
        return session.execute(
            sa.update(table)
            .where(table.claim_id == claim_id,
                   table.state == models.R_LEASED)
            .values(state=models.R_USED, lease_expires_at=None,
                    updated_at=clock.utcnow())).rowcount == 1


def begin_release(cluster, project_id, claim_key, host, incarnation, hold):
    """Hold a caller's volume to give it back (``release``).

    Returns (receipt, row): the row is the new hold, or None when the
    receipt is not in a state to release (the caller decides what to say).
    A key no claim has used yet is recorded as released (see
    :func:`record_release`); a claim still running is stopped (see
    :func:`stop_claim`).  Both race with claims of the same key on any
    manager, so each is conditional and the receipt is read again when
    it lost.
    """
    which = sa.and_(*_key_of(cluster, project_id, claim_key))
    for _attempt in range(_RELEASE_ATTEMPTS):
        receipt, row = _begin(which, (models.R_LEASED, models.R_USED),
                              models.R_RELEASING, host, incarnation, hold)
        if receipt is None:
            receipt = record_release(cluster, project_id, claim_key)
        elif receipt.state == models.R_CLAIMING:
            receipt = stop_claim(receipt.claim_id)
        if receipt is not None:
            return receipt, row
    raise db_exc.DBError('the receipt of claim %s kept changing under its '
                         'release' % claim_key)


# A release that lost a race reads the receipt again; it cannot lose
# more often than a claim of the key starts and ends meanwhile.
_RELEASE_ATTEMPTS = 5
# The fingerprint of a release recorded before any claim of its key: no
# claim's arguments, so every claim with the key is answered ClaimReleased.
RELEASED_UNCLAIMED = ''


def released_unclaimed(receipt):
    """True for a release recorded before any claim used its key."""
    return receipt.fingerprint == RELEASED_UNCLAIMED


def released_for_the_caller(receipt):
    """True when the key's release is the caller's answer: its volume is
    back in the pool, or on its way back.  A release of a claim into a
    project is no answer until it settles: its transfer may yet be
    accepted (a request that lands late), and the volume comes back from
    the project only if nobody there attached it first (then the claim
    ends ``used``)."""
    return receipt.state == models.R_RELEASED or (
        receipt.state == models.R_RELEASING and not receipt.target_project)


def record_release(cluster, project_id, claim_key):
    """The release of a key that no claim has used yet: a receipt of its
    own, ``released`` with no volume.  Its insert and a claim's take
    insert the same unique key, so whichever commits second fails: a
    claim that comes later takes nothing (ClaimReleased).  Returns the
    receipt, or None when a claim's receipt came first."""
    try:
        return _insert_release(cluster, project_id, claim_key)
    except db_exc.DBDuplicateEntry:
        return None


@db_api.retry
def _insert_release(cluster, project_id, claim_key):
    with db_api.writer() as session:
        now = clock.now(session)
        receipt = models.ClaimReceipt(
            claim_id=uuidutils.generate_uuid(),
            cluster=db_api.cluster_key(cluster),
            project_id=project_id or '', claim_key=claim_key,
            fingerprint=RELEASED_UNCLAIMED, state=models.R_RELEASED,
            pool='', snapshot_id='', source='', created_at=now,
            updated_at=now)
        session.add(receipt)
        session.flush()
        session.expunge(receipt)
    return receipt


class _Changed(Exception):
    """The receipt left ``claiming`` meanwhile: roll back, read again."""


def stop_claim(claim_id):
    """The caller gave up on a claim that still runs: from now it can no
    longer finish.  Its receipt goes ``releasing`` and its row's deadline
    is now, so the claim's last step (and each transfer step) finds it
    past and undoes the claim; whoever gives the volume back, the claim
    or sync, ends the receipt ``released``.  A claim that holds no row
    yet (a miss before its create) is ``released`` at once.  Returns the
    receipt, or None when the claim finished or ended meanwhile."""
    try:
        return _stop_claim(claim_id)
    except _Changed:
        return None


@db_api.retry
def _stop_claim(claim_id):
    table, rows = models.ClaimReceipt, models.PoolVolume
    with db_api.writer() as session:
        now = clock.now(session)
        # The receipt first: a miss holds its new row only while its
        # receipt is ``claiming``, so none appears once this committed.
        stopped = session.execute(
            sa.update(table)
            .where(table.claim_id == claim_id,
                   table.state == models.R_CLAIMING)
            .values(state=models.R_RELEASING, deadline=now,
                    updated_at=now)).rowcount
        if not stopped:
            raise _Changed()
        held = session.execute(
            sa.update(rows)
            .where(rows.claim_id == claim_id,
                   rows.status.in_((models.CLAIMING, models.UNCERTAIN)))
            .values(claim_deadline=now)).rowcount
        if not held:
            session.execute(sa.update(table)
                            .where(table.claim_id == claim_id)
                            .values(state=models.R_RELEASED))
        receipt = session.execute(
            sa.select(table).where(table.claim_id == claim_id)).scalar_one()
        session.expunge(receipt)
    return receipt


@db_api.retry
def begin_lease_return(claim_id, host, incarnation, hold):
    """Hold a volume whose lease ran out, to return it to its pool."""
    table = models.ClaimReceipt
    return _begin(table.claim_id == claim_id, (models.R_LEASED,),
                  models.R_RETURNING, host, incarnation, hold,
                  expired_only=True)


def _begin(which, from_states, to_state, host, incarnation, hold,
           expired_only=False):
    table = models.ClaimReceipt
    with db_api.writer() as session:
        now = clock.now(session)
        query = sa.select(table).where(which)
        if session.bind.dialect.name in db_api.SKIP_LOCKED_DIALECTS:
            query = query.with_for_update()
        receipt = session.execute(query).scalar()
        if receipt is None:
            return None, None
        # A claim into a project answered in time is that project's; one
        # answered past its deadline reached no caller (see
        # ``volume_pool.project_returns``).
        ready = receipt.state in from_states and (
            not receipt.target_project or receipt.deadline is not None)
        if expired_only:
            ready = ready and (receipt.lease_expires_at is not None and
                               receipt.lease_expires_at < now)
        if not ready:
            session.expunge(receipt)
            return receipt, None
        receipt.state = to_state
        receipt.updated_at = now
        row = models.PoolVolume(
            request_id=receipt.request_id or uuidutils.generate_uuid(),
            volume_id=receipt.volume_id, pool=receipt.pool,
            cluster=receipt.cluster, snapshot_id=receipt.snapshot_id,
            size=receipt.size,
            name=receipt.volume_name or receipt.volume_id, host=host,
            status=models.CLAIMING, claim_id=receipt.claim_id,
            claimed_at=now, incarnation=incarnation,
            claim_deadline=clock.later(now, hold))
        session.add(row)
        session.flush()
        session.expunge_all()
    return receipt, row


@db_api.retry
def expired_leases(cluster, limit=500):
    """Receipts still leased whose lease has run out, oldest first."""
    table = models.ClaimReceipt
    with db_api.reader() as session:
        now = clock.now(session)
        return list(session.execute(
            sa.select(table).where(
                table.cluster == db_api.cluster_key(cluster),
                table.state == models.R_LEASED,
                table.lease_expires_at < now)
            .order_by(table.lease_expires_at).limit(limit)).scalars())


@db_api.retry
def holding(volume_ids, states=None):
    """``{volume_id: receipt}`` for the volumes a receipt still holds.

    By default every receipt but those that gave their volume back holds
    it, states of a newer release included (a rolling upgrade).
    """
    volume_ids = list(volume_ids)
    if not volume_ids:
        return {}
    table = models.ClaimReceipt
    state = (table.state.not_in(models.GIVEN_BACK) if states is None
             else table.state.in_(states))
    with db_api.reader() as session:
        return {r.volume_id: r for r in session.execute(
            sa.select(table).where(table.volume_id.in_(volume_ids),
                                   state)).scalars()}


@db_api.retry
def lease_pass(cluster, used_since):
    """``(now, receipts)`` for sync's lease pass without a listing.

    The receipts whose volume may carry a lease tag this cluster must act
    on: every one still leased (seen attached, it is latched used), and
    the used ones changed at or after ``used_since`` (their tag is
    dropped; none when it is None).  Claims into a project are left out:
    their volume is the receiving project's and carries no lease tag.
    ``now`` is the database's clock when the statement ran, for the next
    pass's ``used_since`` (which looks back a margin before it); both come
    in one statement, a pass being mostly idle.
    """
    table = models.ClaimReceipt
    acts_on = sa.and_(
        table.cluster == db_api.cluster_key(cluster),
        table.volume_id.is_not(None),
        table.target_project.is_(None),
        sa.or_(table.state == models.R_LEASED,
               sa.false() if used_since is None else
               sa.and_(table.state == models.R_USED,
                       table.updated_at >= used_since)))
    one_row = sa.select(sa.literal(1).label('one')).subquery()
    with db_api.reader() as session:
        rows = session.execute(
            sa.select(clock.utcnow().label('now'), table)
            .select_from(one_row).outerjoin(table, acts_on)
            .order_by(table.id)).all()
    return rows[0].now, [row[1] for row in rows if row[1] is not None]


@db_api.retry
def purge(cluster, ttl):
    """Forget settled receipts older than ``ttl`` seconds, and receipts of
    claims that died before holding a row; returns how many."""
    table, row = models.ClaimReceipt, models.PoolVolume
    with db_api.writer() as session:
        now = clock.now(session)
        settled = session.execute(
            sa.delete(table).where(
                table.cluster == db_api.cluster_key(cluster),
                table.state.in_(models.SETTLED),
                table.updated_at < clock.later(now, -ttl))).rowcount
        held = sa.select(row.claim_id).where(row.claim_id.is_not(None))
        orphaned = session.execute(
            sa.delete(table).where(
                table.cluster == db_api.cluster_key(cluster),
                table.state == models.R_CLAIMING,
                table.deadline < now,
                table.claim_id.not_in(held))
            .execution_options(synchronize_session=False)).rowcount
    return settled + orphaned
