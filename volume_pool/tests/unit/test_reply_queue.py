"""The client's wait for its reply queue: bounded by the caller's time,
made once per transport, tried again after an error."""

import threading
import time
import types

import pytest

from volume_pool import reply_queue


class _Transport:
    """What the module reads of an oslo.messaging Transport."""

    def __init__(self, make):
        self._driver = types.SimpleNamespace(_get_reply_q=make)


def _transport(make):
    return _Transport(make)


def test_a_driver_without_reply_queue_never_waits():
    transport = types.SimpleNamespace(_driver=object())
    assert reply_queue.is_ready(transport)
    assert reply_queue.ready(transport, 0)
    assert reply_queue.is_ready(None)


def test_a_setup_that_hangs_costs_the_timeout_then_finishes_later():
    release = threading.Event()
    made = []

    def make():
        release.wait(10)
        made.append(1)
    transport = _transport(make)
    start = time.monotonic()
    assert not reply_queue.ready(transport, 0.2)
    assert 0.2 <= time.monotonic() - start < 1.0
    assert not reply_queue.is_ready(transport)
    assert not reply_queue.ready(transport, 0.05)  # the same setup
    release.set()
    assert reply_queue.ready(transport, 5)
    assert made == [1]
    assert reply_queue.is_ready(transport)


def test_a_failed_setup_raises_and_the_next_call_tries_again():
    outcomes = [PermissionError('refused'), None]

    def make():
        outcome = outcomes.pop(0)
        if outcome:
            raise outcome
    transport = _transport(make)
    with pytest.raises(PermissionError):
        reply_queue.ready(transport, 5)
    assert not reply_queue.is_ready(transport)
    assert reply_queue.ready(transport, 5)
    assert outcomes == []
