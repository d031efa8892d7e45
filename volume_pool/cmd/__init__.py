"""Entry points.  Importing this package, before anything else of the
process, selects oslo.service's threading backend and keeps eventlet out
for good (why: :mod:`volume_pool.eventlet_free`); anything that really
needed eventlet then fails with an error that says why.  The client
library (:mod:`volume_pool.rpcapi`) refuses it only while it imports
oslo.messaging, and leaves its host process alone otherwise.
"""

from volume_pool import eventlet_free

EventletRefused = eventlet_free.EventletRefused
keep_eventlet_out = eventlet_free.refuse_eventlet


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
