"""Entry points.  Importing this package keeps eventlet out of the process
and selects oslo.service's threading backend before anything else touches
oslo.service."""

import sys

# No eventlet anywhere.  It is installed as a dependency of oslo.service,
# and libraries that probe for it (futurist) would import it; an entry of
# None makes that probe fail as if it were not installed.
if 'eventlet' not in sys.modules:
    sys.modules['eventlet'] = None

from oslo_service import backend  # noqa: E402
from oslo_service.backend import exceptions as backend_exceptions  # noqa

try:
    backend.init_backend(backend.BackendType.THREADING)
except backend_exceptions.BackendAlreadySelected:
    pass
