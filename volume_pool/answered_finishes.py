"""The finishes of claims whose answer already went out.

A keyed claim answers as soon as its hand-over has landed in Cinder, in
time: from then on the volume is its caller's whatever happens to the
database, so its finish (the row leaves the pool, the receipt records the
answer) is written after the answer.  It rides in the transaction of the
pool's next claims (their takes, in the group commit); a writer thread
writes it alone only if no claim comes within ``RIDE_WAIT``.  Nothing
waits for it but a confirm or a release of the same key on this manager.
A write that fails is tried again for a while; if it never lands (the
database is away, or this process dies), sync finds the hand-over on the
volume and records the claim as handed out.
"""

import collections
import threading
import time

from oslo_db import exception as db_exc
from oslo_log import log as logging
import tenacity

from volume_pool import group_commit

LOG = logging.getLogger(__name__)

# Seconds a finish waits for the next claim's transaction to carry it
# before the writer thread writes it alone.
RIDE_WAIT = 0.02
# Seconds the writer thread waits for more finishes before it ends (a
# pool that claims again starts a new one).
IDLE = 1.0
# A batch that failed is written again, waiting this long at first and
# doubling, for at most WRITE_FOR seconds; sync settles what is left.
RETRY_WAIT = 0.05
RETRY_WAIT_MAX = 2.0
WRITE_FOR = 30.0

Posted = collections.namedtuple('Posted', 'finish key stopped')


class AnsweredFinishes:
    """The finishes of one pool's answered claims, not yet written.

    ``write(finishes) -> answers`` runs finishes in one batch of the
    pool's group commit; the pool's own batches take the queued ones
    with :meth:`take_queued` and hand back the outcome with
    :meth:`written` (or :meth:`not_written`).
    """

    def __init__(self, write, name):
        self._write = write
        self._name = name
        self._lock = threading.Condition()
        self._queued = []
        self._oldest = None  # monotonic time the oldest queued was posted
        # Claim key -> how many of its finishes are not written yet.
        self._unwritten = collections.Counter()
        self._writer = None
        self._waiters = 0

    def post(self, finish, key, stopped):
        """Write ``finish`` soon; ``key``: (cluster, project, claim key);
        ``stopped()`` runs if the claim no longer holds its receipt."""
        with self._lock:
            if not self._queued:
                self._oldest = time.monotonic()
            self._queued.append(Posted(finish, key, stopped))
            self._unwritten[key] += 1
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._run, daemon=True,
                    name='answered-finishes-%s' % self._name)
                self._writer.start()
            self._lock.notify_all()

    def take_queued(self):
        """The queued finishes, for a batch of the pool to carry."""
        with self._lock:
            queued, self._queued = self._queued, []
            return queued

    def not_written(self, posted):
        """A batch that carried ``posted`` failed: queue them again."""
        with self._lock:
            if not self._queued:
                self._oldest = time.monotonic()
            self._queued[:0] = posted
            self._lock.notify_all()

    def written(self, posted, answers, inline=False):
        """A batch carried ``posted``: ``answers``, one per finish (None
        for a claim that no longer held its receipt, which then gives its
        volume back: on a thread of its own unless ``inline``, not on the
        thread of a batch's leader)."""
        stopped = [item for item, answer in zip(posted, answers,
                                                strict=True)
                   if answer is None]
        self._done([item for item in posted if item not in stopped])
        if not stopped:
            return
        if inline:
            self._give_back(stopped)
        else:
            threading.Thread(target=self._give_back, args=(stopped,),
                             daemon=True).start()

    def _give_back(self, stopped):
        try:
            _give_back(stopped)
        finally:
            self._done(stopped)

    def wait(self, timeout, key=None):
        """Wait until the finishes of ``key`` (of every key, if None) are
        written or given up on; False if ``timeout`` ran out first."""
        def written():
            return not (self._unwritten[key] if key is not None
                        else self._unwritten)
        with self._lock:
            # Somebody waits: the writer writes now, without waiting for
            # a claim to carry them.
            self._waiters += 1
            self._lock.notify_all()
            try:
                return self._lock.wait_for(written, timeout)
            finally:
                self._waiters -= 1

    def _done(self, posted):
        with self._lock:
            for item in posted:
                self._unwritten[item.key] -= 1
                if not self._unwritten[item.key]:
                    del self._unwritten[item.key]
            self._lock.notify_all()

    def _run(self):
        while True:
            with self._lock:
                if not self._queued:
                    self._lock.wait(IDLE)
                    if not self._queued:
                        self._writer = None
                        return
                # Give the pool's next claims the time to carry them.
                left = self._oldest + RIDE_WAIT - time.monotonic()
                while self._queued and left > 0 and not self._waiters:
                    self._lock.wait(left)
                    left = self._oldest + RIDE_WAIT - time.monotonic()
                batch, self._queued = self._queued, []
            if batch:
                self._write_alone(batch)

    def _write_alone(self, batch):
        try:
            answers = _written(self._write, [item.finish for item in batch])
        except (db_exc.DBError, group_commit.BatchTimeout) as exc:
            LOG.warning('Could not record %(n)d answered claim(s) of pool '
                        '%(pool)s (%(err)s); sync records them as handed '
                        'out from their volumes.',
                        {'n': len(batch), 'pool': self._name, 'err': exc})
            self._done(batch)
            return
        self.written(batch, answers, inline=True)


def _give_back(stopped):
    for item in stopped:
        # Its caller released the key before the answer reached it (the
        # claim then still holds its row and gives the volume back), or
        # sync took the claim over (and settles it).
        LOG.info('Claim %(claim)s answered, but its receipt had changed: '
                 'it was released or taken over.',
                 {'claim': item.finish.claim_id})
        try:
            item.stopped()
        except Exception:
            LOG.exception('Giving back the volume of claim %s failed; sync '
                          'settles it.', item.finish.claim_id)


@tenacity.retry(
    retry=tenacity.retry_if_exception_type(
        (db_exc.DBError, group_commit.BatchTimeout)),
    wait=tenacity.wait_exponential(multiplier=RETRY_WAIT, max=RETRY_WAIT_MAX),
    stop=tenacity.stop_after_delay(WRITE_FOR), reraise=True)
def _written(write, finishes):
    return write(finishes)
