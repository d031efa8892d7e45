"""The manager's Guru Meditation "Pool State" section when the pool
status cannot be read: one line for a service's error, a traceback for a
bug."""

import types

from volume_pool import exception
from volume_pool.cmd import manager as manager_cmd


def _pool_state(error):
    def pool_status(ctxt):
        raise error
    server = types.SimpleNamespace(
        manager=types.SimpleNamespace(pool_status=pool_status))
    return manager_cmd.pool_state_section(server)().data


def test_pool_state_says_why_it_is_unavailable(caplog):
    state = _pool_state(exception.DatabaseUnavailable(reason='gone'))
    assert state == {'source': 'unavailable', 'error':
                     'The volume pool database is unavailable: gone'}
    assert caplog.records == []


def test_a_bug_in_the_pool_state_is_logged_with_its_traceback(caplog):
    assert _pool_state(TypeError('a bug')) == {
        'source': 'unavailable', 'error': 'a bug'}
    [record] = caplog.records
    assert record.exc_info[0] is TypeError
