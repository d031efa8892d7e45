"""A Redis served in the test's own process, for tooz (fakeredis).

The unit layer has no Redis server; tooz's own Redis driver runs
unchanged against fakeredis, Lua scripts and key expiry included, so the
membership and lock logic of :mod:`volume_pool.coordination` is tested
without one.  The functional layer runs the same tests on a real Redis.
"""

import fakeredis
import redis

# Host names of the fake servers: never resolved, never connected to.
LIVE_HOST = 'live.fake-redis.invalid'
OUTAGE_HOST = 'outage.fake-redis.invalid'


class _FakeRedis(fakeredis.FakeRedis):
    """fakeredis has no INFO command; tooz's driver reads the server's
    version from it before anything else."""

    def __init__(self, server, **kwargs):
        super().__init__(server=server, **kwargs)
        self._fake_server = server

    def info(self, *args, **kwargs):
        if not self._fake_server.connected:
            raise redis.ConnectionError('fake Redis server is down')
        return {'redis_version': '7.2.0'}


class Backend:
    """One fake Redis server, up or down at the test's will (the shape of
    :class:`volume_pool.tests.services.PrivateRedis`)."""

    def __init__(self, host, up):
        self.host = host
        self.server = fakeredis.FakeServer()
        self.server.connected = up

    @property
    def url(self):
        return 'redis://%s:6379' % self.host

    def start(self):
        self.server.connected = True
        return self

    def stop(self):
        self.server.connected = False


def install(monkeypatch):
    """Serve tooz's Redis clients from fake servers for one test.

    Returns ``{host: Backend}``: a live server and one that is down until
    started.  A client of any other address finds a server that is down,
    as a refused connection would: nothing leaves the process.
    """
    backends = {LIVE_HOST: Backend(LIVE_HOST, up=True),
                OUTAGE_HOST: Backend(OUTAGE_HOST, up=False)}
    nowhere = Backend('nowhere', up=False)

    def client(host=None, port=None, **kwargs):
        backend = backends.get(host, nowhere)
        return _FakeRedis(server=backend.server, **kwargs)

    monkeypatch.setattr(redis, 'Redis', client)
    return backends
