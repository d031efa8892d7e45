"""The claim's queries use their indexes on a table of real size.

100,000 pool rows over 1,000 pools in four clusters, and 20,000 claim
receipts, on MariaDB and PostgreSQL; the statistics refreshed, then each
statement that the code runs (captured from the cursor, so it is exactly
what the code sends) is EXPLAINed on the same database, and the test
asserts on the plan's structure: which index, what kind of access, no
sort of the table.  Never on times.  ``pytest -s`` prints the plans.
"""

import contextlib
import datetime
import json
import time
import uuid

import pytest
import sqlalchemy as sa

from volume_pool.db import api as db_api
from volume_pool.db import claims as db_claims
from volume_pool.db import models
from volume_pool.db import receipts

ROWS = 100_000
POOLS = 1_000
CLUSTERS = ('', 'east', 'west', 'north')
RECEIPTS = 20_000
PROJECTS = 50
# Per pool, the first rows are of the snapshot a rotation replaces.
OLD_SNAPSHOT_ROWS = 20
STATUSES = ((models.AVAILABLE, 80), (models.CREATING, 10),
            (models.CLAIMING, 5), (models.DELETING, 5))

PICK_INDEX = 'pool_volumes_pool_status_idx'
BASE = datetime.datetime(2026, 1, 1)


def _pool(number):
    return 'pool-%04d' % number


def _cluster(number):
    return CLUSTERS[number % len(CLUSTERS)]


def _snapshot(number, old):
    return str(uuid.UUID(int=number * 2 + old))


def _key(number, index):
    return 'key-%s-%d' % (_pool(number), index)


def _project(index):
    return 'project-%d' % (index % PROJECTS)


def _claim_id(number, index):
    return 'receipt-%s-%d' % (_pool(number), index)


def _seed(engine):
    """Fill the tables; returns the seconds it took.

    Binding 100,000 rows of 17 columns costs the driver's escaping far
    more than the server's insert (over 10 s on PyMySQL), so Core
    executemany fills two small tables, one row per pool and one per
    place in a pool, and one INSERT ... SELECT of their cross join makes
    the rows on the server.
    """
    start = time.monotonic()
    per_pool = ROWS // POOLS
    statuses = [status for status, count in STATUSES
                for _ in range(count * per_pool // 100)]
    states = models.RECEIPT_STATES
    meta = sa.MetaData()
    pools = sa.Table(
        'seed_pools', meta, sa.Column('number', sa.Integer),
        sa.Column('pool', sa.String(64)), sa.Column('cluster', sa.String(64)),
        sa.Column('old_snapshot', sa.String(36)),
        sa.Column('new_snapshot', sa.String(36)))
    places = sa.Table(
        'seed_places', meta, sa.Column('place', sa.String(8)),
        sa.Column('old', sa.Boolean), sa.Column('status', sa.String(16)),
        sa.Column('state', sa.String(16)),
        sa.Column('project_id', sa.String(64)),
        sa.Column('moment', sa.DateTime), sa.Column('receipt', sa.Boolean))
    meta.create_all(engine)
    c = sa.func.concat
    try:
        with engine.begin() as connection:
            connection.execute(pools.insert(), [dict(
                number=number, pool=_pool(number), cluster=_cluster(number),
                old_snapshot=_snapshot(number, True),
                new_snapshot=_snapshot(number, False))
                for number in range(POOLS)])
            connection.execute(places.insert(), [dict(
                place=str(index), old=index < OLD_SNAPSHOT_ROWS,
                status=statuses[index], state=states[index % len(states)],
                project_id=_project(index),
                moment=BASE + datetime.timedelta(seconds=index),
                receipt=index < RECEIPTS // POOLS)
                for index in range(per_pool)])
            p, n = pools.c, places.c
            crossed = pools.join(places, sa.true())
            row_columns = dict(
                request_id=c('request-', p.pool, '-', n.place),
                volume_id=c('volume-', p.pool, '-', n.place),
                name=c('pool-volume-', p.pool, '-', n.place),
                pool=p.pool, cluster=p.cluster,
                snapshot_id=sa.case((n.old, p.old_snapshot),
                                    else_=p.new_snapshot),
                size=sa.literal(1), status=n.status,
                host=sa.literal('manager-1'),
                claim_id=sa.case((n.status == models.CLAIMING,
                                  c('claim-', p.pool, '-', n.place))),
                created_at=n.moment, updated_at=n.moment,
                ready_at=sa.case((n.status == models.AVAILABLE, n.moment)))
            connection.execute(models.PoolVolume.__table__.insert()
                               .from_select(list(row_columns), sa.select(
                                   *row_columns.values())
                                   .select_from(crossed)))
            receipt_columns = dict(
                claim_id=c('receipt-', p.pool, '-', n.place),
                cluster=p.cluster, project_id=n.project_id,
                claim_key=c('key-', p.pool, '-', n.place),
                fingerprint=sa.literal('f' * 64), state=n.state,
                pool=p.pool, snapshot_id=p.new_snapshot,
                volume_id=c('held-', p.pool, '-', n.place),
                size=sa.literal(1), source=sa.literal('pool'),
                result=sa.literal('{}'), created_at=n.moment,
                updated_at=n.moment,
                lease_expires_at=sa.case((n.state == models.R_LEASED,
                                          n.moment)))
            connection.execute(models.ClaimReceipt.__table__.insert()
                               .from_select(list(receipt_columns), sa.select(
                                   *receipt_columns.values())
                                   .select_from(crossed).where(n.receipt)))
    finally:
        meta.drop_all(engine)
    return time.monotonic() - start


def _analyze(engine):
    """Fresh statistics, as the server's own upkeep would have them.

    PostgreSQL's autovacuum also keeps the visibility map that
    index-only scans cost by: VACUUM it, outside a transaction.
    """
    tables = ('pool_volumes', 'claim_receipts')
    with engine.connect().execution_options(
            isolation_level='AUTOCOMMIT') as connection:
        for table in tables:
            if engine.dialect.name == 'mysql':
                connection.exec_driver_sql('ANALYZE TABLE %s' % table).all()
            else:
                connection.exec_driver_sql('VACUUM ANALYZE %s' % table)


@contextlib.contextmanager
def _captured(engine):
    """The statements the code sends to the cursor in the block:
    a list of (SQL, parameters), the first set of an executemany."""
    sent = []

    def _record(conn, cursor, statement, parameters, context, many):
        if many and parameters:
            parameters = parameters[0]
        sent.append((statement, parameters))

    sa.event.listen(engine, 'before_cursor_execute', _record)
    try:
        yield sent
    finally:
        sa.event.remove(engine, 'before_cursor_execute', _record)


def _one(sent, start, table):
    """The one captured statement that starts with ``start`` (SELECT,
    UPDATE, DELETE) on ``table``."""
    found = [(sql, params) for sql, params in sent
             if sql.lstrip().upper().startswith(start) and
             (' %s ' % table) in ' %s ' % sql.replace('\n', ' ')]
    assert len(found) == 1, (start, table, sent)
    return found[0]


class Plan:
    """One statement's plan on this backend, and what the test asks of it.

    PostgreSQL: the nodes of ``EXPLAIN (FORMAT JSON)``.  MariaDB: the rows
    of plain ``EXPLAIN`` (type, key, Extra), one per table accessed.
    """

    def __init__(self, engine, name, sql, params):
        self.name = name
        self.dialect = engine.dialect.name
        prefix = ('EXPLAIN ' if self.dialect == 'mysql'
                  else 'EXPLAIN (FORMAT JSON) ')
        with engine.connect() as connection:
            result = connection.exec_driver_sql(prefix + sql, params)
            if self.dialect == 'mysql':
                self.rows = [dict(row._mapping) for row in result]
                self.nodes = []
            else:
                document = result.scalar()
                if isinstance(document, str):
                    document = json.loads(document)
                self.rows = []
                self.nodes = list(_walk(document[0]['Plan']))
            connection.rollback()
        self.sql = ' '.join(sql.split())

    def show(self):
        print('\n--- %s (%s)\n%s' % (self.name, self.dialect, self.sql))
        if self.dialect == 'mysql':
            for row in self.rows:
                print('  table=%(table)s type=%(type)s key=%(key)s '
                      'key_len=%(key_len)s ref=%(ref)s rows=%(rows)s '
                      'Extra=%(Extra)s' % row)
        else:
            for depth, node in self.nodes:
                detail = ', '.join(
                    '%s: %s' % (key, node[key]) for key in (
                        'Relation Name', 'Index Name', 'Index Cond',
                        'Filter', 'Sort Key', 'Presorted Key',
                        'Group Key', 'Plan Rows') if key in node)
                print('  %s%s (%s)' % ('  ' * depth, node['Node Type'],
                                       detail))

    def access(self, table):
        """(kind, index) of the access to ``table``: kind is 'index',
        'primary', 'scan' (the whole table)."""
        if self.dialect == 'mysql':
            rows = [row for row in self.rows if row['table'] == table]
            assert len(rows) == 1, self.rows
            row = rows[0]
            if row['type'] in ('ALL', 'index') or row['key'] is None:
                return 'scan', row['key']
            if row['key'] == 'PRIMARY':
                return 'primary', row['key']
            return 'index', row['key']
        scans = [node for _depth, node in self.nodes
                 if node.get('Relation Name') == table and
                 node['Node Type'] != 'ModifyTable']
        assert len(scans) == 1, self.nodes
        node = scans[0]
        if node['Node Type'] == 'Seq Scan':
            return 'scan', None
        index = node.get('Index Name')
        assert node['Node Type'] in ('Index Scan', 'Index Only Scan',
                                     'Bitmap Heap Scan'), node
        if node['Node Type'] == 'Bitmap Heap Scan':
            index = self._bitmap_index()
        if index == '%s_pkey' % table:
            return 'primary', index
        return 'index', index

    def _bitmap_index(self):
        indexes = {node.get('Index Name') for _depth, node in self.nodes
                   if node['Node Type'] == 'Bitmap Index Scan'}
        assert len(indexes) == 1, self.nodes
        return indexes.pop()

    def sorts(self):
        """Whether the plan sorts rows (filesort, a Sort node)."""
        if self.dialect == 'mysql':
            return any('filesort' in (row['Extra'] or '')
                       for row in self.rows)
        return any('Sort' in node['Node Type'] for _depth, node in self.nodes)

    def temporary(self):
        """MariaDB: whether the plan builds a temporary table."""
        return any('temporary' in (row['Extra'] or '') for row in self.rows)


def _walk(node, depth=0):
    yield depth, node
    for child in node.get('Plans', ()):
        yield from _walk(child, depth + 1)


@pytest.fixture
def seeded(own_database):
    """The migrated database of the test's backend, filled, analyzed."""
    engine = db_api.get_engine()
    seconds = _seed(engine)
    start = time.monotonic()
    _analyze(engine)
    print('\n%s: seeded %d rows and %d receipts in %.2f s, analyzed in '
          '%.2f s' % (own_database, ROWS, RECEIPTS, seconds,
                      time.monotonic() - start))
    return engine


def _plans(engine):
    """Run the code's statements once; returns {name: Plan}."""
    plans = {}
    number = 5                      # a pool of cluster 'east'
    pool, cluster = _pool(number), _cluster(number)
    for by_snapshot in (True, False):
        snapshot = _snapshot(number, False) if by_snapshot else None
        take = db_claims.Take(claim_id=str(uuid.uuid4()), hold=60,
                              fingerprint='f', claim_key=str(uuid.uuid4()),
                              project_id='project-1')
        with _captured(engine) as sent:
            (row,), _ = db_claims.commit_steps(pool, cluster, snapshot,
                                               'incarnation', takes=[take])
        assert row is not None
        suffix = 'by snapshot' if by_snapshot else 'any snapshot'
        plans['pick ' + suffix] = _one(sent, 'SELECT', 'pool_volumes')
        plans['hold ' + suffix] = _one(sent, 'UPDATE', 'pool_volumes')
        finish = db_claims.Finish(
            row_id=row.id, claim_id=take.claim_id, state=models.R_USED,
            result={'volume_id': row.volume_id})
        with _captured(engine) as sent:
            _, (answer,) = db_claims.commit_steps(
                pool, cluster, snapshot, 'incarnation', finishes=[finish])
        assert answer is not None
        plans['delete held ' + suffix] = _one(sent, 'DELETE', 'pool_volumes')
        plans['record answer ' + suffix] = _one(sent, 'UPDATE',
                                                'claim_receipts')
    with _captured(engine) as sent:
        assert receipts.get('west', _project(3), _key(2, 3)) is not None
    plans['receipt by key'] = _one(sent, 'SELECT', 'claim_receipts')
    with _captured(engine) as sent:
        assert len(receipts.by_keys('west', [(_project(3), _key(2, 3)),
                                             (_project(4), _key(6, 4))])) == 2
    plans['receipts by keys'] = _one(sent, 'SELECT', 'claim_receipts')
    with _captured(engine) as sent:
        assert receipts.get_by_claim(_claim_id(7, 5)) is not None
    plans['receipt by claim id'] = _one(sent, 'SELECT', 'claim_receipts')
    with _captured(engine) as sent:
        assert len(db_api.count_by_pool(cluster)) == POOLS // len(CLUSTERS)
    plans['count by pool'] = _one(sent, 'SELECT', 'pool_volumes')
    with _captured(engine) as sent:
        assert len(db_api.get_rows(cluster, pool=pool)) == ROWS // POOLS - 2
    plans['rows of a pool'] = _one(sent, 'SELECT', 'pool_volumes')
    return {name: Plan(engine, name, sql, params)
            for name, (sql, params) in plans.items()}


def test_claim_queries_use_their_indexes(seeded):
    start = time.monotonic()
    plans = _plans(seeded)
    for plan in plans.values():
        plan.show()
    print('\n%s: ran and explained %d statements in %.2f s'
          % (seeded.dialect.name, len(plans), time.monotonic() - start))

    problems = []

    def expect(name, table, kind, index=None, sorts=False):
        plan = plans[name]
        found = plan.access(table)
        if found[0] != kind or (index and found[1] != index):
            problems.append('%s: %s, not %s %s' % (name, found, kind,
                                                   index or ''))
        if plan.sorts() and not sorts:
            problems.append('%s: sorts' % name)

    # The claim's pick (a pool's snapshot is required, so every claim
    # picks by snapshot): the oldest ready rows straight from the index,
    # in its order, no sort, not even of the pool's rows.
    expect('pick by snapshot', 'pool_volumes', 'index', PICK_INDEX)
    # For any snapshot (snapshot_id comes before status in the index):
    # through the same index, a sort of the pool's ready rows only.
    expect('pick any snapshot', 'pool_volumes', 'index', PICK_INDEX,
           sorts=True)
    for suffix in ('by snapshot', 'any snapshot'):
        expect('hold ' + suffix, 'pool_volumes', 'primary')
        expect('delete held ' + suffix, 'pool_volumes', 'primary')
        expect('record answer ' + suffix, 'claim_receipts', 'index',
               'uniq_claim_receipts0claim_id')
    key_index = 'uniq_claim_receipts0cluster0project0key'
    expect('receipt by key', 'claim_receipts', 'index', key_index)
    expect('receipts by keys', 'claim_receipts', 'index', key_index)
    expect('receipt by claim id', 'claim_receipts', 'index',
           'uniq_claim_receipts0claim_id')
    # Every row of the cluster is counted, that is the work; but through
    # an index on the cluster, never the other clusters' rows too, and
    # from the index alone, grouped in its order.
    expect('count by pool', 'pool_volumes', 'index', PICK_INDEX)
    count = plans['count by pool']
    assert not count.temporary(), count.rows
    if count.dialect == 'postgresql':
        assert 'Index Only Scan' in {
            node['Node Type'] for _depth, node in count.nodes}
    expect('rows of a pool', 'pool_volumes', 'index', PICK_INDEX,
           sorts=True)
    assert not problems, '\n'.join(problems)
