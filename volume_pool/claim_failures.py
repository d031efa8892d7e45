"""A claim that fails, told once: one log line an operator finds by the
claim key, and the outcome counted apart from the service's errors."""

import functools
import time

from oslo_log import log as logging

from volume_pool import exception
from volume_pool import metrics

LOG = logging.getLogger(__name__)

REFUSED = 'refused'  # the pool said no to the caller (its 4xx)
ERROR = 'error'      # the service failed (Cinder, the database, a bug)
# The pool label of a claim for a pool this manager does not serve: the
# caller's text would make a metric series per typo.
UNKNOWN_POOL = '(unknown)'


def outcome_of(exc):
    return REFUSED if exception.refused_by_pool(exc) else ERROR


def claim_failed(exc, *, cluster, pool, claim_key, context, seconds):
    """Count the failed claim and log it: INFO when refused, WARNING for a
    service error, each naming the error's type, key, pool and request."""
    outcome = outcome_of(exc)
    metrics.claim_answered(cluster, pool, outcome, seconds)
    level = LOG.info if outcome == REFUSED else LOG.warning
    level('Claim on pool %(pool)s failed (%(outcome)s): %(error)s: '
          '%(message)s [claim key %(key)s, request %(request)s]',
          {'pool': pool, 'outcome': outcome,
           'error': exc.__class__.__name__,
           'message': exception.first_line(exc) or '-',
           'key': claim_key or '-',
           'request': getattr(context, 'request_id', None) or '-'})


def told(claim):
    """Wrap a manager's ``claim(context, snapshot_type, ..., claim_key)``:
    whatever makes it fail (bad arguments, an unknown pool, Cinder) is
    counted and logged here, once."""
    @functools.wraps(claim)
    def wrapper(manager, context, snapshot_type, *args, **kwargs):
        started = time.monotonic()
        try:
            return claim(manager, context, snapshot_type, *args, **kwargs)
        except Exception as exc:
            claim_failed(
                exc, cluster=manager.cluster,
                claim_key=kwargs.get('claim_key'),
                pool=(snapshot_type if snapshot_type in manager.specs
                      else UNKNOWN_POOL),
                context=context, seconds=time.monotonic() - started)
            raise
    return wrapper
