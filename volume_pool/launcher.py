"""Runs the manager's Service in this process until SIGTERM or SIGINT.

oslo.service's threading backend has two launchers: one forks worker
processes (cotyledon), and ``ProcessLauncher(no_fork=True)`` runs the
service in the main process but logs a WARNING at every start, as for a
debug mode.  volume-pool-manager is one process under systemd, its
SIGHUP is a reload (:func:`volume_pool.cmd.manager.install_reload_handler`)
and SIGUSR2 a report: what it needs of a launcher is this much.  And it
returns, instead of ending the process from the signal handler, so the
transports are closed and the last log lines written.
"""

import os
import signal
import threading

from oslo_log import log as logging
from oslo_service import opts as service_opts

LOG = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# How often the main thread looks up from waiting: signal handlers run
# there only, between two bytecodes.
_WAKE_SECONDS = 1.0
_TOO_LONG = b'Graceful shutdown timeout exceeded, exiting now\n'


def _exit_now(signo, frame):
    # Nothing that takes a lock in a signal handler: no logging.
    os.write(2, _TOO_LONG)
    os._exit(1)


def serve(service, conf, on_started=None):
    """Start ``service``, call ``on_started()`` if given, wait for SIGTERM
    or SIGINT, then stop it within ``[DEFAULT] graceful_shutdown_timeout``
    seconds (else exit 1 at once, as oslo.service does).  Returns the exit
    code: 0."""
    service_opts.register_service_opts(conf)
    requested = threading.Event()
    caught = []

    def _request_stop(signo, frame):
        # A second signal while stopping changes nothing.
        caught.append(signo)
        requested.set()

    for signo in STOP_SIGNALS:
        signal.signal(signo, _request_stop)
    service.start()
    if on_started is not None:
        on_started()
    while not requested.wait(timeout=_WAKE_SECONDS):
        pass
    LOG.info('Caught %s, stopping', signal.Signals(caught[0]).name)
    if conf.graceful_shutdown_timeout:
        signal.signal(signal.SIGALRM, _exit_now)
        signal.alarm(conf.graceful_shutdown_timeout)
    service.stop()
    service.wait()
    signal.alarm(0)
    return 0
