"""Real peers for the functional suite: a local Cinder, manager processes.

:class:`LocalCinder` drives ``tools/cinder-local.sh`` (a real Cinder with
the fake driver, on MariaDB and a RabbitMQ vhost of its own);
:class:`ManagerProcess` runs ``volume-pool-manager`` from its console
script with a config file, as systemd would.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time

from volume_pool.tests import helpers

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
SCRIPT = os.path.join(TOP, 'tools', 'cinder-local.sh')
BIN = os.path.dirname(sys.executable)


class CinderFailed(Exception):
    """The local Cinder could not be installed or started (logs inside)."""


def _run(*args, timeout=600):
    result = subprocess.run(['bash', SCRIPT, *args], capture_output=True,
                            text=True, timeout=timeout)
    if result.returncode != 0:
        raise CinderFailed('tools/cinder-local.sh %s failed:\n%s\n%s'
                           % (' '.join(args), result.stdout[-4000:],
                              result.stderr[-8000:]))
    return result.stdout


class LocalCinder:
    """cinder-api, -scheduler and -volume on loopback, stopped by pid."""

    def __init__(self):
        self.state_dir = tempfile.mkdtemp(prefix='volume-pool-cinder-')
        self.env = {}

    def start(self):
        _run('install', timeout=900)
        env_file = _run('start', self.state_dir).strip().splitlines()[-1]
        with open(env_file) as env:
            self.env = dict(line.strip().split('=', 1) for line in env
                            if '=' in line)
        return self

    def stop(self):
        _run('stop', self.state_dir)

    def stop_api(self):
        _run('stop-api', self.state_dir)

    def start_api(self):
        _run('start-api', self.state_dir)

    def api_group(self):
        """Process group of cinder-api and the workers it forked."""
        with open(os.path.join(self.state_dir, 'cinder-api.pid')) as pid:
            return int(pid.read().strip())

    def hang_api(self):
        """A hung API, not a refused connection: callers wait for their
        timeout while their requests queue up."""
        os.killpg(self.api_group(), signal.SIGSTOP)

    def resume_api(self):
        os.killpg(self.api_group(), signal.SIGCONT)

    @property
    def endpoint(self):
        return self.env['CINDER_ENDPOINT']

    @property
    def project_id(self):
        return self.env['CINDER_PROJECT_ID']

    @property
    def log_dir(self):
        return os.path.join(self.state_dir, 'log')

    def client(self):
        return helpers.noauth_cinder_client(self.endpoint, self.project_id,
                                            user_id='functional')

    def cinder_section(self, project_id=None):
        return ('[cinder]\nauth_type = noauth\nendpoint = %s\n'
                'project_id = %s\nuser_id = volume-pool\ntimeout = 20\n'
                % (self.endpoint, project_id or self.project_id))

    def api_log(self):
        with open(os.path.join(self.log_dir, 'cinder-api.log')) as log:
            return log.read()

    def refused_creates(self, project_id, seconds):
        """Creates by ``project_id`` that Cinder refused over quota (413)
        in the next ``seconds``, read off its API log."""
        marker = '/v3/%s/volumes HTTP/1.1" status: 413' % project_id
        before = self.api_log().count(marker)
        time.sleep(seconds)
        return self.api_log().count(marker) - before

    def make_snapshot(self, size=1):
        """A golden volume and its snapshot; returns the snapshot id."""
        client = self.client()
        volume = client.volumes.create(size, name='golden')
        wait_for_status(client.volumes, volume.id, 'available')
        snapshot = client.volume_snapshots.create(volume.id, name='golden')
        wait_for_status(client.volume_snapshots, snapshot.id, 'available')
        return snapshot.id


def wait_for_status(manager, resource_id, status, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = manager.get(resource_id).status
        if current == status:
            return
        if current.startswith('error'):
            raise AssertionError('%s went to %s' % (resource_id, current))
        time.sleep(0.2)
    raise AssertionError('%s did not reach %s' % (resource_id, status))


def wait_for(predicate, timeout=60.0, interval=0.25, what='condition'):
    return helpers.wait_for(predicate, timeout, interval, what)


class ManagerProcess:
    """One volume-pool-manager, its config file and its log."""

    def __init__(self, workdir, name, config_text):
        self.name = name
        self.conf_path = os.path.join(workdir, '%s.conf' % name)
        self.log_path = os.path.join(workdir, '%s.log' % name)
        with open(self.conf_path, 'w') as conf:
            conf.write(config_text)
        self.proc = None

    def db_sync(self):
        subprocess.run([os.path.join(BIN, 'volume-pool-manage'),
                        '--config-file', self.conf_path, 'db', 'sync'],
                       check=True, capture_output=True, timeout=120)

    def start(self):
        log = open(self.log_path, 'a')
        self.proc = subprocess.Popen(
            [os.path.join(BIN, 'volume-pool-manager'),
             '--config-file', self.conf_path],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, timeout=60):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=timeout)
        return self.proc.returncode if self.proc else None

    def kill(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait(timeout=30)

    def log(self):
        with open(self.log_path) as log:
            return log.read()

    def manage(self, *args, timeout=120):
        """``volume-pool-manage`` with this manager's config file, as the
        operator of this host runs it."""
        return subprocess.run(
            [os.path.join(BIN, 'volume-pool-manage'),
             '--config-file', self.conf_path, *args],
            capture_output=True, text=True, timeout=timeout)


class ReleaseMissing(Exception):
    """The clone does not hold the release a test needs (a shallow one)."""


def export_package(repo, revision, dest):
    """Write the ``volume_pool`` package of git ``revision`` under ``dest``
    (``git archive | tar -x``), so another release's code can run."""
    known = subprocess.run(
        ['git', '-C', repo, 'cat-file', '-e', '%s^{commit}' % revision],
        capture_output=True, text=True, timeout=60)
    if known.returncode != 0:
        raise ReleaseMissing(
            'commit %s is not in the history of %s (%s): fetch the full '
            'history (git fetch --unshallow) to test the upgrade from it'
            % (revision, repo, known.stderr.strip() or 'not found'))
    archive = subprocess.Popen(['git', '-C', repo, 'archive', revision,
                                'volume_pool'], stdout=subprocess.PIPE)
    try:
        subprocess.run(['tar', '-x', '-C', dest], stdin=archive.stdout,
                       check=True, timeout=120)
    finally:
        archive.stdout.close()
    if archive.wait(timeout=60) != 0:
        raise ReleaseMissing('git archive %s failed' % revision)
    return os.path.join(dest, 'volume_pool')


class SourceManagerProcess(ManagerProcess):
    """A manager run from the ``volume_pool`` package under ``source``
    (another release's tree) by this venv's python and libraries.

    ``source`` goes first on ``PYTHONPATH`` and is the working directory
    (``python -c`` puts the working directory before ``PYTHONPATH``); the
    first log line names the package file actually imported.
    """

    LOADED = 'volume_pool imported from '

    def __init__(self, workdir, name, config_text, source):
        super().__init__(workdir, name, config_text)
        self.source = source

    def start(self):
        env = dict(os.environ)
        env['PYTHONPATH'] = os.pathsep.join(
            p for p in (self.source, env.get('PYTHONPATH')) if p)
        code = ('import sys, volume_pool; '
                'sys.stderr.write(%r + volume_pool.__file__ + "\\n"); '
                'sys.stderr.flush(); '
                'from volume_pool.cmd.manager import main; '
                'sys.exit(main())' % self.LOADED)
        log = open(self.log_path, 'a')
        self.proc = subprocess.Popen(
            [sys.executable, '-c', code, '--config-file', self.conf_path],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.source)
        log.close()
        return self

    def imported_from(self):
        """The ``volume_pool/__init__.py`` the process imported, or None."""
        for line in self.log().splitlines():
            if line.startswith(self.LOADED):
                return line[len(self.LOADED):].strip()
        return None
