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


def check_claim_args(snapshot_type, name, cluster, create_on_miss):
    """Raise InvalidClaimRequest naming the first bad argument."""
    invalid = exception.InvalidClaimRequest
    if not isinstance(snapshot_type, str) or not snapshot_type.strip():
        raise invalid(reason='snapshot_type must be a non-empty string, '
                             'got %r' % (snapshot_type,))
    if name is not None and (not isinstance(name, str) or
                             len(name) > MAX_NAME_LENGTH):
        raise invalid(reason='name must be a string of at most %d '
                             'characters, got %r' % (MAX_NAME_LENGTH, name))
    check_cluster_arg(cluster)
    if not isinstance(create_on_miss, bool):
        raise invalid(reason='create_on_miss must be a boolean, got %r'
                             % (create_on_miss,))


def check_pool_arg(pool):
    if not isinstance(pool, str) or not pool.strip():
        raise exception.InvalidClaimRequest(
            reason='pool must be a non-empty string, got %r' % (pool,))


def check_cluster_arg(cluster):
    if cluster is not None and (not isinstance(cluster, str) or
                                not cluster.strip()):
        raise exception.InvalidClaimRequest(
            reason='cluster must be a non-empty string, got %r' % (cluster,))


def check_project_arg(project_id):
    """``project_id`` of a claim into another project: None or an id."""
    if project_id is None:
        return
    if not isinstance(project_id, str) or not _PROJECT_ID_RE.match(
            project_id):
        raise exception.InvalidClaimRequest(
            reason='project_id must be a Keystone project id (32 hex '
                   'digits, or a UUID), got %r' % (project_id,))


MAX_CLAIM_KEY_LENGTH = 255
# A claim's caller may wait at most a day; anything longer is a mistake.
MAX_TIME_LEFT = 86400


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
