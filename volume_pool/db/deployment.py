"""This deployment's identity, the one ``db sync`` made.

Every pool volume carries it in Cinder; two deployments that share a
Cinder project tell their volumes apart by it.
"""

from oslo_db import exception as db_exc
import sqlalchemy as sa

from volume_pool import exception
from volume_pool.db import api as db_api
from volume_pool.db import models

_QUERY = (sa.select(models.Deployment.identity)
          .where(models.Deployment.id == 1))


@db_api.retry
def identity(connectable=None):
    """The identity (of the database of ``connectable``, an engine or a
    connection; default the service's); raises ConfigError when the
    database has none (its schema predates it: ``volume-pool-manage db
    sync`` makes it)."""
    try:
        if isinstance(connectable, sa.engine.Engine):
            with connectable.connect() as connection:
                found = connection.execute(_QUERY).scalar_one_or_none()
        elif connectable is not None:
            found = connectable.execute(_QUERY).scalar_one_or_none()
        else:
            with db_api.reader() as session:
                found = session.execute(_QUERY).scalar_one_or_none()
    except (db_exc.DBNonExistentTable, sa.exc.ProgrammingError,
            sa.exc.OperationalError) as exc:
        if not _no_such_table(exc):
            raise
        found = None
    if not found:
        raise exception.ConfigError(
            reason='the database has no deployment identity; run '
                   '"volume-pool-manage db sync"')
    return found


def _no_such_table(exc):
    """True for the error of a schema without the table (an engine used
    directly raises SQLAlchemy's own, not oslo.db's)."""
    if isinstance(exc, db_exc.DBNonExistentTable):
        return True
    text = str(exc).lower()
    return 'deployment' in text and (
        'no such table' in text or "doesn't exist" in text or
        'does not exist' in text)
