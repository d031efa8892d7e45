"""The services of one soak, brought up and torn down together.

A private redis-server (never the machine's shared one), a throw-away
database, a RabbitMQ vhost, a real Cinder (volume_pool.fixtures.local_cinder)
with the fault proxy in front of it, and the managers of one cluster.

On the ``ha`` topology the database, the broker and coordination are
clusters of volume_pool.fixtures.clusters on free ports instead: Galera
behind HAProxy (the managers go through HAProxy), three RabbitMQ nodes
(quorum queues, a fresh vhost) and Redis Sentinel or etcd.
"""

import concurrent.futures
import contextlib
import functools
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import psutil
import sqlalchemy as sa

from volume_pool.conf import volume_pool as vp_conf
from volume_pool.fixtures import cinder_handles
from volume_pool.fixtures import clusters
from volume_pool.fixtures import databases
from volume_pool.fixtures import local_cinder
from volume_pool.fixtures import manager_process
from volume_pool.fixtures import rabbit
from volume_pool.fixtures import redis
from volume_pool.fixtures import services
from volume_pool.tests.chaos import faultproxy

CLUSTER = 'chaos'
LOG_LEVELS = ('amqp=WARN,amqplib=WARN,oslo.messaging=WARN,'
              'oslo_messaging=WARN,keystoneauth=WARN,urllib3=WARN,'
              'stevedore=WARN,oslo_service=WARN,alembic=WARN,tooz=WARN')
# The managers' and the soak's own: a classic queue cannot be declared
# again as a quorum one, hence a fresh vhost on the cluster.
QUORUM_OPTIONS = ('rabbit_quorum_queue', 'rabbit_transient_quorum_queue')
QUORUM_SECTION = ('[oslo_messaging_rabbit]\n' + ''.join(
    '%s = true\n' % option for option in QUORUM_OPTIONS))


class RigFailed(Exception):
    """A service the soak needs did not come up (which, and why)."""


def _missing(what, why):
    raise RigFailed('%s is not available: %s' % (what, why))


def known_options():
    """``[volume_pool]`` option names this tree has: the soak sets the
    newer ones only where they exist."""
    return {opt.name for opt in vp_conf.volume_pool_opts}


def manager_config(*, host, transport_url, db_url, cinder_section,
                   redis_url, pools, options, extra=''):
    """One manager's config; ``pools`` maps name -> (snapshot_id, target).
    """
    known = known_options()
    lines = ['[DEFAULT]', 'host = %s' % host, 'cluster = %s' % CLUSTER,
             'transport_url = %s' % transport_url,
             'graceful_shutdown_timeout = 20',
             'default_log_levels = %s' % LOG_LEVELS,
             '[database]', 'connection = %s' % db_url,
             '[volume_pool]', 'enabled_pools = %s' % ','.join(sorted(pools))]
    lines += ['%s = %s' % (name, value)
              for name, value in sorted(options.items()) if name in known]
    lines += ['[coordination]', 'backend_url = %s' % redis_url,
              'membership_timeout = 5', 'refresh_interval = 2']
    for name, (snapshot_id, target) in sorted(pools.items()):
        lines += ['[pool:%s]' % name, 'snapshot_id = %s' % snapshot_id,
                  'target = %d' % target]
    return '\n'.join(lines) + '\n' + cinder_section + extra


class Rig:
    """Everything one run needs; use as a context manager."""

    def __init__(self, workdir, *, backend, managers, pools, target, seed,
                 options, log=print, topology='single',
                 coordination='sentinel'):
        self.workdir = workdir
        self.backend = 'mysql' if topology == 'ha' else backend
        self.topology = topology
        self.coordination = coordination
        # The clusters of the ha topology (None on single).
        self.galera = self.rabbit_cluster = None
        self.sentinel = self.etcd = self.redis = None
        self.etcd_endpoint = None  # the member the managers talk to
        self.started_in = None
        self.manager_count = managers
        self.pool_names = ['chaos-%d' % n for n in range(pools)]
        self.target = target
        self.seed = seed
        self.options = options
        self.log = log
        self.managers = []
        self.golden = set()
        # The second project claims may hand volumes to (claim_projects).
        self.claim_project = uuid.uuid4().hex
        self._stack = contextlib.ExitStack()

    def __enter__(self):
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc_info):
        self._stack.close()

    def _start(self):
        started = time.monotonic()
        if self.topology == 'ha':
            self._start_ha(started)
        else:
            self._start_single(started)
        self._stack.callback(self._stop_managers)
        for number in range(1, self.manager_count + 1):
            process = manager_process.ManagerProcess(
                self.workdir, 'chaos-%d' % number,
                self._config('chaos-%d' % number))
            if not self.managers:
                process.db_sync()
            self.managers.append(process.start())
        self.started_in = time.monotonic() - started

    def _start_single(self, started):
        self.redis = redis.PrivateRedis(self.workdir,
                                        missing=_missing).start()
        self._stack.callback(self.redis.stop)
        self.transport_url = self._stack.enter_context(
            rabbit.rabbit_vhost(missing=_missing,
                                prefix='volume-pool-chaos'))
        self.vhost = self.transport_url.rsplit('/', 1)[1]
        url = self._stack.enter_context(databases.provisioned_database(
            self.backend, pathlib.Path(self.workdir), missing=_missing,
            prefix='vp_chaos'))
        self.db_url = (url if isinstance(url, str)
                       else url.render_as_string(hide_password=False))
        self.db_name = sa.engine.make_url(self.db_url).database
        self.log('redis :%d, vhost %s, %s database %s'
                 % (self.redis.port, self.vhost, self.backend, self.db_name))
        self._start_cinder()
        self._start_proxy(started)

    def _start_cinder(self):
        # Confirmed volumes stay: room for a long soak.
        os.environ.setdefault('CINDER_QUOTA_VOLUMES', '20000')
        os.environ.setdefault('CINDER_QUOTA_GIGABYTES', '200000')
        self.cinder = local_cinder.LocalCinder()
        # Registered first: stop finds whatever an interrupted start began.
        self._stack.callback(self.cinder.stop)
        try:
            self.cinder.start()
        except local_cinder.CinderFailed as exc:
            raise RigFailed(str(exc))
        self._stack.callback(self.resume_cinder)  # runs before the stop

    def _start_proxy(self, started):
        self.snapshot_id = self.cinder.make_snapshot(size=1)
        self.golden = {v.id for v in self.cinder.client().volumes.list()}
        self.proxy = faultproxy.FaultProxy(
            self.cinder.endpoint, faultproxy.Faults(seed=self.seed),
            upstream_timeout=30.0, hold_bound=30.0).start()
        self._stack.callback(self.proxy.stop)
        self.log('Cinder at %s, through the proxy at :%d (%.0fs)'
                 % (self.cinder.endpoint, self.proxy.port,
                    time.monotonic() - started))

    # -- the ha topology -------------------------------------------------

    def _start_ha(self, started):
        """The three clusters in threads of their own, Cinder meanwhile
        in this one; every start waited for before a failure is raised,
        so that the stack's stops never race a start."""
        shm = '/dev/shm'  # noqa: S108
        self.cluster_dir = tempfile.mkdtemp(
            prefix='vp-cluster-chaos-',
            dir=shm if os.path.isdir(shm) else None)
        # The nodes run as mysql or rabbitmq: they must reach their dirs.
        os.chmod(self.cluster_dir, 0o755)  # noqa: S103
        self._stack.callback(shutil.rmtree, self.cluster_dir,
                             ignore_errors=True)
        where = functools.partial(os.path.join, self.cluster_dir)
        self.galera = clusters.GaleraCluster.on_free_ports(
            where('galera'), missing=_missing)
        self.rabbit_cluster = clusters.RabbitCluster.on_free_ports(
            where('rabbit'), prefix='vpchaos%s-' % uuid.uuid4().hex[:6],
            missing=_missing)
        if self.coordination == 'etcd':
            self.etcd = clusters.EtcdCluster.on_free_ports(
                where('etcd'), missing=_missing)
            coordination = self.etcd
        else:
            self.sentinel = clusters.SentinelCluster.on_free_ports(
                where('sentinel'), missing=_missing)
            coordination = self.sentinel
        engines = [self.galera, self.rabbit_cluster, coordination]
        for cluster in engines:
            self._stack.callback(self._stop_cluster, cluster)
        with concurrent.futures.ThreadPoolExecutor(len(engines)) as pool:
            starts = [pool.submit(cluster.start) for cluster in engines]
            try:
                self._start_cinder()
            finally:
                concurrent.futures.wait(starts)
        for cluster, start in zip(engines, starts, strict=True):
            exc = start.exception()
            if isinstance(exc, RigFailed):
                raise exc
            if exc is not None:
                raise RigFailed('the %s cluster did not start: %s'
                                % (cluster.engine, exc))
        self.log('clusters up: %s' % ', '.join(
            '%s %.0fs' % (c.engine, c.started_in) for c in engines))
        self.db_name = 'vp_chaos_%s' % uuid.uuid4().hex[:8]
        with self.galera.connect(0) as conn, conn.cursor() as cur:
            cur.execute('CREATE DATABASE %s' % self.db_name)
        self.db_url = self.galera.urls['proxy'] + self.db_name
        self.vhost = 'volume-pool-chaos-%s' % uuid.uuid4().hex[:8]
        self.rabbit_cluster.add_vhost(self.vhost)
        self.transport_url = self.rabbit_cluster.url(self.vhost)
        if self.etcd is not None:
            # etcd3gw talks to one member: a follower, so that the
            # leader's kill is the fault etcd_leader_kill means.
            leader = self.etcd.wait_leader()
            self.etcd_endpoint = (leader + 1) % 3
            self.coordination_url = self.etcd.url(self.etcd_endpoint)
        else:
            self.coordination_url = self.sentinel.url
        self.log('Galera through HAProxy :%d, database %s; RabbitMQ '
                 'cluster %s, vhost %s; coordination %s'
                 % (self.galera.proxy_port, self.db_name,
                    ','.join(map(str, self.rabbit_cluster.ports)),
                    self.vhost, self.coordination_url))
        self._start_proxy(started)

    def _stop_cluster(self, cluster):
        """Stop it (its data is thrown away: no clean shutdown); its logs
        go to the run's work dir first."""
        try:
            cluster.stop(keep_logs=True, fast=True)
        finally:
            logs = cluster.path('logs')
            if os.path.isdir(logs):
                shutil.copytree(logs, os.path.join(
                    self.workdir, 'clusters', cluster.engine),
                    dirs_exist_ok=True)
            shutil.rmtree(cluster.dir, ignore_errors=True)

    def heal_backends(self):
        """Whatever a fault left down, started again; returns what."""
        healed = []
        if self.redis is not None:
            proc = self.redis.proc
            if proc is None or proc.poll() is not None:
                self.redis.start()
                healed.append('redis-server')
        if self.galera is not None:
            for i in range(3):
                if not self.galera.alive('n%d' % (i + 1)):
                    self.galera.start_node(i)
                    healed.append('galera n%d' % (i + 1))
        if self.rabbit_cluster is not None:
            for i in range(3):
                try:
                    self.rabbit_cluster.ctl('start_app', node=i)
                except clusters.rabbit.CtlFailed as exc:
                    healed.append('rabbit %s: %s' % (
                        self.rabbit_cluster.nodename(i), exc))
        if self.etcd is not None:
            for i in range(3):
                if not self.etcd.alive('e%d' % (i + 1)):
                    self.etcd.start_node(i)
                    healed.append('etcd e%d' % (i + 1))
        return healed

    def _config(self, host):
        section = self.cinder.cinder_section().replace(
            self.cinder.endpoint, self.proxy.url_for(self.cinder.endpoint))
        return manager_config(
            host=host, transport_url=self.transport_url, db_url=self.db_url,
            cinder_section=section,
            redis_url=(self.redis.url if self.redis is not None
                       else self.coordination_url),
            pools=dict.fromkeys(self.pool_names,
                                (self.snapshot_id, self.target)),
            options=dict(self.options, claim_projects=self.claim_project),
            extra=QUORUM_SECTION if self.topology == 'ha' else '')

    @property
    def pools(self):
        return dict.fromkeys(self.pool_names, self.target)

    def _stop_managers(self):
        """SIGTERM to every manager at once, then wait for each: their
        graceful stops run side by side."""
        for process in self.managers:
            if process.alive():
                process.proc.send_signal(signal.SIGTERM)
        for process in self.managers:
            try:
                if process.proc is not None:
                    process.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()

    def cinder_api_pids(self):
        """cinder-api and its workers, from the local Cinder's pid file."""
        path = os.path.join(self.cinder.state_dir, 'cinder-api.pid')
        try:
            with open(path) as pid_file:
                parent = psutil.Process(int(pid_file.read().strip()))
            return [parent.pid] + [p.pid for p in
                                   parent.children(recursive=True)]
        except (OSError, ValueError, psutil.NoSuchProcess):
            return []

    def signal_cinder_api(self, stop):
        """SIGSTOP (``stop``) or SIGCONT cinder-api and its workers.

        Its own process group when it leads one (started with setsid),
        else each process: the group of a plain background job is ours.
        Returns what was signalled.
        """
        sig = signal.SIGSTOP if stop else signal.SIGCONT
        pids = self.cinder_api_pids()
        if pids and os.getpgid(pids[0]) == pids[0] != os.getpgrp():
            os.killpg(pids[0], sig)
            return 'process group %d' % pids[0]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        return 'pids %s' % ','.join(map(str, pids))

    def resume_cinder(self):
        """SIGCONT, whatever a fault left stopped."""
        self.signal_cinder_api(stop=False)

    def admin_engine(self):
        admin = {'mysql': services.MYSQL_ADMIN_URL,
                 'postgresql': services.POSTGRESQL_ADMIN_URL}[self.backend]
        return sa.create_engine(admin, poolclass=sa.pool.NullPool)

    def engine(self):
        return sa.create_engine(self.db_url, poolclass=sa.pool.NullPool)

    def cinder_client(self, project=None):
        """Straight to Cinder, not through the proxy; as ``project`` (the
        pools' own by default)."""
        if project is None:
            return self.cinder.client()
        return cinder_handles.noauth_cinder_client(
            self.cinder.endpoint, project, user_id='chaos-receiver')

    @property
    def projects(self):
        """Every project the run's volumes may be in, the pools' first."""
        return [self.cinder.project_id, self.claim_project]

    def attach(self, volume_id, timeout):
        """Attach as Nova would (a reserved attachment), straight to
        Cinder: the caller's side, not the managers'.  A volume made on a
        miss may still be creating: wait ``timeout`` s for it first."""
        client = self.cinder_client()
        local_cinder.wait_for_status(client.volumes, volume_id, 'available',
                                     timeout=timeout)
        client.attachments.create(volume_id, connector=None,
                                  instance_id=None)
