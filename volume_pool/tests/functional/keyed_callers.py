"""Callers that claim with keys of their own while a test breaks
something: the claim outcomes a fault test judges."""

import collections
import threading
import time
import uuid

from volume_pool import exception

# A final no: the key is spent, the caller moves on to a new one.
FINAL = (exception.ClaimTimedOut, exception.ClaimReleased)


class KeyedCallers:
    """``count`` threads claiming from ``pool`` for ``seconds``, each with
    a new key per claim.  A typed error is retried with the same key until
    an answer or a final no.  ``outcomes``: (key, volume id or None, the
    errors it saw, seconds from its first try)."""

    def __init__(self, api, ctxt, pool, seconds, count, timeout=30):
        self.outcomes = []
        self._lock = threading.Lock()
        until = time.monotonic() + seconds
        self._threads = [threading.Thread(
            target=self._claim, args=(api, ctxt, pool, until, timeout),
            daemon=True) for _ in range(count)]
        for thread in self._threads:
            thread.start()

    def _claim(self, api, ctxt, pool, until, timeout):
        while time.monotonic() < until:
            key, tries, began = str(uuid.uuid4()), [], time.monotonic()
            volume = None
            while True:
                try:
                    volume = api.claim(ctxt, pool, name='fn-%s' % key[:8],
                                       claim_key=key,
                                       timeout=timeout)['volume_id']
                    break
                except FINAL as exc:
                    tries.append(type(exc).__name__)
                    break
                except exception.VolumePoolException as exc:
                    tries.append(type(exc).__name__)
                    time.sleep(0.5)
            with self._lock:
                self.outcomes.append((key, volume, tries,
                                      time.monotonic() - began))

    def join(self, timeout=120):
        for thread in self._threads:
            thread.join(timeout)
        return self

    @property
    def answers(self):
        """Claim key -> the volume it got."""
        return {key: volume for key, volume, _t, _s in self.outcomes
                if volume is not None}

    @property
    def gave_up(self):
        return [o for o in self.outcomes if o[1] is None]

    @property
    def slowest(self):
        return max(seconds for _k, _v, _t, seconds in self.outcomes)

    def errors(self):
        """Error type -> how many tries saw it."""
        return collections.Counter(
            name for _k, _v, tries, _s in self.outcomes for name in tries)
