"""A real ``volume-pool-manager`` process, started from its console script
with a config file, as systemd would start it."""

import logging
import subprocess
import time

import oslo_messaging as messaging
import psutil
from sqlalchemy import exc as sa_exc

from volume_pool import exception
from volume_pool.fixtures import manager_process

LOG = logging.getLogger(__name__)

# What a readiness probe meets while the manager is still starting: no
# RPC server yet, an error from a manager not serving yet, no table yet.
NOT_READY_ERRORS = (messaging.MessagingException,
                    exception.VolumePoolException, sa_exc.SQLAlchemyError)

LOG_LEVELS = ('amqp=WARN,amqplib=WARN,oslo.messaging=WARN,'
              'oslo_messaging=WARN,keystoneauth=WARN,urllib3=WARN,'
              'stevedore=WARN,oslo_service=WARN,alembic=WARN')


def config_text(*, host, transport_url, connection, cinder_section, pools,
                volume_pool_options=None, database_options=None):
    """A manager config; ``pools`` maps name -> {snapshot_id, target, ...}.
    """
    options = {'replenish_interval': -1, 'sync_interval': -1,
               'periodic_fuzzy_delay': 0}
    options.update(volume_pool_options or {})
    options['enabled_pools'] = ','.join(pools)
    lines = ['[DEFAULT]', 'host = %s' % host,
             'transport_url = %s' % transport_url,
             'default_log_levels = %s' % LOG_LEVELS,
             '[database]', 'connection = %s' % connection]
    lines += ['%s = %s' % item
              for item in sorted((database_options or {}).items())]
    lines += ['[volume_pool]']
    lines += ['%s = %s' % item for item in sorted(options.items())]
    text = '\n'.join(lines) + '\n' + cinder_section
    for name, pool in pools.items():
        text += '[pool:%s]\n' % name
        text += ''.join('%s = %s\n' % item for item in pool.items())
    return text


class ManagerProcess(manager_process.ManagerProcess):
    """The functional suite's manager process, plus what the benchmark
    reads off it: readiness with the log on failure, and resources."""

    def wait_until(self, predicate, timeout, what):
        """Poll ``predicate`` while the process lives."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError('%s exited with %s; log: %s' % (
                    self.name, self.proc.returncode, self.log_tail()))
            try:
                if predicate():
                    return
            except NOT_READY_ERRORS as exc:
                LOG.debug('%s not ready: %s', self.name, exc)
            time.sleep(0.2)
        raise RuntimeError('%s: %s not met within %ss; log: %s'
                           % (self.name, what, timeout, self.log_tail()))

    def resources(self, window):
        """RSS (MB) now, and CPU seconds used over ``window`` seconds."""
        process = psutil.Process(self.proc.pid)
        before = process.cpu_times()
        started = time.monotonic()
        time.sleep(window)
        after = process.cpu_times()
        elapsed = time.monotonic() - started
        cpu = ((after.user + after.system) - (before.user + before.system))
        return {'rss_mb': round(process.memory_info().rss / 2 ** 20, 1),
                'threads': process.num_threads(),
                'cpu_s': round(cpu, 3), 'window_s': round(elapsed, 1),
                'cpu_s_per_min': round(cpu * 60.0 / elapsed, 3),
                'core_percent': round(100.0 * cpu / elapsed, 3)}

    def stop(self, timeout=60):
        """SIGTERM, then SIGKILL if it has not stopped within ``timeout``."""
        try:
            self.terminate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        return self.proc.returncode if self.proc else None

    def log_tail(self, chars=3000):
        try:
            return self.log()[-chars:]
        except OSError:
            return ''
