"""volume-pool-manage db and pool commands."""

import sys

import oslo_messaging as messaging

from volume_pool import cinder as vp_cinder
from volume_pool import clusters
from volume_pool import config
from volume_pool import exception
from volume_pool import pool_spec
from volume_pool import shrink
from volume_pool import sizing
from volume_pool.cmd import manage_rpc
from volume_pool.cmd.manage_output import emit
from volume_pool.cmd.manage_output import EXIT_FAILED
from volume_pool.cmd.manage_output import EXIT_OK
from volume_pool.db import api as db_api
from volume_pool.db import deployment as db_deployment
from volume_pool.db import migration

CONF = config.CONF


def _deployment_cinder():
    """Cinder as this deployment: only its own volumes are touched."""
    return vp_cinder.Cinder(CONF, deployment=db_deployment.identity())

def db_sync():
    migration.upgrade(CONF.command.revision)
    print('Database is at revision %s.' % migration.version())
    _print_deployment()
    return EXIT_OK


def db_version():
    print(migration.version() or 'None (run "volume-pool-manage db sync")')
    return EXIT_OK


def _print_deployment():
    """The identity every pool volume of this deployment carries in
    Cinder (tag ``volume_pool_deployment``), once ``db sync`` made it."""
    try:
        print('Deployment identity: %s' % db_deployment.identity())
    except exception.ConfigError:
        pass  # a schema older than the identity: nothing to show


POOL_COLUMNS = ['name', 'cluster', 'target', 'ready', 'creating',
                'claiming', 'deleting', 'reason', 'snapshot_id']
# What only the managers' pool_status answer carries: -c accepts them,
# and they are empty when the counts come from the database.
LIVE_POOL_FIELDS = ['configured_target', 'uncertain', 'stale', 'configured',
                    'backoff', 'reconciled', 'claims', 'auto', 'idle',
                    'capped']
POOL_FIELDS = POOL_COLUMNS + LIVE_POOL_FIELDS
VOLUME_COLUMNS = ['volume_id', 'name', 'status', 'snapshot_id', 'size',
                  'host', 'created_at']


def _pool_rows(specs, reason):
    cluster = CONF.cluster or None
    counts = db_api.count_by_pool(cluster)
    rows = []
    for name in sorted(set(specs) | set(counts)):
        spec = specs.get(name)
        pool = sizing.counts_of(name, spec, counts)
        rows.append({
            'name': name, 'cluster': cluster or '-',
            'target': (('auto' if spec.auto else spec.target) if spec
                       else '(removed)'),
            'ready': pool.ready, 'creating': pool.creating,
            'claiming': pool.claiming, 'deleting': pool.deleting,
            'reason': reason,
            'snapshot_id': spec.snapshot_id if spec else '-'})
    return rows


def _live_pool_rows():
    """The managers' own view (reason, backoff, claims), or None."""
    if not manage_rpc.transport_url():
        return None
    cluster = CONF.cluster or None
    try:
        rows = manage_rpc.call(lambda api, ctxt: api.pool_status(
            ctxt, cluster=cluster), CONF.command.timeout)
    except (exception.VolumePoolException,
            messaging.MessagingException) as exc:
        sys.stderr.write('volume-pool-manage: pool_status over RPC failed '
                         '(%s); showing the database counts.\n'
                         % exception.first_line(exc))
        return None
    for row in rows:
        row['cluster'] = row.get('cluster') or '-'
        row['snapshot_id'] = row.get('snapshot_id') or '-'
    return rows


def pool_list():
    specs = pool_spec.load_specs(CONF)
    rows = _live_pool_rows()
    if rows is None:
        reason = (manage_rpc.NO_ANSWER if manage_rpc.transport_url()
                  else manage_rpc.NO_TRANSPORT)
        rows = _pool_rows(specs, reason)
    emit(rows, CONF.command)
    _cluster_notes()
    return EXIT_OK


def _cluster_notes():
    """Notes on stderr (the table or JSON stays clean on stdout): clusters
    whose volumes nobody syncs, managers that share this cluster with no
    coordination backend."""
    try:
        notes = clusters.stranded_warnings(
            CONF.cluster, CONF.volume_pool.service_down_time)
        shared = clusters.coordination_warning(CONF)
    except db_api.DATABASE_ERRORS as exc:  # the notes are extra
        sys.stderr.write('volume-pool-manage: could not look for clusters '
                         'without a live manager: %s\n'
                         % exception.first_line(exc))
        return
    for note in notes + ([shared] if shared else []):
        sys.stderr.write('Note: %s\n' % note)


def pool_refill():
    name, cluster = CONF.command.pool_name, CONF.command.for_cluster
    queued = manage_rpc.call(lambda api, ctxt: api.refill(ctxt, name,
                                                    cluster=cluster),
                       CONF.command.timeout)
    print('Pool %s: %d volume creates queued.' % (name, queued))
    return EXIT_OK


def _known_pool(name):
    specs = pool_spec.load_specs(CONF)
    if name not in specs and name not in db_api.pool_names(
            CONF.cluster or None):
        raise exception.PoolNotFound(pool=name,
                                     cluster=CONF.cluster or '(none)')
    return specs.get(name)


def pool_show():
    name = CONF.command.pool_name
    _known_pool(name)
    rows = [{c: getattr(row, c) for c in VOLUME_COLUMNS}
            for row in db_api.get_rows(CONF.cluster or None, pool=name)]
    emit(rows, CONF.command)
    return EXIT_OK


def pool_drain():
    name = CONF.command.pool_name
    spec = _known_pool(name)
    report = shrink.drain_pool(_deployment_cinder(), name,
                                  CONF.cluster or None)
    print('Pool %s: %d volumes deleted, %d deletes failed (retried by the '
          'next sync).' % (name, report.deleted, report.errors))
    if spec is not None and spec.target:
        print('Note: replenish refills the pool to its target (%d); set '
              'target = 0 in [pool:%s] to keep it empty.'
              % (spec.target, name))
    return EXIT_FAILED if report.errors else EXIT_OK
