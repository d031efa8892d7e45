"""Entry points.  Importing this package, before anything else of the
process, selects oslo.service's threading backend and keeps eventlet out.

eventlet is installed (oslo.service still depends on it) and three
libraries import it at their own import time when it is, whatever backend
is selected and with no option to say otherwise: oslo.utils'
``eventletutils`` and oslo.messaging's ``_utils`` (both on ``import
oslo_messaging``) and futurist's ``_utils`` (imported by the threading
backend itself).  Nothing here would use it, but imported it would cost
every process some 250 modules and 8 MB, and print its deprecation
warning on stderr at the start of every command.  So an import hook
refuses it: those libraries then see it as not installed, as they are
written to, and anything that really needed it fails with an error that
says why.  The hook is installed only here, in the processes of this
project: the client library (:mod:`volume_pool.rpcapi`) leaves its host
process alone.
"""

import importlib.abc
import sys


class EventletRefused(importlib.abc.MetaPathFinder):
    """Refuses ``eventlet`` and its submodules, with an error saying why."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == 'eventlet' or fullname.startswith('eventlet.'):
            raise ModuleNotFoundError(
                'eventlet is kept out of volume-pool processes: they run '
                "on oslo.service's threading backend", name=fullname)
        return None


def keep_eventlet_out():
    """Refuse eventlet from now on, unless something imported it already
    (then refusing its submodules would only break that importer)."""
    if 'eventlet' in sys.modules:
        return
    if not any(isinstance(finder, EventletRefused)
               for finder in sys.meta_path):
        sys.meta_path.insert(0, EventletRefused())


def select_threading_backend():
    """oslo.service's threading backend; imported here, after the hook,
    because the backend itself imports futurist."""
    from oslo_service import backend
    from oslo_service.backend import exceptions as backend_exceptions
    try:
        backend.init_backend(backend.BackendType.THREADING)
    except backend_exceptions.BackendAlreadySelected:
        pass


keep_eventlet_out()
select_threading_backend()
