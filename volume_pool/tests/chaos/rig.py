"""The services of one soak, brought up and torn down together.

A private redis-server (never the machine's shared one), a throw-away
database, a RabbitMQ vhost, a real Cinder (volume_pool.fixtures.local_cinder)
with the fault proxy in front of it, and the managers of one cluster.
"""

import contextlib
import os
import pathlib
import signal
import subprocess
import time
import uuid

import psutil
import sqlalchemy as sa

from volume_pool.conf import volume_pool as vp_conf
from volume_pool.fixtures import cinder_handles
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


class RigFailed(Exception):
    """A service the soak needs did not come up (which, and why)."""


def _missing(what, why):
    raise RigFailed('%s is not available: %s' % (what, why))


def known_options():
    """``[volume_pool]`` option names this tree has: the soak sets the
    newer ones only where they exist."""
    return {opt.name for opt in vp_conf.volume_pool_opts}


def manager_config(*, host, transport_url, db_url, cinder_section,
                   redis_url, pools, options):
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
    return '\n'.join(lines) + '\n' + cinder_section


class Rig:
    """Everything one run needs; use as a context manager."""

    def __init__(self, workdir, *, backend, managers, pools, target, seed,
                 options, log=print):
        self.workdir = workdir
        self.backend = backend
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
        self.snapshot_id = self.cinder.make_snapshot(size=1)
        self.golden = {v.id for v in self.cinder.client().volumes.list()}
        self.proxy = faultproxy.FaultProxy(
            self.cinder.endpoint, faultproxy.Faults(seed=self.seed),
            upstream_timeout=30.0, hold_bound=30.0).start()
        self._stack.callback(self.proxy.stop)
        self.log('Cinder at %s, through the proxy at :%d (%.0fs)'
                 % (self.cinder.endpoint, self.proxy.port,
                    time.monotonic() - started))
        self._stack.callback(self._stop_managers)
        for number in range(1, self.manager_count + 1):
            process = manager_process.ManagerProcess(
                self.workdir, 'chaos-%d' % number,
                self._config('chaos-%d' % number))
            if not self.managers:
                process.db_sync()
            self.managers.append(process.start())

    def _config(self, host):
        section = self.cinder.cinder_section().replace(
            self.cinder.endpoint, self.proxy.url_for(self.cinder.endpoint))
        return manager_config(
            host=host, transport_url=self.transport_url, db_url=self.db_url,
            cinder_section=section, redis_url=self.redis.url,
            pools=dict.fromkeys(self.pool_names,
                                (self.snapshot_id, self.target)),
            options=dict(self.options, claim_projects=self.claim_project))

    @property
    def pools(self):
        return dict.fromkeys(self.pool_names, self.target)

    def _stop_managers(self):
        for process in self.managers:
            try:
                process.terminate(timeout=30)
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
