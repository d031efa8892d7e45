"""Wait a bounded time for the client's reply queue.

oslo.messaging's rabbit driver (18.x) opens the connection that receives
the answers to a transport's calls on its first call, and retries that
connection forever whatever the call's ``retry``: with the broker away,
the first call of a process never returns.  The setup is made here on a
thread of its own instead, and the caller waits for it no longer than its
own time.  Nothing is sent on that thread, so a caller that gave up
leaves no call behind: when the broker comes back the queue is made and
the next call finds it.  Drivers without a reply queue (``fake://``) need
no wait.  The transport's ``cleanup()`` waits for that setup too, hence
:func:`close`.
"""

import threading
import weakref

_LOCK = threading.Lock()
# transport -> its _Setup; a transport dropped takes its entry with it.
_SETUPS = weakref.WeakKeyDictionary()


class _Setup:
    """One attempt to make a transport's reply queue, on a daemon thread
    (oslo.messaging offers no way to stop it)."""

    def __init__(self, make):
        self.done = threading.Event()
        self.error = None
        threading.Thread(target=self._run, args=(make,),
                         name='rpc-reply-queue', daemon=True).start()

    def _run(self, make):
        try:
            make()
        except Exception as exc:
            self.error = exc
        finally:
            self.done.set()


def _maker(transport):
    """The driver's reply queue setup, or None if it has none."""
    driver = getattr(transport, '_driver', None)
    return getattr(driver, '_get_reply_q', None)


def is_ready(transport):
    """True when a call on ``transport`` need not wait for its queue."""
    if _maker(transport) is None:
        return True
    setup = _SETUPS.get(transport)
    return (setup is not None and setup.done.is_set() and
            setup.error is None)


def ready(transport, timeout):
    """True once ``transport`` can receive answers; False if that takes
    longer than ``timeout`` seconds.  Raises the setup's own error (the
    broker refused the login, say); the next call tries again."""
    make = _maker(transport)
    if make is None:
        return True
    with _LOCK:
        setup = _SETUPS.get(transport)
        if setup is None or setup.error is not None:
            setup = _SETUPS[transport] = _Setup(make)
    if not setup.done.wait(max(0.0, timeout)):
        return False
    if setup.error is not None:
        raise setup.error
    return True


def close(transport, timeout=5.0):
    """``transport.cleanup()``, waiting at most ``timeout`` seconds.

    oslo.messaging's cleanup takes the lock its reply queue setup holds
    while it waits for the broker: with the broker away it would wait as
    long.  Returns False when the cleanup was left to finish on its own
    (a daemon thread, ended with the process).
    """
    setup = _SETUPS.get(transport)
    if setup is None or setup.done.is_set():
        transport.cleanup()
        return True
    closing = threading.Thread(target=transport.cleanup,
                               name='rpc-transport-cleanup', daemon=True)
    closing.start()
    closing.join(timeout)
    return not closing.is_alive()
