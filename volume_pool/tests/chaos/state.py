"""What Cinder and the database hold at the end, as the checker's plain
data: read straight from Cinder (not through the proxy) and the tables."""

import sqlalchemy as sa

RECEIPT_TABLES = ('claim_receipts', 'claims')


TENANT = 'os-vol-tenant-attr:tenant_id'


def cinder_volumes(client, page=500, project=None):
    """Every volume of the client's project, with its metadata and
    project, page by page."""
    volumes, marker = [], None
    while True:
        batch = client.volumes.list(detailed=True, marker=marker,
                                    limit=page)
        volumes += [{'id': v.id, 'name': v.name, 'status': v.status,
                     'metadata': dict(v.metadata or {}),
                     'attached': bool(getattr(v, 'attachments', None)),
                     'snapshot_id': getattr(v, 'snapshot_id', None),
                     'created_at': getattr(v, 'created_at', None),
                     'project': getattr(v, TENANT, None) or project}
                    for v in batch]
        if len(batch) < page:
            return volumes
        marker = batch[-1].id


def pool_rows(engine):
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(sa.text(
            'SELECT volume_id, pool, status FROM pool_volumes'))]


def receipts(engine):
    """The claim receipts, or None where the schema has none."""
    tables = set(sa.inspect(engine).get_table_names())
    for table in RECEIPT_TABLES:
        if table in tables:
            with engine.connect() as conn:
                return [dict(row._mapping) for row in conn.execute(sa.text(
                    'SELECT claim_key, state, volume_id, pool FROM %s'
                    % table))]
    return None


def read(clients, engine):
    """(volumes, rows, receipts); ``clients`` maps each project the run
    uses to a Cinder client of it.  Meant for a settled run: a change
    between the reads shows as a violation, which the next read clears."""
    volumes = []
    for project, client in clients.items():
        volumes += cinder_volumes(client, project=project)
    return volumes, pool_rows(engine), receipts(engine)
