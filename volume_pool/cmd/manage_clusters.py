"""volume-pool-manage cluster commands: who serves a cluster, and moving
a renamed cluster's volumes."""

import datetime
import sys

from volume_pool import cinder as vp_cinder
from volume_pool import cluster_names
from volume_pool import clusters
from volume_pool import config
from volume_pool import coordination
from volume_pool import exception
from volume_pool.cmd.manage_output import emit
from volume_pool.cmd.manage_output import EXIT_FAILED
from volume_pool.cmd.manage_output import EXIT_OK
from volume_pool.db import deployment as db_deployment

CONF = config.CONF

# Seconds "cluster drain" waits for Cinder to delete the volumes.
DRAIN_TIMEOUT = 120


CLUSTER_COLUMNS = ['cluster', 'host', 'last_seen', 'started_at']


def cluster_list():
    if not CONF.coordination.backend_url:
        raise exception.ConfigError(
            reason='[coordination] backend_url is not set: without it each '
                   'manager works alone and there is no membership to list')
    wanted = [CONF.command.only] if CONF.command.only else None
    listing = coordination.list_clusters(CONF, wanted)
    rows = []
    for cluster, members in listing.items():
        for member in members:
            rows.append({
                'cluster': cluster, 'host': member['host'],
                'last_seen': _iso(member.get('last_seen')),
                'started_at': _iso(member.get('started_at'))})
    emit(rows, CONF.command)
    return EXIT_OK


def _deployment_cinder():
    """Cinder as this deployment: only its own volumes are touched."""
    return vp_cinder.Cinder(CONF, deployment=db_deployment.identity())


def cluster_adopt():
    old = cluster_names.name_of(
        cluster_names.key_of(CONF.command.old_cluster))
    report = clusters.adopt(_deployment_cinder(), old, CONF.cluster,
                            CONF.volume_pool.service_down_time)
    new = cluster_names.name_of(cluster_names.key_of(CONF.cluster))
    print('Cluster %s adopted into %s: %d rows moved, %d claim receipts '
          'moved, %d volumes re-tagged, %d re-tags failed.'
          % (old, new, report.rows, report.receipts, report.retagged,
             len(report.failed)))
    if report.receipts_kept:
        print('Note: %d claim receipts stay in cluster %s: cluster %s '
              'already uses their keys.' % (report.receipts_kept, old, new))
    for volume_id, reason in report.failed:
        sys.stderr.write('volume-pool-manage: re-tagging volume %s failed: '
                         '%s\n' % (volume_id, reason))
    if report.failed:
        print('Run the command again: it re-tags what is left (the sync '
              'of cluster %s also re-tags the volumes of its rows).' % new)
    return EXIT_FAILED if report.failed else EXIT_OK


def cluster_drain():
    old = cluster_names.name_of(
        cluster_names.key_of(CONF.command.old_cluster))
    timeout = CONF.command.timeout
    report = clusters.drain(_deployment_cinder(), old, CONF.cluster,
                            CONF.volume_pool.service_down_time, timeout)
    print('Cluster %s: %d volumes deleted, %d rows dropped, %d volumes in '
          'use released, %d deletes failed, %d volumes still in Cinder '
          'after %d s.' % (old, report.deleted, report.dropped,
                           report.released, report.failed, report.pending,
                           timeout))
    if report.spared:
        print('Note: %d volumes tagged with cluster %s and no row are in '
              'use or claimed: left alone.' % (report.spared, old))
    if report.held:
        print('%d rows held by claims of stopped managers: adopt the '
              'cluster to settle them ("volume-pool-manage cluster adopt '
              '%s").' % (report.held, old))
    if not report.complete:
        print('Left in cluster %s: %d rows in the table, %d volumes in '
              'Cinder; run the command again.'
              % (old, report.rows_left, report.pending + report.failed))
        return EXIT_FAILED
    return EXIT_OK


def _iso(stamp):
    if stamp is None:
        return None
    return datetime.datetime.fromtimestamp(
        stamp, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
