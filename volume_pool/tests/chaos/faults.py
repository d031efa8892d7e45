"""Faults at random, one after another, each undone within seconds.

Every fault is bounded in time and undone in a ``finally``, and
:meth:`Chaos.stop` heals whatever is left, so the settle phase starts
from working services.
"""

import collections
import subprocess
import threading
import time

import sqlalchemy as sa

from volume_pool.tests.chaos import faultproxy

KILL = 'kill_manager'          # kill -9 a manager, start it again
RABBIT = 'rabbit_connections'  # close the vhost's AMQP connections
DATABASE = 'db_connections'    # kill the test database's sessions
CINDER_STOP = 'cinder_sigstop'  # SIGSTOP cinder-api, then SIGCONT
PROXY_STALL = 'proxy_stall'    # the proxy holds every request
REDIS = 'redis_restart'        # restart the private redis-server
PROXY_BURST = 'proxy_burst'    # the next requests fail in the proxy
# On the ha topology only:
GALERA_NODE = 'galera_node_kill'     # SIGKILL a Galera node, start it again
RABBIT_NODE = 'rabbit_node_stop'     # stop_app a RabbitMQ node, start_app
SENTINEL = 'sentinel_failover'       # SENTINEL FAILOVER
ETCD_LEADER = 'etcd_leader_kill'     # SIGKILL the etcd leader, start it

SINGLE = 'single'
HA = 'ha'
TOPOLOGIES = (SINGLE, HA)
COORDINATIONS = ('sentinel', 'etcd')

KINDS = (KILL, RABBIT, DATABASE, CINDER_STOP, PROXY_STALL, REDIS,
         PROXY_BURST)
HA_KINDS = (KILL, RABBIT, DATABASE, CINDER_STOP, PROXY_STALL, PROXY_BURST,
            GALERA_NODE, RABBIT_NODE)
COORDINATION_KINDS = {'sentinel': (SENTINEL,), 'etcd': (ETCD_LEADER,)}
ALL_KINDS = KINDS + tuple(k for k in HA_KINDS if k not in KINDS) + (
    SENTINEL, ETCD_LEADER)


def kinds_for(topology, coordination='sentinel'):
    """The faults that make sense on ``topology`` (with ``coordination``
    on ha): the default list, and what ``--faults`` may name."""
    if topology == SINGLE:
        return KINDS
    return HA_KINDS + COORDINATION_KINDS[coordination]

# Background chance per Cinder request of each proxy fault while the
# faults run, as shares of --proxy-fault-rate.  The late fault has a rate
# of its own (--late-rate), per request that changes something.
PROXY_MIX = {faultproxy.DELAY: 0.4, faultproxy.ERROR: 0.2,
             faultproxy.QUOTA: 0.1, faultproxy.DROP_BEFORE: 0.15,
             faultproxy.DROP_AFTER: 0.15}


def close_vhost_connections(vhost):
    subprocess.run(['rabbitmqctl', '-q', 'close_all_connections', '-p',
                    vhost, 'chaos'], check=True, capture_output=True,
                   timeout=60)


def kill_db_connections(engine, backend, database):
    """Kill every session on ``database``; returns how many."""
    with engine.connect() as conn:
        if backend == 'mysql':
            ids = [row[0] for row in conn.execute(sa.text(
                'SELECT id FROM information_schema.processlist '
                'WHERE db = :db AND id <> CONNECTION_ID()'),
                {'db': database})]
            killed = 0
            for session_id in ids:
                try:
                    conn.execute(sa.text('KILL %d' % int(session_id)))
                    killed += 1
                except sa.exc.DBAPIError:
                    pass  # gone meanwhile
            return killed
        result = conn.execute(sa.text(
            'SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity '
            'WHERE datname = :db AND pid <> pg_backend_pid()'),
            {'db': database})
        return result.scalar()


class Skipped(Exception):
    """A fault that did not apply at that moment (the etcd leader is the
    managers' own endpoint): neither run nor failed."""


def kill_galera_sessions(galera, database):
    """Kill ``database``'s sessions on every Galera node that answers;
    returns {node index: how many}."""
    killed = {}
    for i, url in enumerate(galera.urls['nodes']):
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool,
                                  connect_args={'connect_timeout': 2})
        try:
            killed[i] = kill_db_connections(engine, 'mysql', database)
        except sa.exc.DBAPIError:
            killed[i] = None  # down
        finally:
            engine.dispose()
    return killed


class Chaos:
    """Runs faults from ``kinds`` on ``rig`` until :meth:`stop`."""

    def __init__(self, rig, rng, kinds=KINDS, gap=(1.0, 5.0),
                 outage=(2.0, 8.0), proxy_rate=0.05, late_rate=0.0,
                 log=print):
        self.rig = rig
        self.rng = rng
        self.kinds = list(kinds)
        self.gap = gap
        self.outage = outage
        self.proxy_rate = proxy_rate
        self.late_rate = late_rate
        self.log = log
        self.counts = collections.Counter()
        self.failures = collections.Counter()  # a fault that could not run
        self.skipped = collections.Counter()  # a fault that did not apply
        self.died = collections.Counter()  # managers that exited unasked
        self._stopping = threading.Event()
        self._thread = None
        self._bag = []

    def start(self):
        self.rig.proxy.faults.set_probabilities(
            late=self.late_rate, **{action: share * self.proxy_rate
                                    for action, share in PROXY_MIX.items()})
        self._thread = threading.Thread(target=self._run, name='chaos',
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout=60):
        """Stop after the fault under way, then heal everything."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.heal()

    def heal(self):
        self.rig.proxy.faults.clear()
        self.rig.resume_cinder()
        for what in self.rig.heal_backends():
            self.log('healed: %s' % what)
        self.restart_dead()

    def restart_dead(self):
        """Start again a manager that exited without being killed."""
        for process in self.rig.managers:
            if not process.alive():
                self.died[process.name] += 1
                self.log('%s exited by itself (status %s): started again'
                         % (process.name, process.proc.returncode))
                process.start()

    def _run(self):
        while not self._stopping.wait(self.rng.uniform(*self.gap)):
            self.restart_dead()
            kind = self._next_kind()
            if kind is None:
                continue
            started = time.monotonic()
            try:
                detail = getattr(self, '_' + kind)()
            except Skipped as why:
                self.skipped[kind] += 1
                self.log('fault %s skipped: %s' % (kind, why))
                continue
            except Exception as exc:
                self.failures[kind] += 1
                self.log('fault %s failed: %s' % (kind, exc))
                continue
            self.counts[kind] += 1
            self.log('fault %s%s (%.1fs)' % (
                kind, ': %s' % detail if detail else '',
                time.monotonic() - started))

    def _next_kind(self):
        """Each kind once, in a random order, then again: a short run
        still sees every fault."""
        if not self._bag:
            self._bag = list(self.kinds)
            self.rng.shuffle(self._bag)
        return self._bag.pop() if self._bag else None

    def _outage(self):
        """An outage's length; cut short by stop()."""
        self._stopping.wait(self.rng.uniform(*self.outage))

    def _kill_manager(self):
        alive = [p for p in self.rig.managers if p.alive()]
        if not alive:
            return 'none alive'
        victim = self.rng.choice(alive)
        victim.kill()
        try:
            self._outage()
        finally:
            victim.start()
        return victim.name

    def _rabbit_connections(self):
        if self.rig.rabbit_cluster is not None:
            self.rig.rabbit_cluster.ctl('close_all_connections', '-p',
                                        self.rig.vhost, 'chaos',
                                        timeout=60)
            return 'on the cluster'
        close_vhost_connections(self.rig.vhost)

    def _db_connections(self):
        if self.rig.galera is not None:
            killed = kill_galera_sessions(self.rig.galera,
                                          self.rig.db_name)
            return ', '.join('n%d %s' % (i + 1, 'down' if n is None else n)
                             for i, n in sorted(killed.items())) + ' killed'
        engine = self.rig.admin_engine()
        try:
            return '%d killed' % kill_db_connections(
                engine, self.rig.backend, self.rig.db_name)
        finally:
            engine.dispose()

    def _cinder_sigstop(self):
        stopped = self.rig.signal_cinder_api(stop=True)
        try:
            self._outage()
        finally:
            self.rig.signal_cinder_api(stop=False)
        return stopped

    def _proxy_stall(self):
        self.rig.proxy.faults.stall()
        try:
            self._outage()
        finally:
            self.rig.proxy.faults.resume()

    def _redis_restart(self):
        self.rig.redis.stop()
        try:
            self._stopping.wait(self.rng.uniform(0.5, 3.0))
        finally:
            self.rig.redis.start()

    def _proxy_burst(self):
        actions = [a for a in faultproxy.ACTIONS
                   if a != faultproxy.LATE or self.late_rate]
        action = self.rng.choice(actions)
        count = self.rng.randint(1, 5)
        self.rig.proxy.faults.inject(action, count)
        return '%d x %s' % (count, action)

    # -- the ha topology -------------------------------------------------

    def _galera_node_kill(self):
        """Any node, HAProxy's active one (n1) too; started again after
        the outage, once it is Synced in a cluster of three."""
        i = self.rng.randrange(3)
        self.rig.galera.kill_node(i)
        try:
            self._outage()
        finally:
            took = self.rig.galera.start_node(i)
        return 'n%d%s, back and Synced in %.0fs' % (
            i + 1, ' (HAProxy\'s active one)' if i == 0 else '', took)

    def _rabbit_node_stop(self):
        """``stop_app`` on one node (one at a time: the faults run one
        after another), ``start_app`` after the outage."""
        cluster = self.rig.rabbit_cluster
        i = self.rng.randrange(3)
        cluster.ctl('stop_app', node=i)
        try:
            self._outage()
        finally:
            cluster.ctl('start_app', node=i)
        return cluster.nodename(i)

    def _sentinel_failover(self):
        before = self.rig.sentinel.master_port()
        after = self.rig.sentinel.failover()
        return 'master :%d -> :%d' % (before, after)

    def _etcd_leader_kill(self):
        """The leader, unless it is the member the managers talk to
        (etcd3gw knows that one only)."""
        etcd = self.rig.etcd
        leader = etcd.wait_leader()
        if leader == self.rig.etcd_endpoint:
            raise Skipped('the leader e%d is the managers\' endpoint'
                          % (leader + 1))
        etcd.kill_node(leader)
        try:
            self._outage()
        finally:
            took = etcd.start_node(leader)
        return 'e%d, back in %.0fs' % (leader + 1, took)
