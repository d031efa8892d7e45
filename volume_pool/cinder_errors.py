"""Cinder's and keystoneauth's errors turned into volume_pool's typed ones.

:mod:`volume_pool.cinder` wraps each of its calls with :func:`translated`,
so the rest of the service tells a refusal (a 4xx: retrying will not
help) from an outage (a 5xx, a timeout, a lost connection: maybe later)
without ever catching a cinderclient or keystoneauth1 error.
"""

import functools

from cinderclient import exceptions as cinder_exc
from keystoneauth1 import exceptions as ks_exc

from volume_pool import exception


def translated(func):
    """Map cinderclient / keystoneauth errors to volume_pool exceptions."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except exception.VolumePoolException:
            raise
        except cinder_exc.OverLimit as exc:
            raise exception.CinderQuotaExceeded(reason=_describe(exc))
        except cinder_exc.ClientException as exc:
            code = getattr(exc, 'code', None) or 500
            if 400 <= code < 500:
                # Cinder understood and said no: retrying will not help.
                raise exception.CinderRequestRejected(reason=_describe(exc))
            # 5xx: worth a retry later.  A gateway's 502 or 504 is no
            # answer from Cinder: the request may still be applied.
            raise exception.CinderUnavailable(reason=_describe(exc),
                                              unanswered=code in (502, 504))
        except ks_exc.ConnectionError as exc:
            # A timeout or a lost connection: Cinder may apply it later.
            raise exception.CinderUnavailable(reason=_describe(exc),
                                              unanswered=True)
        except (ks_exc.http.HttpError, ks_exc.EndpointNotFound,
                ks_exc.ClientException) as exc:
            raise exception.CinderUnavailable(reason=_describe(exc))
    return wrapper


def _describe(exc):
    code = getattr(exc, 'code', None) or getattr(exc, 'http_status', None)
    text = str(exc) or exc.__class__.__name__
    if not code or ('HTTP %s' % code) in text:
        return text  # cinderclient's message may name the code already
    return '%s (HTTP %s)' % (text, code)
