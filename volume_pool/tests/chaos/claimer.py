"""Callers that claim with keys while the faults run, and write down what
each key got.

Each thread claims with a fresh key, retries a claim that failed with the
same key a little later (the client already retries a timed-out attempt
with it), then confirms, releases, attaches or abandons the volume.  Some
claims go into a second project (a Cinder transfer: the volume is the
caller's at once), some carry no key (the client makes one for its own
retries, which the answer or the timeout tells; no lease, and no later
retry: a new claim would be another volume).  Errors are recorded by class
name: oslo.messaging re-raises a remote error it does not know as
``<name>_Remote``.
"""

import calendar
import random
import threading
import time
import uuid

from volume_pool import context as vp_context
from volume_pool import exception
from volume_pool.tests.chaos import check
from volume_pool.tests.chaos import record as rec

# Failures after which the same key is tried again later: the claim may
# still have happened (the answer was lost), or may work on a healed peer.
RETRY_LATER = frozenset((
    'ClaimTimedOut', 'ClaimInProgress', 'MessagingTimeout',
    'MessageDeliveryFailure', 'NoLiveManager', 'ServiceUnavailable',
    'ServiceShuttingDown', 'DatabaseUnavailable', 'CinderException',
    'CinderUnavailable', 'CinderQuotaExceeded', 'VolumeNotFound',
    'VolumeTransferFailed',
))
# Failures of confirm or release worth asking again (both are idempotent).
ASK_AGAIN = frozenset(('MessagingTimeout', 'MessageDeliveryFailure',
                       'ClaimTimedOut', 'ServiceUnavailable',
                       'ServiceShuttingDown', 'DatabaseUnavailable',
                       'CinderException', 'CinderUnavailable',
                       'CinderQuotaExceeded', 'ClaimInProgress'))

# An attach that failed in Cinder (stopped, say): the claim is confirmed.
ATTACH_FAILED = 'AttachFailed'
# Longest wait for a claimed volume to be available before attaching it.
ATTACH_WAIT = 5.0

# A client that gives up on a claim (ClaimTimedOut) releases its key: a
# later retry with that key is told so and takes nothing.
RELEASED_ON_GIVING_UP = 'GaveUp:ClaimReleased'

# What the faults explain; anything else a caller sees is a finding.
EXPECTED_ERRORS = RETRY_LATER | ASK_AGAIN | {'ClaimLeaseExpired',
                                            ATTACH_FAILED,
                                            RELEASED_ON_GIVING_UP}


def epoch(iso_text):
    """Seconds since the epoch of a database-clock ISO time (UTC)."""
    if not iso_text:
        return None
    moment = time.strptime(iso_text.rstrip('Z').split('.')[0],
                           '%Y-%m-%dT%H:%M:%S')
    fraction = iso_text.rstrip('Z').partition('.')[2]
    return calendar.timegm(moment) + float('0.' + (fraction or '0'))


def key_of(exc):
    """The claim key a timeout names, if it names one."""
    return (getattr(exc, 'kwargs', None) or {}).get('claim_key')


def error_name(exc):
    name = type(exc).__name__
    return name[:-len('_Remote')] if name.endswith('_Remote') else name


class Claimer:
    """``callers`` threads claiming from ``pools`` until :meth:`stop`."""

    def __init__(self, api, pools, cluster, seed, *, callers=8, pause=0.5,
                 release_share=0.2, abandon_share=0.1, later_retries=1,
                 retry_delay=(2.0, 5.0), call_timeout=60, hold=1.0,
                 project=None, project_share=0.0, unkeyed_share=0.0,
                 attach_share=0.0, attach=None):
        self.api = api
        self.pools = list(pools)
        self.cluster = cluster
        self.seed = seed
        self.callers = callers
        self.pause = pause
        self.release_share = release_share
        self.abandon_share = abandon_share
        self.later_retries = later_retries
        self.retry_delay = retry_delay
        self.call_timeout = call_timeout
        self.hold = hold
        # The allowed second project, and the share of claims into it.
        self.project = project
        self.project_share = project_share if project else 0.0
        self.unkeyed_share = unkeyed_share
        # ``attach(volume_id)`` attaches in Cinder, as Nova would.
        self.attach = attach
        self.attach_share = attach_share if attach else 0.0
        self.records = []
        # The first message of each error class, for the report.
        self.first_messages = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads = []

    def start(self):
        for number in range(self.callers):
            thread = threading.Thread(target=self._run, args=(number,),
                                      name='claimer-%d' % number,
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout):
        """No new keys; wait up to ``timeout`` s for the keys under way.

        Returns the number of threads still busy after that.
        """
        self._stopping.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return sum(1 for thread in self._threads if thread.is_alive())

    def last_answer_at(self):
        with self._lock:
            return max((r.first_answer_at or 0.0 for r in self.records),
                       default=0.0)

    def _run(self, number):
        rng = random.Random('%s-%d' % (self.seed, number))
        while not self._stopping.is_set():
            self.claim_one(rng, rng.choice(self.pools))
            self._stopping.wait(rng.uniform(0, 2 * self.pause))

    def _plan(self, rng, record):
        """What to do with the volume: a claim without a lease is kept
        or released, one into another project kept (it cannot be
        released), a leased one confirmed, released, attached or
        abandoned."""
        roll = rng.random()
        if record.project is not None:
            return rec.KEEP
        if not record.keyed:
            return rec.RELEASE if roll < self.release_share else rec.KEEP
        shares = ((rec.ABANDON, self.abandon_share),
                  (rec.RELEASE, self.release_share),
                  (rec.ATTACH, self.attach_share))
        for plan, share in shares:
            if roll < share:
                return plan
            roll -= share
        return rec.CONFIRM

    def new_record(self, rng, pool):
        """A key of a kind drawn by the shares: into the second project,
        without a key, or (most) keyed into the pools' own project."""
        project = self.project if rng.random() < self.project_share else None
        keyed = rng.random() >= self.unkeyed_share
        key = str(uuid.uuid4()) if keyed else '%s%s' % (
            check.UNKEYED_PREFIX, uuid.uuid4())
        record = rec.KeyRecord(key=key, pool=pool, plan=rec.CONFIRM,
                               sent_at=time.time(), keyed=keyed,
                               project=project, name='chaos-%s' % key[-8:])
        record.plan = self._plan(rng, record)
        return record

    def claim_one(self, rng, pool):
        """One key, from its claim to its confirm, release or abandon."""
        record = self.new_record(rng, pool)
        with self._lock:
            self.records.append(record)
        try:
            self._drive(rng, record)
        except Exception as exc:  # a bug here must not end the thread
            self._note(record, exc, prefix='claimer: ')
            if record.answers and record.outcome == rec.UNANSWERED:
                record.outcome = rec.UNCERTAIN
        return record

    def _drive(self, rng, record):
        ctxt = vp_context.RequestContext()
        if self._claim(ctxt, rng, record) is None:
            return
        time.sleep(rng.uniform(0, self.hold))
        if record.plan == rec.ATTACH and self._attach(record):
            record.outcome = rec.ATTACHED
        elif record.plan in (rec.CONFIRM, rec.ATTACH):
            self._settle(ctxt, record, self.api.confirm, rec.CONFIRMED)
        elif record.plan == rec.RELEASE:
            record.released_at = time.time()
            self._settle(ctxt, record, self.api.release, rec.RELEASED)
        elif record.plan == rec.KEEP:
            record.outcome = rec.KEPT
        else:
            record.outcome = rec.ABANDONED

    def _attach(self, record):
        """Attach the volume in Cinder; False (and noted) if that failed
        or would come too close to the lease's end: the caller then
        confirms instead."""
        if (record.lease_until is not None and
                record.lease_until - time.time() < 2 * ATTACH_WAIT):
            return False
        try:
            self.attach(record.volume_ids[0], timeout=ATTACH_WAIT)
        except Exception as exc:
            record.errors.append(ATTACH_FAILED)
            with self._lock:
                self.first_messages.setdefault(
                    ATTACH_FAILED, '%s: %s' % (error_name(exc),
                                               str(exc)[:250]))
            return False
        return True

    def _claim(self, ctxt, rng, record):
        retries = self.later_retries if record.keyed else 0
        for attempt in range(1 + retries):
            if attempt:
                time.sleep(rng.uniform(*self.retry_delay))
            record.attempts += 1
            try:
                result = self._send_claim(ctxt, record)
            except Exception as exc:
                if not record.keyed and key_of(exc):
                    record.key = key_of(exc)
                gave_up = (error_name(exc) == 'ClaimReleased' and
                           'ClaimTimedOut' in record.errors)
                name = self._note(record, exc,
                                  prefix='GaveUp:' if gave_up else '')
                if name not in RETRY_LATER:
                    return None
                continue
            return self._answered(record, result)
        return None

    def _send_claim(self, ctxt, record):
        kwargs = {}
        if record.keyed:
            kwargs['claim_key'] = record.key
        if record.project is not None:
            kwargs['project_id'] = record.project
        return self.api.claim(
            ctxt, record.pool, name=record.name, cluster=self.cluster,
            timeout=self.call_timeout, **kwargs)

    def _answered(self, record, result):
        """Write the answer down: when it came, and the lease it gave."""
        if not record.keyed:
            record.key = result.get('claim_key') or record.key
        if result.get('claim_key', record.key) != record.key:
            record.errors.append('AnswerOfAnotherKey')
        if result.get('project_id') != record.project:
            record.errors.append('AnswerOfAnotherProject')
        if record.lease_until is None:
            record.lease_until = epoch(result.get('lease_expires_at'))
        record.answers.append((result['volume_id'], time.time()))
        return result['volume_id']

    def _settle(self, ctxt, record, call, done, attempts=3):
        for _ in range(attempts):
            try:
                call(ctxt, record.key, cluster=self.cluster)
            except Exception as exc:
                name = self._note(record, exc)
                if name == 'ClaimLeaseExpired':
                    record.outcome = rec.ABANDONED
                    return
                if name not in ASK_AGAIN:
                    break
                continue
            record.outcome = done
            return
        record.outcome = rec.UNCERTAIN

    def _note(self, record, exc, prefix=''):
        name = prefix + error_name(exc)
        record.errors.append(name)
        with self._lock:
            self.first_messages.setdefault(
                name, exception.first_line(exc)[:300])
        return name
