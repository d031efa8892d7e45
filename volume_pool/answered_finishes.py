"""The finishes of claims whose answer already went out.

A keyed claim answers as soon as its hand-over has landed in Cinder, in
time: from then on the volume is its caller's whatever happens to the
database, so its finish (the row leaves the pool, the receipt records the
answer) is written after the answer, in the group commit with the claims
that come next.  Nothing waits for it but a confirm or a release of the
same key on this manager.  A finish that fails is written again a few
times; if it never is (the database is away, or this process dies), sync
finds the hand-over on the volume and records the claim as handed out.
"""

import collections
import threading

from oslo_db import exception as db_exc
from oslo_log import log as logging
import tenacity

from volume_pool import group_commit

LOG = logging.getLogger(__name__)

# Seconds the writer thread waits for more finishes before it ends (a
# pool that claims again starts a new one).
IDLE = 1.0
# A batch that failed is written again, waiting this long at first and
# doubling, for at most WRITE_FOR seconds; sync settles what is left.
RETRY_WAIT = 0.05
RETRY_WAIT_MAX = 2.0
WRITE_FOR = 30.0


class AnsweredFinishes:
    """Writes the finishes of one pool's answered claims in the
    background: ``write(finishes) -> answers`` runs them in one batch of
    the pool's group commit."""

    def __init__(self, write, name):
        self._write = write
        self._name = name
        self._lock = threading.Condition()
        self._queued = []
        # Claim key -> how many of its finishes are not written yet.
        self._unwritten = collections.Counter()
        self._writer = None

    def post(self, finish, key, stopped):
        """Write ``finish`` soon; ``key``: (cluster, project, claim key);
        ``stopped()`` runs if the claim no longer holds its receipt."""
        with self._lock:
            self._queued.append((finish, key, stopped))
            self._unwritten[key] += 1
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._run, daemon=True,
                    name='answered-finishes-%s' % self._name)
                self._writer.start()
            self._lock.notify_all()

    def wait(self, timeout, key=None):
        """Wait until the finishes of ``key`` (of every key, if None) are
        written or given up on; False if ``timeout`` ran out first."""
        def written():
            return not (self._unwritten[key] if key is not None
                        else self._unwritten)
        with self._lock:
            return self._lock.wait_for(written, timeout)

    def _run(self):
        while True:
            with self._lock:
                if not self._queued:
                    self._lock.wait(IDLE)
                if not self._queued:
                    self._writer = None
                    return
                batch, self._queued = self._queued, []
            try:
                self._write_batch(batch)
            finally:
                with self._lock:
                    for _finish, key, _stopped in batch:
                        self._unwritten[key] -= 1
                        if not self._unwritten[key]:
                            del self._unwritten[key]
                    self._lock.notify_all()

    def _write_batch(self, batch):
        finishes = [finish for finish, _key, _stopped in batch]
        try:
            answers = _written(self._write, finishes)
        except (db_exc.DBError, group_commit.BatchTimeout) as exc:
            LOG.warning('Could not record %(n)d answered claim(s) of pool '
                        '%(pool)s (%(err)s); sync records them as handed '
                        'out from their volumes.',
                        {'n': len(finishes), 'pool': self._name,
                         'err': exc})
            return
        for (finish, _key, stopped), answer in zip(batch, answers,
                                                   strict=True):
            if answer is not None:
                continue
            # Its caller released the key before the answer reached it
            # (the claim then still holds its row and gives the volume
            # back), or sync took the claim over (and settles it).
            LOG.info('Claim %(claim)s answered, but its receipt had '
                     'changed: it was released or taken over.',
                     {'claim': finish.claim_id})
            try:
                stopped()
            except Exception:
                LOG.exception('Giving back the volume of claim %s failed; '
                              'sync settles it.', finish.claim_id)


@tenacity.retry(
    retry=tenacity.retry_if_exception_type(
        (db_exc.DBError, group_commit.BatchTimeout)),
    wait=tenacity.wait_exponential(multiplier=RETRY_WAIT, max=RETRY_WAIT_MAX),
    stop=tenacity.stop_after_delay(WRITE_FOR), reraise=True)
def _written(write, finishes):
    return write(finishes)
