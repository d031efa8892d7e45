"""The Cinder API calls the simulator answers, and their routes.

Every handler runs under the simulator's lock and returns
``(status, body)``; :class:`VolumeAPI` is mixed into
:class:`volume_pool.simulator.cinder_api.CinderSimulator`.
"""

import ast
import re
from urllib import parse
import uuid

from volume_pool.simulator import store as sim_store
from volume_pool.simulator.store import ApiError


class VolumeAPI:
    """Volumes, their metadata and actions, transfers and snapshots."""

    def _list_volumes(self, query, body, detailed=True):
        volumes = self._store.live_volumes()
        filters = dict(query)
        if filters.pop('all_tenants', '0') in ('0', 'false', 'False'):
            volumes = [v for v in volumes
                       if v['os-vol-tenant-attr:tenant_id'] ==
                       self._store.project]
        if 'metadata' in filters:
            try:
                wanted = ast.literal_eval(filters['metadata'])
            except (ValueError, SyntaxError):
                raise ApiError(400, 'Invalid metadata filter.')
            # Cinder on MariaDB compares without case, as here.
            volumes = [v for v in volumes
                       if all(str(v['metadata'].get(k)).lower() ==
                              str(val).lower()
                              for k, val in wanted.items())]
        for key in ('status', 'name'):
            if key in filters:
                volumes = [v for v in volumes if v[key] == filters[key]]
        # 3.45: the total that matches, whatever the page.
        with_count = filters.pop('with_count', 'false').lower() in (
            'true', '1', 'yes')
        total = len(volumes)
        volumes.sort(key=lambda v: (v['created_at'], v['id']), reverse=True)
        if 'marker' in filters:
            ids = [v['id'] for v in volumes]
            if filters['marker'] not in ids:
                raise ApiError(400, 'marker [%s] not found'
                               % filters['marker'])
            volumes = volumes[ids.index(filters['marker']) + 1:]
        limit = self.max_limit
        if 'limit' in filters:
            try:
                limit = min(int(filters['limit']), self.max_limit)
            except ValueError:
                raise ApiError(400, 'limit param must be an integer')
        page = volumes[:limit]
        result = {'volumes': [sim_store.public(v) if detailed else
                              {'id': v['id'], 'name': v['name']}
                              for v in page]}
        if with_count:
            result['count'] = total
        if len(page) == limit and len(volumes) > limit:
            next_query = dict(filters, marker=page[-1]['id'])
            result['volumes_links'] = [{
                'rel': 'next',
                'href': '%s/%s/volumes%s?%s' % (
                    self.endpoint, self._store.project,
                    '/detail' if detailed else '',
                    parse.urlencode(next_query))}]
        return 200, result

    def _create_volume(self, query, body):
        spec = (body or {}).get('volume')
        if not isinstance(spec, dict):
            raise ApiError(400, 'Missing required element volume in '
                                'request body.')
        snapshot_id = spec.get('snapshot_id')
        size = spec.get('size')
        if snapshot_id:
            snapshot = self._store.snapshot(snapshot_id)
            if snapshot['status'] != 'available':
                raise ApiError(400, 'Invalid snapshot: Originating snapshot '
                                    'status must be one of available.')
            if size is None:
                size = snapshot['size']
            if int(size) < snapshot['size']:
                raise ApiError(400, 'Invalid input received: Volume size '
                                    "'%s'GB cannot be smaller than the "
                                    "snapshot size %sGB." %
                               (size, snapshot['size']))
        if size is None or int(size) < 1:
            raise ApiError(400, 'Invalid input received: size must be a '
                                'positive integer.')
        self._store.check_quota(int(size))
        volume = self._store.new_volume(
            int(size), name=spec.get('name'),
            description=spec.get('description'), snapshot_id=snapshot_id,
            metadata=spec.get('metadata'),
            volume_type=spec.get('volume_type'),
            availability_zone=spec.get('availability_zone'),
            delay=self.creation_delay, project=self._store.project)
        if self._fail_creates:
            volume['_final_status'] = self._fail_creates.popleft()
        if self.creation_delay <= 0:
            self._store.refresh(volume)
        return 202, {'volume': sim_store.public(volume)}

    def _show_volume(self, query, body, volume_id):
        return 200, {'volume': sim_store.public(self._store.volume(volume_id))}

    def _update_volume(self, query, body, volume_id):
        volume = self._store.volume(volume_id)
        fields = (body or {}).get('volume') or {}
        for key in ('name', 'description'):
            if key in fields:
                volume[key] = fields[key]
        if 'metadata' in fields:
            # Cinder's volume_update replaces all user metadata.
            volume['metadata'] = dict(fields['metadata'] or {})
        volume['updated_at'] = sim_store.iso(sim_store.utcnow())
        return 200, {'volume': sim_store.public(volume)}

    def _delete_volume(self, query, body, volume_id):
        volume = self._store.volume(volume_id)
        if (volume['attachments'] or
                volume['status'] not in sim_store.DELETABLE):
            raise ApiError(400, 'Invalid volume: Volume status must be '
                                'available or error or error_restoring or '
                                'error_extending or error_managing and must '
                                'not be migrating, attached, belong to a '
                                'group, have snapshots, awaiting a transfer, '
                                'or be disassociated from snapshots after '
                                'volume transfer.')
        self._begin_delete(volume)
        return 202, None

    def _begin_delete(self, volume):
        volume['status'] = 'deleting'
        volume['_gone_at'] = self.clock() + self.deletion_delay
        self._store.refresh(volume)

    def _volume_action(self, query, body, volume_id):
        volume = self._store.volume(volume_id)
        body = body or {}
        if 'os-reset_status' in body:
            volume['status'] = body['os-reset_status'].get(
                'status', volume['status'])
            volume.pop('_final_status', None)
            return 202, None
        if 'os-force_delete' in body:
            self._begin_delete(volume)
            return 202, None
        raise ApiError(400, 'There is no such action: %s'
                       % ', '.join(body))

    def _metadata(self, query, body, volume_id):
        return 200, {'metadata': self._store.volume(volume_id)['metadata']}

    def _merge_metadata(self, query, body, volume_id):
        volume = self._store.volume(volume_id)
        volume['metadata'].update((body or {}).get('metadata') or {})
        return 200, {'metadata': volume['metadata']}

    def _replace_metadata(self, query, body, volume_id):
        volume = self._store.volume(volume_id)
        volume['metadata'] = dict((body or {}).get('metadata') or {})
        return 200, {'metadata': volume['metadata']}

    def _delete_metadata_key(self, query, body, volume_id, key):
        volume = self._store.volume(volume_id)
        if key not in volume['metadata']:
            raise ApiError(404, 'Metadata item was not found')
        del volume['metadata'][key]
        return 200, None

    # -- volume transfers (Cinder's os-volume-transfer API) --------------

    def _transfer(self, transfer_id):
        transfer = self._store.transfers.get(transfer_id)
        if transfer is None:
            raise ApiError(404, 'Transfer %s could not be found.'
                           % transfer_id)
        return transfer

    def _create_transfer(self, query, body):
        spec = (body or {}).get('transfer')
        if not isinstance(spec, dict) or not spec.get('volume_id'):
            raise ApiError(400, 'Incorrect request body format.')
        volume = self._store.volume(spec['volume_id'])
        if volume['status'] != 'available' or volume['attachments']:
            raise ApiError(400, 'Invalid volume: Status of volume must be '
                                'available')
        transfer_id = str(uuid.uuid4())
        transfer = {'id': transfer_id, 'volume_id': volume['id'],
                    'name': spec.get('name'),
                    'created_at': sim_store.iso(sim_store.utcnow()),
                    'auth_key': uuid.uuid4().hex[:16],
                    '_project': volume['os-vol-tenant-attr:tenant_id']}
        self._store.transfers[transfer_id] = transfer
        volume['status'] = 'awaiting-transfer'
        return 202, {'transfer': sim_store.public(transfer)}

    def _accept_transfer(self, query, body, transfer_id):
        transfer = self._transfer(transfer_id)
        key = ((body or {}).get('accept') or {}).get('auth_key')
        if key != transfer['auth_key']:
            raise ApiError(400, 'Invalid auth key: Attempt to transfer %s '
                                'with invalid auth key.' % transfer_id)
        volume = self._store.volume(transfer['volume_id'])
        volume['os-vol-tenant-attr:tenant_id'] = self._store.project
        volume['status'] = 'available'
        volume['updated_at'] = sim_store.iso(sim_store.utcnow())
        del self._store.transfers[transfer_id]
        return 202, {'transfer': {'id': transfer_id,
                                  'name': transfer['name'],
                                  'volume_id': volume['id']}}

    def _show_transfer(self, query, body, transfer_id):
        transfer = sim_store.public(self._transfer(transfer_id))
        transfer.pop('auth_key')
        return 200, {'transfer': transfer}

    def _list_transfers(self, query, body):
        mine = [t for t in self._store.transfers.values()
                if t['_project'] == self._store.project]
        return 200, {'transfers': [
            {k: v for k, v in sim_store.public(t).items() if k != 'auth_key'}
            for t in mine]}

    def _delete_transfer(self, query, body, transfer_id):
        transfer = self._transfer(transfer_id)
        del self._store.transfers[transfer_id]
        volume = self._store.volumes.get(transfer['volume_id'])
        if volume is not None and volume['status'] == 'awaiting-transfer':
            volume['status'] = 'available'
        return 202, None

    def _show_snapshot(self, query, body, snapshot_id):
        return 200, {'snapshot': dict(self._store.snapshot(snapshot_id))}

    def _list_snapshots(self, query, body):
        return 200, {'snapshots': [dict(s) for s in
                                   self._store.snapshots.values()]}


_ID = '([^/]+)'
# Project ids in URLs: Keystone's hex ids, or any id noauth is given.
_PROJECT_RE = re.compile(r'^[A-Za-z0-9_-]{1,64}$')
_ROUTES = [
    ('GET', '/volumes', r'^/volumes$',
     lambda s, q, b: VolumeAPI._list_volumes(s, q, b, False)),
    ('GET', '/volumes/detail', r'^/volumes/detail$',
     VolumeAPI._list_volumes),
    ('POST', '/volumes', r'^/volumes$', VolumeAPI._create_volume),
    ('GET', '/volumes/{id}', r'^/volumes/%s$' % _ID,
     VolumeAPI._show_volume),
    ('PUT', '/volumes/{id}', r'^/volumes/%s$' % _ID,
     VolumeAPI._update_volume),
    ('DELETE', '/volumes/{id}', r'^/volumes/%s$' % _ID,
     VolumeAPI._delete_volume),
    ('POST', '/volumes/{id}/action', r'^/volumes/%s/action$' % _ID,
     VolumeAPI._volume_action),
    ('GET', '/volumes/{id}/metadata', r'^/volumes/%s/metadata$' % _ID,
     VolumeAPI._metadata),
    ('POST', '/volumes/{id}/metadata', r'^/volumes/%s/metadata$' % _ID,
     VolumeAPI._merge_metadata),
    ('PUT', '/volumes/{id}/metadata', r'^/volumes/%s/metadata$' % _ID,
     VolumeAPI._replace_metadata),
    ('DELETE', '/volumes/{id}/metadata/{key}',
     r'^/volumes/%s/metadata/%s$' % (_ID, _ID),
     VolumeAPI._delete_metadata_key),
    ('GET', '/snapshots/detail', r'^/snapshots/detail$',
     VolumeAPI._list_snapshots),
    ('GET', '/snapshots/{id}', r'^/snapshots/%s$' % _ID,
     VolumeAPI._show_snapshot),
]
for _prefix in ('/os-volume-transfer', '/volume-transfers'):
    _ROUTES += [
        ('POST', _prefix, r'^%s$' % _prefix,
         VolumeAPI._create_transfer),
        ('GET', _prefix, r'^%s(?:/detail)?$' % _prefix,
         VolumeAPI._list_transfers),
        ('GET', _prefix + '/{id}', r'^%s/%s$' % (_prefix, _ID),
         VolumeAPI._show_transfer),
        ('DELETE', _prefix + '/{id}', r'^%s/%s$' % (_prefix, _ID),
         VolumeAPI._delete_transfer),
        ('POST', _prefix + '/{id}/accept', r'^%s/%s/accept$' % (_prefix, _ID),
         VolumeAPI._accept_transfer),
    ]
_COMPILED = [(m, name, re.compile(rx), fn) for m, name, rx, fn in _ROUTES]


def route(method, path):
    for route_method, name, regex, handler in _COMPILED:
        if route_method == method:
            match = regex.match(path)
            if match:
                return name, handler, [parse.unquote(g)
                                       for g in match.groups()]
    return path, None, []
