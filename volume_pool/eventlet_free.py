"""Keep eventlet out of a process that has not taken it in.

eventlet is installed wherever oslo.service is, and three libraries import
it at their own import time when it is, whatever oslo.service backend is
selected: oslo.utils' ``eventletutils`` and oslo.messaging's ``_utils``
(both on ``import oslo_messaging``) and futurist's ``_utils`` (imported by
oslo.service's threading backend).  And ``import oslo_messaging`` selects
oslo.service's backend (its ``server`` module imports
``oslo_service.service``), eventlet's unless the process chose first.
Imported, eventlet costs some 250 modules and prints its deprecation
warning on stderr.  Refused, those libraries see it as not installed, as
they are written to.

The processes of this project refuse it for good (:mod:`volume_pool.cmd`).
The client library refuses it only while it imports oslo.messaging, and
only in a process that has taken no side yet: one that imported eventlet
or oslo.messaging first keeps what it has.
"""

import contextlib
import importlib.abc
import importlib.util
import sys


class EventletRefused(importlib.abc.MetaPathFinder):
    """Refuses ``eventlet`` and its submodules, with an error saying why."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == 'eventlet' or fullname.startswith('eventlet.'):
            raise ModuleNotFoundError(
                'eventlet is kept out of this process: it runs on '
                "oslo.service's threading backend", name=fullname)
        return None


def _refusing():
    return any(isinstance(finder, EventletRefused)
               for finder in sys.meta_path)


def refuse_eventlet():
    """Refuse eventlet from now on, unless something imported it already
    (then refusing its submodules would only break that importer)."""
    if 'eventlet' not in sys.modules and not _refusing():
        sys.meta_path.insert(0, EventletRefused())


def threading_backend_installed():
    """oslo.service's threading backend loads only with its ``threading``
    extra (cotyledon); without it, eventlet's is the only one."""
    return importlib.util.find_spec('cotyledon') is not None


def undecided():
    """True while nothing in this process chose eventlet or not: neither
    eventlet nor oslo.messaging is imported, no oslo.service backend is
    selected, and the threading one can be."""
    if 'eventlet' in sys.modules or 'oslo_messaging' in sys.modules:
        return False
    if not threading_backend_installed():
        return False
    from oslo_service import backend
    return backend.get_backend_type() is None


@contextlib.contextmanager
def importing_without_eventlet():
    """Within the block, imports see eventlet as not installed and
    oslo.service defaults to its threading backend; in a process that
    already decided, the block changes nothing."""
    if not undecided():
        yield
        return
    from oslo_service import backend
    # The default only: a process that selects a backend later still can.
    backend.register_backend_default_hook(
        lambda: backend.BackendType.THREADING)
    finder = EventletRefused()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
