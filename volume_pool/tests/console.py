"""The console scripts, run as a test runs them.

:class:`InProcess` calls the entry point's ``main(argv)`` in the test's
own process (the unit layer); :class:`Subprocess` runs the installed
script as an operator does (the functional layer).  Both answer as
``subprocess.run(..., capture_output=True, text=True)``.
"""

import contextlib
import importlib.metadata
import logging
import os
import subprocess
import sys
import threading

from oslo_config import cfg
from oslo_db.sqlalchemy import enginefacade

from volume_pool.db import api as db_api


def console_script(name):
    """The path of an installed console script of this package."""
    path = os.path.join(os.path.dirname(sys.executable), name)
    assert os.path.exists(path), '%s is not installed next to %s' % (
        name, sys.executable)
    return path


def entry_point(name):
    """The function the console script ``name`` runs."""
    for entry in importlib.metadata.entry_points(group='console_scripts'):
        if entry.name == name and entry.value.startswith('volume_pool.'):
            return entry.load()
    raise LookupError('no console script %s' % name)


class Subprocess:
    """Run the installed console script in a process of its own."""

    def __call__(self, script, *args, timeout=120):
        return subprocess.run([console_script(script), *args],
                              capture_output=True, text=True,
                              timeout=timeout)


class InProcess:
    """Run the console script's ``main(argv)`` in this process.

    What a process would start afresh is made fresh for the call and put
    back after it: the global CONF (parsed anew; the subcommand option a
    main registers is dropped again, or the next main would find two),
    the database engine (``db_api.configure`` configures a new one; see
    :class:`_ScriptsOwnEngine`), the logging that oslo.log's setup
    rewires, and ``sys.argv``.  ``conf`` is the test's CONF fixture,
    ``capsys`` captures what the script prints.  A script that serves its
    own manager in this process (the demo) is called with
    ``own_manager=True``: its engine is then every thread's, as the
    manager's threads are its own.
    """

    def __init__(self, conf, capsys):
        self._conf = conf
        self._capsys = capsys

    def __call__(self, script, *args, timeout=None, own_manager=False):
        main = entry_point(script)
        self._capsys.readouterr()  # only this call's output
        self._conf.reset()
        saved_engine, saved_argv = db_api.context_manager, sys.argv
        engine = _ScriptsOwnEngine(saved_engine)
        db_api.context_manager = engine.own if own_manager else engine
        sys.argv = [script, *args]  # argparse's program name
        try:
            with _logging_restored():
                code = _exit_code(main, list(args))
        finally:
            sys.argv = saved_argv
            db_api.context_manager = saved_engine
            engine.own.dispose_pool()
            self._conf.reset()
            _drop_subcommands(self._conf)
        out, err = self._capsys.readouterr()
        return subprocess.CompletedProcess([script, *args], code, out, err)


class _ScriptsOwnEngine:
    """``db_api.context_manager`` while a script runs: a new one in the
    thread that runs it, as its own process would have; the test's in
    every other thread, such as those of a manager serving RPC in this
    process."""

    def __init__(self, others):
        self.own = enginefacade.transaction_context()
        self._others = others
        self._thread = threading.current_thread()

    def __getattr__(self, name):
        mine = threading.current_thread() is self._thread
        return getattr(self.own if mine else self._others, name)


def _exit_code(main, argv):
    """What the process would exit with: main's return value, or the
    code of a SystemExit (argparse's --help and usage errors)."""
    try:
        return main(argv) or 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        sys.stderr.write('%s\n' % exc.code)
        return 1


def _drop_subcommands(conf):
    for name in list(conf):
        try:
            opt = conf._get_opt_info(name)['opt']
        except cfg.NoSuchOptError:
            continue  # a group
        if isinstance(opt, cfg.SubCommandOpt):
            conf.unregister_opt(opt)


@contextlib.contextmanager
def _logging_restored():
    """Put back the loggers' levels and handlers (and the excepthook)
    that oslo.log's setup replaces: pytest's capture hangs on them."""
    loggers = [logging.getLogger()] + [
        logger for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)]
    saved = [(logger, logger.level, list(logger.handlers), logger.propagate,
              logger.disabled) for logger in loggers]
    known = set(loggers)
    excepthook = sys.excepthook
    try:
        yield
    finally:
        sys.excepthook = excepthook
        for logger, level, handlers, propagate, disabled in saved:
            logger.setLevel(level)
            logger.handlers[:] = handlers
            logger.propagate = propagate
            logger.disabled = disabled
        for logger in list(logging.root.manager.loggerDict.values()):
            if isinstance(logger, logging.Logger) and logger not in known:
                logger.setLevel(logging.NOTSET)
                logger.handlers[:] = []
