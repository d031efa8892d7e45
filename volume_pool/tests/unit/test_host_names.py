"""A second manager under a live manager's host name is refused at start;
a predecessor that died without a stop is told apart by its heartbeat,
which no longer moves."""

import pytest

from volume_pool import exception
from volume_pool import host_names
from volume_pool.db import managers as db_managers

DOWN_TIME = 60
INTERVAL = 10


class Clock:
    """Monotonic time that moves only when the check sleeps; ``on_sleep``
    runs at each sleep (what the other process does meanwhile)."""

    def __init__(self, on_sleep=lambda: None):
        self.now = 1000.0
        self.sleeps = 0
        self._on_sleep = on_sleep

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds
        self.sleeps += 1
        self._on_sleep()


def check(clock, host='mgr-1', cluster='east'):
    host_names.refuse_if_taken(host, cluster, DOWN_TIME, INTERVAL,
                               sleep=clock.sleep, monotonic=clock.monotonic)


def test_a_host_name_nobody_uses_starts_at_once(database):
    db_managers.register('mgr-2', 'east', 'inc-other')
    db_managers.register('mgr-1', 'west', 'inc-west')
    clock = Clock()
    check(clock)
    assert clock.sleeps == 0


def test_a_live_manager_under_the_same_name_is_refused(database):
    db_managers.register('mgr-1', 'east', 'inc-live')
    clock = Clock(on_sleep=lambda: db_managers.heartbeat('inc-live'))
    with pytest.raises(exception.ConfigError) as caught:
        check(clock)
    message = str(caught.value)
    assert '[DEFAULT] host = mgr-1' in message
    assert 'inc-live' in message and 'cluster east' in message
    assert '\n' not in message


def test_a_predecessor_that_died_without_a_stop_lets_the_restart_go(
        database):
    db_managers.register('mgr-1', 'east', 'inc-dead')  # never beats again
    clock = Clock()
    check(clock)
    # It waited two heartbeat intervals for a beat that never came.
    assert clock.sleeps == 2 * INTERVAL + 1


def test_a_stopped_predecessor_lets_the_restart_go_at_once(database):
    db_managers.register('mgr-1', 'east', 'inc-stopped')
    db_managers.stopped('inc-stopped')
    clock = Clock()
    check(clock)
    assert clock.sleeps == 0
