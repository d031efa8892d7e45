"""The database server's clock, the one clock every manager shares.

Claim deadlines, heartbeats and leases are compared across managers whose
own clocks may disagree by seconds or more, so they are all written and
read with the database's time, never a manager's.
"""

import datetime

import sqlalchemy as sa
from sqlalchemy.ext import compiler
from sqlalchemy.sql import expression


class utcnow(expression.FunctionElement):  # noqa: N801 (SQL function)
    """The server's current UTC time, to the microsecond, naive."""

    type = sa.DateTime()
    inherit_cache = True


@compiler.compiles(utcnow, 'mysql')
def _mysql_utcnow(element, compiler_, **kw):
    return 'UTC_TIMESTAMP(6)'


@compiler.compiles(utcnow, 'postgresql')
def _postgresql_utcnow(element, compiler_, **kw):
    # clock_timestamp(), not now(): the time of the statement, not of the
    # start of its transaction.
    return "(clock_timestamp() AT TIME ZONE 'UTC')"


@compiler.compiles(utcnow, 'sqlite')
def _sqlite_utcnow(element, compiler_, **kw):
    # Six digits of fraction, as SQLAlchemy stores DateTime on SQLite.
    return "strftime('%Y-%m-%d %H:%M:%f000', 'now')"


def now(session):
    """The database's current UTC time, read in ``session``."""
    return session.execute(sa.select(utcnow())).scalar_one()


def later(moment, seconds):
    """``moment`` plus ``seconds`` (a float), for deadlines and leases."""
    return moment + datetime.timedelta(seconds=seconds)


def iso(moment):
    """A database time as the RPC answers show it (``lease_expires_at``)."""
    return None if moment is None else moment.strftime(
        '%Y-%m-%dT%H:%M:%S.%fZ')
