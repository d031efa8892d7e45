"""The per-pool backoff: delays that double from the initial one, with
jitter, up to the maximum; a pause after too many failures in a row."""

from volume_pool import backoff


def test_delays_double_with_jitter_up_to_the_maximum():
    now = [1000.0]
    pools = backoff.Backoff(initial=2, maximum=20, max_consecutive_errors=0,
                            clock=lambda: now[0])
    delays = []
    for _ in range(6):
        pools.failure('debian', 'HTTP 503')
        delays.append(pools.state('debian')['until'] - now[0])
    for attempt, delay in enumerate(delays[:4]):
        assert 2 * 2 ** attempt <= delay <= 2 * 2 ** attempt + 2
    assert delays[4:] == [20, 20]
    assert not pools.allowed('debian')
    now[0] += 20
    assert pools.allowed('debian')


def test_a_pool_pauses_after_too_many_failures_until_reset():
    pools = backoff.Backoff(initial=1, maximum=10, max_consecutive_errors=2,
                            clock=lambda: 0.0)
    pools.failure('debian', 'error')
    assert not pools.state('debian')['paused']
    pools.failure('debian', 'error')
    assert pools.state('debian') == {'failures': 2, 'paused': True,
                                     'until': None, 'last_error': 'error'}
    pools.reset('debian')
    assert pools.allowed('debian') and pools.state('debian') is None
