"""Callers that claim with keys while the faults run, and write down what
each key got.

Each thread claims with a fresh key, retries a claim that failed with the
same key a little later (the client already retries a timed-out attempt
with it), then confirms, releases or abandons the volume.  Errors are
recorded by class name: oslo.messaging re-raises a remote error it does
not know as ``<name>_Remote``.
"""

import random
import threading
import time
import uuid

from volume_pool import context as vp_context
from volume_pool import exception
from volume_pool.tests.chaos import record as rec

# Failures after which the same key is tried again later: the claim may
# still have happened (the answer was lost), or may work on a healed peer.
RETRY_LATER = frozenset((
    'ClaimTimedOut', 'ClaimInProgress', 'MessagingTimeout',
    'MessageDeliveryFailure', 'NoLiveManager', 'ServiceUnavailable',
    'ServiceShuttingDown', 'DatabaseUnavailable', 'CinderException',
    'CinderUnavailable', 'CinderQuotaExceeded', 'VolumeNotFound',
))
# Failures of confirm or release worth asking again (both are idempotent).
ASK_AGAIN = frozenset(('MessagingTimeout', 'MessageDeliveryFailure',
                       'ClaimTimedOut', 'ServiceUnavailable',
                       'ServiceShuttingDown', 'DatabaseUnavailable',
                       'CinderException', 'CinderUnavailable',
                       'CinderQuotaExceeded', 'ClaimInProgress'))

# What the faults explain; anything else a caller sees is a finding.
EXPECTED_ERRORS = RETRY_LATER | ASK_AGAIN | {'ClaimLeaseExpired'}


def error_name(exc):
    name = type(exc).__name__
    return name[:-len('_Remote')] if name.endswith('_Remote') else name


class Claimer:
    """``callers`` threads claiming from ``pools`` until :meth:`stop`."""

    def __init__(self, api, pools, cluster, seed, *, callers=8, pause=0.5,
                 release_share=0.2, abandon_share=0.1, later_retries=1,
                 retry_delay=(2.0, 5.0), call_timeout=60, hold=1.0):
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

    def _plan(self, rng):
        roll = rng.random()
        if roll < self.abandon_share:
            return rec.ABANDON
        if roll < self.abandon_share + self.release_share:
            return rec.RELEASE
        return rec.CONFIRM

    def claim_one(self, rng, pool):
        """One key, from its claim to its confirm, release or abandon."""
        key = str(uuid.uuid4())
        record = rec.KeyRecord(key=key, pool=pool, plan=self._plan(rng),
                               sent_at=time.time())
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
        if record.plan == rec.CONFIRM:
            self._settle(ctxt, record, self.api.confirm, rec.CONFIRMED)
        elif record.plan == rec.RELEASE:
            record.released_at = time.time()
            self._settle(ctxt, record, self.api.release, rec.RELEASED)
        else:
            record.outcome = rec.ABANDONED

    def _claim(self, ctxt, rng, record):
        for attempt in range(1 + self.later_retries):
            if attempt:
                time.sleep(rng.uniform(*self.retry_delay))
            record.attempts += 1
            try:
                result = self.api.claim(
                    ctxt, record.pool, name='chaos-%s' % record.key[:8],
                    cluster=self.cluster, claim_key=record.key,
                    timeout=self.call_timeout)
            except Exception as exc:
                name = self._note(record, exc)
                if name not in RETRY_LATER:
                    return None
                continue
            if result.get('claim_key', record.key) != record.key:
                record.errors.append('AnswerOfAnotherKey')
            record.answers.append((result['volume_id'], time.time()))
            return result['volume_id']
        return None

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
