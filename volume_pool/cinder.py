"""Cinder calls the pool needs, with Cinder's errors turned into ours.

python-cinderclient over a keystoneauth1 session loaded from ``[cinder]``,
so every call has the session timeout and any auth plugin works.  The rest
of the service sees :class:`CinderVolume` records and
:mod:`volume_pool.exception` errors only (:mod:`volume_pool.cinder_errors`
turns the libraries' errors into them), never a cinderclient object.
"""

import copy
import dataclasses
from email import utils as email_utils
import functools
import threading

from cinderclient import api_versions
from cinderclient import client as cinder_client
from cinderclient import exceptions as cinder_exc
from oslo_log import log as logging
from oslo_utils import timeutils

from volume_pool import cinder_errors
from volume_pool import cinder_session
from volume_pool import cluster_names
from volume_pool import exception
from volume_pool.conf import cinder as cinder_conf

LOG = logging.getLogger(__name__)

# Cinder metadata keys the pool owns.  ``volume_pool`` is part of the
# service's contract with its users; the request key lets sync match a
# volume created just before a crash to the row written for it.
TAG_POOL = 'volume_pool'
TAG_CLUSTER = 'volume_pool_cluster'
TAG_REQUEST = 'volume_pool_request'
# The deployment that owns the volume (its database's identity): two
# deployments sharing a Cinder project list, adopt, trim and delete only
# their own volumes.
TAG_DEPLOYMENT = 'volume_pool_deployment'
POOL_TAGS = (TAG_POOL, TAG_CLUSTER, TAG_REQUEST, TAG_DEPLOYMENT)
# A claimed volume under lease carries this key, valued with its cluster,
# and the deployment's, so sync lists every leased volume of a cluster in
# one request.
TAG_LEASE = 'volume_pool_lease'

ERROR_STATUSES = frozenset(('error', 'error_restoring', 'error_extending',
                            'error_managing', 'error_deleting'))
# Microversion from which a volume listing filters on ``updated_at`` with a
# comparison operator (``updated_at=gte:<ISO 8601 time>``).
CHANGES_VERSION = api_versions.APIVersion('3.60')
# A volume in one of these is being used by somebody: it is not ours now.
IN_USE_STATUSES = frozenset(('in-use', 'attaching', 'detaching', 'reserved',
                             'maintenance', 'awaiting-transfer',
                             'retyping', 'backing-up', 'downloading',
                             'uploading'))


@dataclasses.dataclass(frozen=True)
class CinderVolume:
    """The fields of a Cinder volume the pool acts on."""

    id: str
    name: str | None
    status: str
    size: int
    snapshot_id: str | None
    metadata: dict
    attached: bool
    # Cinder's ISO 8601 text, parsed only when asked (created_at): a sync
    # of a cluster lists tens of thousands and needs few.
    created: str | None = None
    # The owning project; Cinder shows it to admins only (else None).
    project_id: str | None = None
    # When Cinder last changed it, Cinder's ISO 8601 text (its clock).
    updated: str | None = None

    @classmethod
    def from_resource(cls, volume):
        """From a cinderclient resource or the dict of Cinder's answer."""
        info = getattr(volume, '_info', volume)
        return cls(id=info['id'], name=info.get('name'),
                   status=info.get('status'), size=info.get('size'),
                   snapshot_id=info.get('snapshot_id'),
                   metadata=dict(info.get('metadata') or {}),
                   attached=bool(info.get('attachments')),
                   created=info.get('created_at') or None,
                   project_id=info.get('os-vol-tenant-attr:tenant_id'),
                   updated=info.get('updated_at') or None)

    @functools.cached_property
    def created_at(self):
        """When Cinder created it (naive UTC), or None if not said."""
        return _parse_time(self.created)

    @functools.cached_property
    def updated_at(self):
        """When Cinder last changed it (naive UTC, Cinder's clock), or
        None if not said."""
        return _parse_time(self.updated)

    @property
    def pool(self):
        return self.metadata.get(TAG_POOL)

    @property
    def request_id(self):
        return self.metadata.get(TAG_REQUEST)

    @property
    def in_error(self):
        return self.status in ERROR_STATUSES

    @property
    def in_use(self):
        return self.attached or self.status in IN_USE_STATUSES


def _parse_time(text):
    if not text:
        return None
    return timeutils.normalize_time(timeutils.parse_isotime(text))


def _date_of(resp):
    """The ``Date`` header of an answer (naive UTC), or None."""
    text = getattr(resp, 'headers', {}).get('Date')
    if not text:
        return None
    try:
        moment = email_utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return timeutils.normalize_time(moment)


class Listing(list):
    """The volumes of one listing, and what Cinder's clock said.

    ``server_time``: the ``Date`` of Cinder's answer to the first page
    (naive UTC, whole seconds), or None when it sent none.
    """

    server_time = None

    def last_change(self):
        """The latest ``updated_at`` of the volumes listed, or None."""
        stamps = [v.updated_at for v in self if v.updated_at is not None]
        return max(stamps) if stamps else None


def cluster_tag(cluster):
    """The cluster tag's value: the cluster's name
    (:data:`volume_pool.cluster_names.NO_CLUSTER` with none), so a
    cluster's volumes are one filtered listing in every mode."""
    return cluster_names.name_of(cluster)


def pool_tags(pool, cluster, request_id, deployment=None):
    """Metadata every pool volume carries (the contract: pool and cluster
    tags, the request id, and the deployment's identity, which a
    deployment's :class:`Cinder` handle adds to what it writes)."""
    tags = {TAG_POOL: pool, TAG_CLUSTER: cluster_tag(cluster),
            TAG_REQUEST: request_id}
    if deployment:
        tags[TAG_DEPLOYMENT] = deployment
    return tags


def lease_tags(cluster, deployment=None):
    """Metadata of a claimed volume while its lease runs (the deployment's
    identity too, which a deployment's :class:`Cinder` handle adds)."""
    tags = {TAG_LEASE: cluster_tag(cluster)}
    if deployment:
        tags[TAG_DEPLOYMENT] = deployment
    return tags


def is_pool_volume_of(volume, pool, cluster, name, deployment=None):
    """True when ``volume`` already carries ``pool``'s tags and name (and
    ``deployment``'s identity, when given)."""
    return (volume.metadata.get(TAG_POOL) == pool and
            volume.metadata.get(TAG_CLUSTER) == cluster_tag(cluster) and
            (not deployment or
             volume.metadata.get(TAG_DEPLOYMENT) == deployment) and
            TAG_LEASE not in volume.metadata and volume.name == name)


def of_deployment(metadata, deployment):
    """``metadata`` with the deployment's identity added when it carries
    pool or lease tags (what a deployment's handle writes)."""
    if deployment and (TAG_POOL in metadata or TAG_LEASE in metadata):
        return dict(metadata, **{TAG_DEPLOYMENT: deployment})
    return dict(metadata)


# Handles on other projects kept at once (each holds a session and, with
# Keystone, a token).
_MAX_PROJECT_HANDLES = 64


class Cinder:
    """A thread-safe handle on Cinder (one keystoneauth session).

    A handle made :meth:`for_deployment` acts for one deployment: every
    pool or lease tag set it writes carries the deployment's identity, and
    every listing it makes is filtered by it, so it never sees, adopts,
    trims or deletes another deployment's volumes.
    """

    def __init__(self, conf, project_id=None, deployment=None):
        """``project_id``: act as that project, not ``[cinder]``'s own;
        ``deployment``: the identity of the deployment it acts for."""
        self._conf = conf
        self._deployment = deployment
        self._projects = {}
        self._projects_lock = threading.Lock()
        auth, session = cinder_session.load(conf, project_id)
        adapter_conf = conf[cinder_conf.GROUP]
        self._page_size = adapter_conf.list_page_size
        self._lists_changes = None  # asked of Cinder when first needed
        self._auth = auth
        self._session = session
        self._client = cinder_client.Client(
            adapter_conf.api_version,
            session=session,
            auth=auth,
            service_type=(adapter_conf.service_type or
                          cinder_conf.DEFAULT_SERVICE_TYPE),
            service_name=adapter_conf.service_name,
            interface=(adapter_conf.valid_interfaces or ['public'])[0],
            region_name=adapter_conf.region_name,
            endpoint_override=adapter_conf.endpoint_override,
            connect_retries=adapter_conf.connect_retries)

    @property
    def deployment(self):
        """The identity of the deployment this handle acts for, or None."""
        return self._deployment

    def for_deployment(self, deployment):
        """A handle on the same session that acts for ``deployment``."""
        handle = copy.copy(self)
        handle._deployment = deployment
        handle._projects = {}
        handle._projects_lock = threading.Lock()
        return handle

    @property
    def page_size(self):
        """Volumes asked for per page of a listing."""
        return self._page_size

    # -- acting as another project (claims into a project) ----------------

    def as_project(self, project_id):
        """A handle on Cinder as ``project_id`` (cached, thread-safe).

        Raises ConfigError when ``[cinder]`` cannot be scoped to another
        project (see :func:`volume_pool.cinder_session.load`).
        """
        with self._projects_lock:
            handle = self._projects.get(project_id)
            if handle is None:
                if len(self._projects) >= _MAX_PROJECT_HANDLES:
                    self._projects.clear()
                handle = Cinder(self._conf, project_id=project_id,
                                deployment=self._deployment)
                self._projects[project_id] = handle
            return handle

    @cinder_errors.translated
    def own_project_id(self):
        """The project this handle acts as (noauth: from the config;
        Keystone: from the token)."""
        return self._auth.get_project_id(self._session)

    # -- volume transfers ----------------------------------------------------

    @cinder_errors.translated
    def create_transfer(self, volume_id, name):
        """Offer a volume to another project; returns (id, auth key).

        Cinder holds the volume ``awaiting-transfer`` until the transfer
        is accepted or deleted.
        """
        try:
            transfer = self._client.transfers.create(volume_id, name=name)
        except cinder_exc.NotFound:
            raise exception.VolumeNotFound(volume_id=volume_id)
        return transfer.id, transfer.auth_key

    @cinder_errors.translated
    def accept_transfer(self, transfer_id, auth_key):
        """Accept a transfer as this handle's project."""
        self._client.transfers.accept(transfer_id, auth_key)

    @cinder_errors.translated
    def delete_transfer(self, transfer_id):
        """Withdraw a transfer; one already gone counts as withdrawn."""
        try:
            self._client.transfers.delete(transfer_id)
        except cinder_exc.NotFound:
            pass

    @cinder_errors.translated
    def pending_transfers(self, volume_id):
        """``[(id, name)]`` of the transfers of a volume that this
        handle's project offered and nobody accepted yet."""
        return [(t.id, getattr(t, 'name', None))
                for t in self._client.transfers.list()
                if getattr(t, 'volume_id', None) == volume_id]

    def cancel_transfers(self, volume_id):
        """Withdraw every pending transfer of a volume (a claim that
        crashed between creating and accepting one); returns how many."""
        pending = self.pending_transfers(volume_id)
        for transfer_id, _name in pending:
            self.delete_transfer(transfer_id)
        return len(pending)

    # -- volumes ------------------------------------------------------------

    @cinder_errors.translated
    def create_volume(self, *, snapshot_id, name, metadata, size=None,
                      volume_type=None, availability_zone=None):
        """Ask Cinder for a volume from a snapshot; it starts 'creating'."""
        if size is None:
            size = self.get_snapshot(snapshot_id)['size']
        try:
            volume = self._client.volumes.create(
                size, snapshot_id=snapshot_id, name=name,
                metadata=of_deployment(metadata, self._deployment),
                volume_type=volume_type,
                availability_zone=availability_zone)
        except cinder_exc.NotFound:
            raise exception.SnapshotNotFound(snapshot_id=snapshot_id)
        return CinderVolume.from_resource(volume)

    @cinder_errors.translated
    def get_volume(self, volume_id):
        try:
            return CinderVolume.from_resource(
                self._client.volumes.get(volume_id))
        except cinder_exc.NotFound:
            raise exception.VolumeNotFound(volume_id=volume_id)

    @cinder_errors.translated
    def lists_changes(self):
        """True when Cinder's API filters a listing on ``updated_at``
        (microversion 3.60 and later).  Asked once per handle (the versions
        document at the endpoint's root); an older Cinder is logged once.
        Raises a CinderException when Cinder cannot tell (asked again
        next time)."""
        if self._lists_changes is None:
            highest = api_versions.get_highest_version(self._client)
            self._lists_changes = highest >= CHANGES_VERSION
            if not self._lists_changes:
                LOG.info('Cinder\'s API goes up to microversion %(have)s; '
                         'listing only the volumes changed since the last '
                         'sync needs %(need)s: every sync lists every '
                         'volume of the cluster.',
                         {'have': highest.get_string(),
                          'need': CHANGES_VERSION.get_string()})
        return self._lists_changes

    @cinder_errors.translated
    def list_volumes(self, metadata, any_deployment=False,
                     changed_since=None):
        """Every volume whose metadata matches, filtered by Cinder, paged:
        a :class:`Listing`.

        One request per ``list_page_size`` volumes: sync of 10,000 volumes is
        ten requests, not ten thousand.  Only this handle's deployment's
        volumes, unless ``any_deployment`` (a request id, which names one
        volume of one row, may be looked up on a volume an earlier release
        tagged).  With ``changed_since`` (naive UTC, Cinder's clock), only
        the volumes Cinder changed at or after it (``updated_at=gte:``,
        microversion 3.60: ask :meth:`lists_changes` first); a deleted
        volume is never listed.  No ``with_count``: Cinder would count the
        matches again for every page, where a listing whose size is a
        multiple of the page size costs one empty page at the end.
        """
        if self._deployment and not any_deployment:
            metadata = dict(metadata, **{TAG_DEPLOYMENT: self._deployment})
        search_opts = {'metadata': dict(metadata)}
        microversion = None
        if changed_since is not None:
            search_opts['updated_at'] = 'gte:%s' % (
                changed_since.strftime('%Y-%m-%dT%H:%M:%S.%fZ'))
            microversion = CHANGES_VERSION.get_string()
        volumes = Listing()
        marker = None
        while True:
            page, server_time = self._list_page(search_opts, marker,
                                                microversion)
            if marker is None:
                volumes.server_time = server_time
            listed = [CinderVolume.from_resource(v) for v in page]
            # Cinder on MariaDB compares the values without case: keep the
            # exact matches, or pool "Gold" would see the volumes of "gold".
            volumes.extend(v for v in listed if all(
                v.metadata.get(key) == value
                for key, value in metadata.items()))
            if len(page) < self._page_size:
                return volumes
            marker = page[-1]['id']

    def _list_page(self, search_opts, marker, microversion=None):
        """One page of ``GET /volumes/detail``: ``(volume dicts, the time
        of Cinder's answer or None)``.

        The URL and the request are cinderclient's; the answer is read as
        the dicts Cinder sent, without a cinderclient resource per volume
        (a listing of a cluster's tens of thousands of volumes spent most
        of its time building them).
        """
        manager = self._client.volumes
        url = manager._build_list_url('volumes', detailed=True,
                                      search_opts=search_opts,
                                      marker=marker, limit=self._page_size)
        kwargs = {'microversion': microversion} if microversion else {}
        resp, body = self._client.client.get(url, **kwargs)
        if not isinstance(body, dict):
            raise exception.CinderUnavailable(
                reason='the volume listing answered no JSON object')
        return body.get('volumes') or [], _date_of(resp)

    @cinder_errors.translated
    def update_volume(self, volume_id, name=None, metadata=None):
        """Rename and set the metadata in one request.

        Cinder's volume update replaces the whole user metadata when the
        body carries ``metadata``: a claim drops the pool tags with the
        rename in its only Cinder call, and sync puts them back the same
        way when it returns an abandoned claim to the pool.
        """
        fields = {'metadata': of_deployment(metadata or {},
                                            self._deployment)}
        if name is not None:
            fields['name'] = name
        try:
            info = self._client.volumes.update(volume_id, **fields)
        except cinder_exc.NotFound:
            raise exception.VolumeNotFound(volume_id=volume_id)
        return CinderVolume.from_resource(info['volume'])

    @cinder_errors.translated
    def add_tags(self, volume_id, metadata):
        """Merge keys into the volume's metadata (the others stay): a
        claim that replaces the metadata meanwhile keeps its own."""
        try:
            self._client.volumes.set_metadata(volume_id, dict(metadata))
        except cinder_exc.NotFound:
            raise exception.VolumeNotFound(volume_id=volume_id)

    @cinder_errors.translated
    def remove_lease_tag(self, volume_id):
        """Drop the lease key and the deployment's (a confirmed or used
        claim: nothing of the pool stays on the caller's volume); a volume
        or a key already gone counts as removed."""
        volumes = self._client.volumes
        try:
            # Both keys in one conditional PUT (microversion 3.15 on), so
            # a volume is never left with a lease key the deployment's
            # lease listing cannot find.  Nothing is done unless both are
            # there: then the lease key alone (a volume an earlier release
            # leased has no deployment key).
            if volumes.delete_metadata(volume_id,
                                       [TAG_LEASE, TAG_DEPLOYMENT]) is None:
                volumes.delete_metadata(volume_id, [TAG_LEASE])
        except cinder_exc.NotFound:
            pass

    @cinder_errors.translated
    def delete_volume(self, volume_id):
        """Delete a volume; a volume already gone counts as deleted.

        Cinder refuses to delete a volume that is still 'creating'; the
        pool then resets it to 'error' first (an admin action).
        """
        try:
            self._client.volumes.delete(volume_id)
        except cinder_exc.NotFound:
            return
        except cinder_exc.BadRequest:
            volume = self.get_volume(volume_id)
            if volume.in_use:
                raise
            LOG.info('Volume %(id)s is %(status)s; resetting it to error '
                     'so that it can be deleted.',
                     {'id': volume_id, 'status': volume.status})
            self._client.volumes.reset_state(volume_id, 'error')
            self._client.volumes.delete(volume_id)

    @cinder_errors.translated
    def remove_pool_tags(self, volume):
        """Drop the pool's keys from a volume, keeping anybody else's."""
        keys = [k for k in POOL_TAGS if k in volume.metadata]
        if keys:
            try:
                self._client.volumes.delete_metadata(volume.id, keys)
            except cinder_exc.NotFound:
                pass

    # -- snapshots ----------------------------------------------------------

    @cinder_errors.translated
    def get_snapshot(self, snapshot_id):
        try:
            snap = self._client.volume_snapshots.get(snapshot_id)
        except cinder_exc.NotFound:
            raise exception.SnapshotNotFound(snapshot_id=snapshot_id)
        return {'id': snap.id, 'size': snap.size, 'status': snap.status}
