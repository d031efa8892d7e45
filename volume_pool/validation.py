"""Checks of RPC arguments, shared by the client and the manager.

The client checks to fail fast without a round trip; the manager checks
again because not every caller uses the client.
"""

import re

from volume_pool import exception

MAX_NAME_LENGTH = 255
# Keystone project ids are 32 hex digits; some deployments use dashed
# UUIDs.  Anything else cannot name a Cinder project.
_PROJECT_ID_RE = re.compile(r'^[0-9a-fA-F]{8}-?(?:[0-9a-fA-F]{4}-?){3}'
                            r'[0-9a-fA-F]{12}$')


# An error quotes at most this much of what was sent: a megabyte of input
# must not come back in the answer or fill the log.
MAX_QUOTED = 64


def quote(value):
    """``repr(value)``, cut to a short prefix."""
    text = repr(value)
    if len(text) > MAX_QUOTED:
        text = text[:MAX_QUOTED] + '... (%d characters)' % len(text)
    return text


def _is_text(value, max_length=MAX_NAME_LENGTH):
    """Printable text (no control characters) of 1 to ``max_length``."""
    return (isinstance(value, str) and value.strip() != '' and
            len(value) <= max_length and value.isprintable())


def check_claim_args(snapshot_type, name, cluster, create_on_miss):
    """Raise InvalidClaimRequest naming the first bad argument."""
    invalid = exception.InvalidClaimRequest
    if not _is_text(snapshot_type):
        raise invalid(reason='snapshot_type must be printable text of 1 to '
                             '%d characters, got %s'
                             % (MAX_NAME_LENGTH, quote(snapshot_type)))
    if name is not None and not _is_text(name):
        raise invalid(reason='name must be printable text of 1 to %d '
                             'characters (Cinder\'s limit), got %s'
                             % (MAX_NAME_LENGTH, quote(name)))
    check_cluster_arg(cluster)
    if not isinstance(create_on_miss, bool):
        raise invalid(reason='create_on_miss must be a boolean, got %s'
                             % quote(create_on_miss))


def check_pool_arg(pool):
    if not _is_text(pool):
        raise exception.InvalidClaimRequest(
            reason='pool must be printable text of 1 to %d characters, got '
                   '%s' % (MAX_NAME_LENGTH, quote(pool)))


def check_cluster_arg(cluster):
    if cluster is not None and not _is_text(cluster):
        raise exception.InvalidClaimRequest(
            reason='cluster must be printable text of 1 to %d characters, '
                   'got %s' % (MAX_NAME_LENGTH, quote(cluster)))


def check_host_arg(host):
    """The name of one manager (its ``host`` option)."""
    if not _is_text(host):
        raise exception.Invalid(
            reason='host must be printable text of 1 to %d characters, '
                   'got %s' % (MAX_NAME_LENGTH, quote(host)))


def check_project_arg(project_id):
    """``project_id`` of a claim into another project: None or an id."""
    if project_id is None:
        return
    if not isinstance(project_id, str) or not _PROJECT_ID_RE.match(
            project_id):
        raise exception.InvalidClaimRequest(
            reason='project_id must be a Keystone project id (32 hex '
                   'digits, or a UUID), got %s' % quote(project_id))


def project_key(project_id):
    """A project id as compared: the dashes of a UUID do not count."""
    return project_id.replace('-', '').lower()


MAX_CLAIM_KEY_LENGTH = 255
# A claim's caller may wait at most a day; anything longer is a mistake.
MAX_TIME_LEFT = 86400


def check_project_allowed(project_id, claim_projects):
    """Anyone on the bus may call claim: only the projects of
    ``[volume_pool] claim_projects`` may receive volumes."""
    if project_id is None:
        return
    allowed = {project_key(p) for p in claim_projects}
    if project_key(project_id) not in allowed:
        raise exception.ProjectNotAllowed(project_id=project_id)


def check_claim_key(claim_key, required=False):
    """A caller's idempotency key: printable text, at most 255 characters."""
    if claim_key is None and not required:
        return
    if (not isinstance(claim_key, str) or not claim_key.strip() or
            len(claim_key) > MAX_CLAIM_KEY_LENGTH or
            not claim_key.isprintable()):
        raise exception.InvalidClaimRequest(
            reason='claim_key must be printable text of 1 to %d '
                   'characters' % MAX_CLAIM_KEY_LENGTH)


def check_time_left(time_left):
    """Seconds the caller still waits: a positive number, or None."""
    if time_left is None:
        return
    if (isinstance(time_left, bool) or
            not isinstance(time_left, (int, float)) or
            not 0 < time_left <= MAX_TIME_LEFT):
        raise exception.InvalidClaimRequest(
            reason='time_left must be a number of seconds in (0, %d]'
                   % MAX_TIME_LEFT)
