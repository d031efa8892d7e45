"""The claim: hand one ready volume to one caller, once, or create one.

Three steps, each undone if a later one fails:

1. hold a ready row in the database (``available`` -> ``claiming``) under
   a claim id, this manager process's incarnation and a deadline on the
   database's clock, and write the claim's receipt in the same
   transaction;
2. in Cinder, rename the volume and replace the pool tags with the lease
   tag (or with nothing) in one request;
3. delete the row and record the answer in the receipt, only if the claim
   still holds the row and its deadline has not passed.

Only then is the answer sent.  A claim that cannot finish (its deadline
passed, or sync took the row over because this process was thought gone)
gives the volume back and answers with an error: a volume is never handed
to a caller and returned to the pool both.  A crash at any point leaves a
held row that sync settles from Cinder's truth once this incarnation is
gone or the deadline has passed.  A keyed claim's retry reads the receipt
and gets the same answer, on any manager.

On a miss, the row of the volume to create is held first and the volume
is created with the pool's tags, in the pool's project, so a lost answer
leaves a tagged volume that sync gives to the pool, never one nobody
knows.  A manager runs at
most ``[pool:NAME] max_miss_creates`` such creates of a pool at once; a
miss past them gets PoolEmpty, so a burst cannot use up the Cinder quota.

A claim into another project (``project_id``) hands the volume over by
a Cinder volume transfer after step 2, and records it ``used`` as soon as
Cinder accepted it (:mod:`volume_pool.project_claims`); if the transfer
fails, it is withdrawn and the volume goes back to the pool.  A Cinder
request that got no answer may still land: its volume waits out the late
window before it goes back (:mod:`volume_pool.late_requests`).  Claims
that arrive together share the transactions of steps 1 and 3 (group
commit).
"""

import threading
import time

from oslo_db import exception as db_exc
from oslo_log import log as logging
from oslo_utils import uuidutils

from volume_pool import answered_finishes
from volume_pool import cinder as vp_cinder
from volume_pool import claim_request
from volume_pool import exception
from volume_pool import group_commit
from volume_pool import handback
from volume_pool import late_requests
from volume_pool import metrics
from volume_pool import miss_creates
from volume_pool import notifications
from volume_pool import project_claims
from volume_pool.db import claims as db_claims
from volume_pool.db import clock
from volume_pool.db import holds as db_holds
from volume_pool.db import models

LOG = logging.getLogger(__name__)

# Volumes that vanished or were taken behind the pool's back are skipped;
# this bounds how many such volumes one claim walks past.
_MAX_STALE_SKIPS = 5
# Claim steps that arrive together share a database transaction (see
# volume_pool.group_commit); at most this many per transaction.
_MAX_STEPS_PER_TRANSACTION = 32
_TAKE, _FINISH, _FINISHES = 'take', 'finish', 'finishes'
# Seconds a claim holds its row again to undo itself after its deadline.
UNDO_HOLD = 60.0


class _Replayed(Exception):
    """A retry answered from its key's receipt: nothing else to do."""

    def __init__(self, answer):
        super().__init__()
        self.answer = answer


class Claimer:
    """Runs claims for the pools of one manager process."""

    def __init__(self, cinder, stats, host=None, incarnation=None,
                 claim_lease=0, batch_wait=30.0, late_window=None,
                 poll_interval=0.5):
        """``late_window``: the :class:`late_requests.LateWindow` that
        sync shares; ``poll_interval``: seconds between the reads of a
        volume a miss into a project waits for."""
        self._cinder = cinder
        self._late = late_window or late_requests.LateWindow(0.0, 0.0)
        self._handover = project_claims.ProjectHandover(
            cinder, self._late, self._undo, poll_interval)
        self._stats = stats
        self._host = host
        self.incarnation = incarnation
        self.claim_lease = claim_lease
        self._batch_wait = batch_wait
        self._transactions = {}
        self._transactions_lock = threading.Lock()
        self._miss_creates = miss_creates.MissCreateSlots()

    def claim(self, request, context=None):
        """Serve ``request``; returns the answer dict, or raises."""
        started = time.monotonic()
        spec = request.spec
        try:
            receiver = self._receiver(request.project_id)
            result, row = self._from_pool(request, receiver)
            if result is None and row is None:
                result = self._miss(request, receiver, started, context)
        except _Replayed as replayed:
            metrics.claim_replayed(spec.cluster, spec.name)
            return replayed.answer
        except Exception:
            # Counted and logged once by the manager, refused or error.
            self._stats.record(spec.name, 'error',
                               time.monotonic() - started)
            raise
        duration = time.monotonic() - started
        self._stats.record(spec.name, result['source'], duration)
        metrics.claim_answered(spec.cluster, spec.name, result['source'],
                               duration)
        LOG.info('Claimed volume %(volume)s from pool %(pool)s '
                 '(source=%(source)s, claim key %(key)s, claim %(claim)s, '
                 '%(ms).1f ms)',
                 {'volume': result['volume_id'], 'pool': spec.name,
                  'source': result['source'],
                  'key': request.claim_key or '-',
                  'claim': request.claim_id, 'ms': duration * 1000.0})
        if row is not None:
            notifications.claim_hit(self._host, spec, result, duration,
                                    ready_at=row.ready_at, context=context)
        else:
            notifications.claim_miss(self._host, spec, duration,
                                     request.create_on_miss, result=result,
                                     context=context)
        return result

    def _receiver(self, project_id):
        """The Cinder handle of the receiving project, checked up front so
        an unusable ``[cinder]`` auth fails before any volume is touched."""
        if project_id is None:
            return None
        try:
            return self._cinder.as_project(project_id)
        except exception.ConfigError as exc:
            raise exception.VolumeTransferFailed(
                volume_id='(none)', project_id=project_id, reason=str(exc))

    def _steps(self, spec):
        """Steps 1 and 3 for the claims of ``spec``'s pool, batched."""
        key = (spec.name, spec.cluster)
        with self._transactions_lock:
            steps = self._transactions.get(key)
            if steps is None or steps.snapshot_id != spec.snapshot_id:
                # New, or the snapshot rotated: claims still running on
                # the old one keep their own reference.
                steps = self._transactions[key] = _PoolSteps(
                    spec, self.incarnation, self._batch_wait)
            return steps

    # -- from the pool -------------------------------------------------

    def _from_pool(self, request, receiver):
        """Returns (answer, row), or (None, None) when the pool is empty."""
        steps = self._steps(request.spec)
        for _skip in range(_MAX_STALE_SKIPS):
            asked = time.monotonic()
            taken = steps.take(request.take)
            if isinstance(taken, db_claims.Existing):
                raise _Replayed(claim_request.replay(
                    taken.receipt, request.claim_key, request.fingerprint))
            if taken is None:
                return None, None
            volume = self._hand_over(request, taken)
            if volume is None:
                request.renew()
                continue
            result = _answer_of(request, claim_request.volume_view(
                volume, request.spec, 'pool'))
            if receiver is not None:
                return self._handover.hand_over(taken, request, receiver,
                                                result), taken
            if request.claim_key is not None and request.take.left > 0:
                return self._answer_first(steps, request, taken, result,
                                          asked), taken
            return self._finish(steps, request, taken, result), taken
        # The table lags Cinder: serve the caller as on a miss, with the
        # receipt its last claim id has not got yet.
        db_claims.write_receipt(request.spec.name, request.spec.cluster,
                                request.spec.snapshot_id, request.take)
        return None, None

    def _hand_over(self, request, row):
        """Step 2; returns the volume, or None to try the next one."""
        metadata = (vp_cinder.lease_tags(request.spec.cluster)
                    if request.leased else {})
        try:
            volume = self._cinder.update_volume(
                row.volume_id, name=request.name, metadata=metadata)
        except exception.VolumeNotFound:
            LOG.info('Pool volume %s vanished from Cinder; forgetting it.',
                     row.volume_id)
            db_holds.let_go(row.id, request.claim_id)
            return None
        except exception.CinderRequestRejected:
            # Cinder understood and refused: nothing changed there.
            db_holds.give_back(row.id, request.claim_id)
            raise
        except exception.CinderException as exc:
            # The caller gets the error; the log says which volume and why.
            LOG.warning('Claim %(claim)s of volume %(id)s failed at Cinder, '
                        'undoing it: %(err)s',
                        {'claim': request.claim_id, 'id': row.volume_id,
                         'err': exception.first_line(exc)})
            self._undo(row, request.claim_id, failure=exc)
            raise
        if volume.status != 'available' or volume.attached:
            # Taken behind the pool's back: it is somebody else's now.
            LOG.warning('Pool volume %(id)s was %(status)s in Cinder; '
                        'dropping it from the pool.',
                        {'id': volume.id, 'status': volume.status})
            db_holds.let_go(row.id, request.claim_id)
            return None
        return volume

    def _answer_first(self, steps, request, row, result, asked):
        """Step 3 after the answer, for a keyed claim whose hand-over
        landed in time: the volume is its caller's from now on.

        The lease runs from the answer: the database's time of the take
        plus the time since it was asked for, at least as late as the
        database's time now.  A crash before the finish is written loses
        nothing: a retry with the key meanwhile gets ClaimInProgress, and
        sync records the claim from its volume (see
        :func:`volume_pool.handback.settle`).
        """
        leased = request.leased
        lease_at = (clock.later(row.claimed_at, time.monotonic() - asked +
                                self.claim_lease)
                    if leased and self.claim_lease else None)
        finish = db_claims.Finish(
            row_id=row.id, claim_id=request.claim_id,
            state=models.R_LEASED if leased else models.R_USED,
            result=result, answered=True, lease_at=lease_at)
        steps.answered.post(
            finish, _key_of(request.spec.cluster, request.take.project_id,
                            request.claim_key),
            lambda: self._undo(row, request.claim_id))
        return dict(result, lease_expires_at=clock.iso(lease_at))

    def wait_answered(self, timeout, cluster=None, project_id=None,
                      claim_key=None):
        """Wait until the answered claims of this process (of one key,
        if given) are recorded; False if ``timeout`` ran out first."""
        key = (None if claim_key is None
               else _key_of(cluster, project_id, claim_key))
        deadline = time.monotonic() + timeout
        with self._transactions_lock:
            steps = list(self._transactions.values())
        return all(s.answered.wait(max(0.0, deadline - time.monotonic()),
                                   key) for s in steps)

    def _finish(self, steps, request, row, result, volume_id=None):
        """Step 3; the answer, or the claim is undone and an error raised."""
        leased = request.leased
        try:
            answer = steps.finish(db_claims.Finish(
                row_id=row.id, claim_id=request.claim_id,
                state=models.R_LEASED if leased else models.R_USED,
                result=result, lease=self.claim_lease if leased else 0.0,
                volume_id=volume_id))
        except (db_exc.DBError, group_commit.BatchTimeout):
            # The finish may have committed all the same: its receipt
            # tells; if it did not, the row stays held and sync settles
            # it after the deadline.
            answer = self._committed_answer(request.claim_id)
            if answer is None:
                raise
        if answer is None:
            answer = self._committed_answer(request.claim_id)
        if answer is None:
            LOG.warning('Claim %(claim)s of volume %(volume)s could not '
                        'finish before its deadline; giving it back.',
                        {'claim': request.claim_id,
                         'volume': row.volume_id or volume_id})
            self._undo(row, request.claim_id, volume_id=volume_id)
            raise exception.ClaimTimedOut(claim_key=request.claim_key)
        if request.claim_key is None:
            answer.pop('lease_expires_at', None)
        return answer

    # The answer of a finish that did commit although its reply was lost
    # (the transaction was retried and found its row gone).
    _committed_answer = staticmethod(project_claims.committed_answer)

    def _undo(self, row, claim_id, volume_id=None, failure=None):
        """Give the volume back, if this claim still holds its row.

        Cinder may have applied the hand-over: the name and tags go back
        first, then the row.  After a ``failure`` Cinder did not answer,
        or if Cinder cannot be reached now, the row is left ``uncertain``:
        sync decides from Cinder's truth once the late window has passed.
        """
        volume_id = volume_id or row.volume_id
        if exception.may_land_late(failure):
            self._late.wait_out(row.id, claim_id, volume_id,
                                why=exception.first_line(failure))
            return
        if not db_holds.extend_hold(row.id, claim_id, self.incarnation,
                                     UNDO_HOLD):
            LOG.info('Claim %s no longer holds its row; sync settles it.',
                     claim_id)
            return
        try:
            if volume_id is None:
                # The create's answer was lost: the volume, if any, is
                # tagged and sync finds it by its request id.
                raise exception.CinderUnavailable(reason='volume unknown')
            handback.settle(self._cinder, row, claim_id, volume_id=volume_id)
        except exception.CinderException as exc:
            LOG.warning('Could not give volume %(id)s back after a failed '
                        'claim (%(err)s); sync settles it.',
                        {'id': volume_id, 'err': exc})
            self._late.wait_out(row.id, claim_id, volume_id)

    # -- a miss ----------------------------------------------------------

    def _miss(self, request, receiver, started, context):
        """An empty pool: create for the caller, if the claim allows it and
        the pool has a free miss-create slot in this manager."""
        spec = request.spec
        if not request.create_on_miss:
            self._refuse_miss(request, started, context,
                              exception.PoolEmpty(pool=spec.name))
        if not self._miss_creates.take(spec):
            LOG.info('Claim %(claim)s on empty pool %(pool)s creates '
                     'nothing: max_miss_creates (%(cap)d) reached.',
                     {'claim': request.claim_id, 'pool': spec.name,
                      'cap': spec.max_miss_creates})
            self._refuse_miss(request, started, context,
                              exception.miss_create_cap_reached(
                                  spec.name, spec.max_miss_creates))
        try:
            return self._create(request, receiver)
        finally:
            self._miss_creates.give_back(spec)

    def _refuse_miss(self, request, started, context, error):
        """End a miss without a volume: its key may be used again."""
        db_claims.drop_receipt(request.claim_id)
        notifications.claim_miss(
            self._host, request.spec, time.monotonic() - started,
            request.create_on_miss, context=context)
        raise error

    def _create(self, request, receiver=None):
        """A miss: create a volume for the caller from the pool's snapshot.

        The row is held before the create and the volume, made in the
        pool's project, carries the pool's tags until the claim finishes,
        so whatever fails, the volume ends with the caller or in the pool.
        Into another project, it is handed over by a transfer, as a ready
        volume is.
        """
        spec = request.spec
        request_id = uuidutils.generate_uuid()
        row = db_claims.hold_new_volume(
            request.claim_id, request_id=request_id, pool=spec.name,
            cluster=spec.cluster, snapshot_id=spec.snapshot_id,
            size=spec.size, name=spec.volume_name_prefix + request_id[:8],
            host=self._host, incarnation=self.incarnation)
        if row is None:
            raise exception.ClaimTimedOut(claim_key=request.claim_key)
        try:
            volume = self._cinder.create_volume(
                snapshot_id=spec.snapshot_id,
                name=request.name or '%sclaimed-%s' % (
                    spec.volume_name_prefix, request_id[:8]),
                metadata=vp_cinder.pool_tags(spec.name, spec.cluster,
                                             request_id),
                size=spec.size, volume_type=spec.volume_type,
                availability_zone=spec.availability_zone)
        except exception.CinderException as exc:
            if not isinstance(exc, exception.CinderUnavailable):
                # Cinder refused: surely nothing was created.
                db_holds.let_go(row.id, request.claim_id)
            else:
                self._late.wait_out(row.id, request.claim_id,
                                    why=exception.first_line(exc))
            raise
        if not db_claims.bind_volume(row.id, request.claim_id, volume.id):
            # Sync settled the row meanwhile: the volume keeps the pool's
            # tags, and sync adopts it like any tagged volume.
            raise exception.ClaimTimedOut(claim_key=request.claim_key)
        if receiver is not None:
            return self._created_into_project(request, row, volume,
                                              receiver)
        metadata = (vp_cinder.lease_tags(spec.cluster)
                    if request.leased else {})
        try:
            volume = self._cinder.update_volume(volume.id, metadata=metadata)
        except exception.CinderException as exc:
            self._undo(row, request.claim_id, volume_id=volume.id,
                       failure=exc)
            raise
        return self._finish(self._steps(spec), request, row, _answer_of(
            request, claim_request.volume_view(volume, spec, 'created')),
            volume_id=volume.id)

    def _created_into_project(self, request, row, volume, receiver):
        """A miss into a project: once made, the new volume drops the pool
        tags and is handed over like a ready one."""
        try:
            volume = self._handover.wait_available(row, request, volume)
            volume = self._cinder.update_volume(volume.id, metadata={})
        except (exception.CinderException, exception.ClaimTimedOut) as exc:
            self._undo(row, request.claim_id, volume_id=volume.id,
                       failure=exc)
            raise
        return self._handover.hand_over(row, request, receiver, _answer_of(
            request, claim_request.volume_view(volume, request.spec,
                                               'created')))


def _key_of(cluster, project_id, claim_key):
    return (cluster or None, project_id or '', claim_key)


def _answer_of(request, result):
    """The answer's fields that come from the request: its key and the
    receiving project."""
    if request.claim_key is not None:
        result = dict(result, claim_key=request.claim_key)
    if request.project_id is not None:
        result = dict(result, project_id=request.project_id)
    return result


class _PoolSteps:
    """Steps 1 and 3 of the concurrent claims of one pool: each transaction
    takes rows for the claims waiting to start and finishes the claims
    waiting to finish."""

    def __init__(self, spec, incarnation, batch_wait):
        self._pool = spec.name
        self._cluster = spec.cluster
        self._incarnation = incarnation
        self.snapshot_id = spec.snapshot_id
        self._committer = group_commit.GroupCommitter(
            self._run, _MAX_STEPS_PER_TRANSACTION, wait_timeout=batch_wait)
        self.answered = answered_finishes.AnsweredFinishes(
            lambda finishes: self._committer.submit((_FINISHES, finishes)),
            spec.name)

    def take(self, take):
        """The row now held for ``take``, None if empty, or Existing."""
        return self._committer.submit((_TAKE, take))

    def finish(self, finish):
        """The answer, or None if the claim must be undone."""
        return self._committer.submit((_FINISH, finish))

    def _run(self, steps):
        takes = [arg for kind, arg in steps if kind == _TAKE]
        # The finishes of answered claims ride along with the takes.
        riding = self.answered.take_queued() if takes else []
        finishes = [finish for kind, arg in steps if kind != _TAKE
                    for finish in (arg if kind == _FINISHES else (arg,))]
        try:
            taken, finished = db_claims.commit_steps(
                self._pool, self._cluster, self.snapshot_id,
                self._incarnation, takes,
                finishes + [item.finish for item in riding])
        except db_claims.TakesLost as lost:
            # The finishes committed: only the takes' callers get the
            # error (and a keyed retry, since no receipt was written).
            taken = [group_commit.Failed(lost)] * len(takes)
            finished = lost.finished
        except BaseException:
            self.answered.not_written(riding)
            raise
        if riding:
            self.answered.written(riding, finished[len(finishes):])
        taken, finished = iter(taken), iter(finished)
        return [next(taken) if kind == _TAKE
                else [next(finished) for _finish in arg]
                if kind == _FINISHES else next(finished)
                for kind, arg in steps]
