"""Every volume a test's Cinder holds, accounted for.

The functional tests' check that nothing leaked: every volume in every
project the test uses, tagged or not, is in a pool (tagged for it, with
a row), held by a receipt, handed to a caller the test knows, being
deleted, or the source of a snapshot.  An untagged volume that lost its
row and its receipt is nowhere else, so it is listed too.
"""

import re

import sqlalchemy as sa

from volume_pool import cinder as vp_cinder
from volume_pool.fixtures import cinder_handles
from volume_pool.tests.chaos import state

HOLDING = frozenset(('leased', 'used'))


def accounted(cinder, db_url, pool, answers, projects=(), since=None):
    """The problems of ``pool``'s test, read from Cinder and the tables.

    ``cinder``: a local Cinder or the simulator (``endpoint`` and
    ``project_id``); ``answers``: claim key -> answered volume id;
    ``projects``: the other projects the test claims into; ``since``: an
    ISO time, volumes made before it (other tests') are not this test's.
    """
    volumes = read_volumes(cinder, pool, projects, since)
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        rows, receipts = state.pool_rows(engine), state.receipts(engine)
    finally:
        engine.dispose()
    return problems(volumes, rows, receipts or [], answers, pool)


def read_volumes(cinder, pool, projects=(), since=None):
    """Every volume of the Cinder's own project and of ``projects``,
    bar the sources of snapshots and, with ``since``, other tests'."""
    volumes, sources = [], set()
    for project in [cinder.project_id, *projects]:
        client = cinder_handles.noauth_cinder_client(
            cinder.endpoint, project, user_id='accounting')
        volumes += state.cinder_volumes(client, project=project)
        sources |= {s.volume_id for s in client.volume_snapshots.list()}
    return [v for v in volumes if v['id'] not in sources and
            (since is None or _mine(v, pool, since))]


def _mine(volume, pool, since):
    """Whether a volume on a shared Cinder is this test's: tagged for its
    pool, or made since it started and tagged for no other pool.  A pool
    volume of another pool is another test's even when made later: a
    create that a killed manager sent can land after the next test
    started.  So is an untagged one named after another pool (a miss
    create with no name, whose tags were dropped when it was handed
    over, or by a late request)."""
    tag = _pool_tag(volume)
    if tag is not None:
        return tag == pool
    named = _NAMED_FOR_POOL.match(volume.get('name') or '')
    if named is not None and named.group('pool') != pool:
        return False
    return (volume.get('created_at') or '') >= since


# A volume a pool names itself (``volume_name_prefix``'s default), and
# the pool it names; the tests' pools are named ``fn-`` and 8 hex digits.
_NAMED_FOR_POOL = re.compile(r'^volume-pool-(?P<pool>fn-[0-9a-f]{8})-')


def problems(volumes, rows, receipts, answers, pool):
    """What is wrong, as plain data: ``volumes`` dicts (id, name, status,
    metadata, project), ``rows`` and ``receipts`` of every pool."""
    found = _pool_problems(volumes, rows, receipts, answers, pool)
    placed = _placed(rows, receipts, answers)
    for volume in volumes:
        if volume['id'] not in placed and volume['status'] != 'deleting':
            found.append('volume %s (%s, %s, project %s, tagged %r) is in '
                         'no pool, held by no receipt and answered to no '
                         'caller' % (volume['id'], volume.get('name'),
                                     volume['status'], volume.get('project'),
                                     _pool_tag(volume)))
    return found


def _placed(rows, receipts, answers):
    """Volume ids a pool row, a holding receipt or an answer accounts
    for, whatever the pool."""
    return ({r['volume_id'] for r in rows if r['volume_id']} |
            {r['volume_id'] for r in receipts
             if r['state'] in HOLDING and r['volume_id']} |
            set(answers.values()))


def _pool_tag(volume):
    return (volume.get('metadata') or {}).get(vp_cinder.TAG_POOL)


def _pool_problems(volumes, rows, receipts, answers, pool):
    """The pool's own volumes: tagged exactly where it has rows, settled
    rows, none both in the pool and with a caller."""
    found = []
    # A row without a volume id yet is a create on its way.
    table = {r['volume_id']: r['status'] for r in rows
             if r['pool'] == pool and r['volume_id'] is not None}
    in_pool = {v['id'] for v in volumes if _pool_tag(v) == pool}
    held = {r['volume_id'] for r in receipts
            if r['pool'] == pool and r['state'] in HOLDING}
    if in_pool != set(table):
        found.append('tagged %s != rows %s' % (sorted(in_pool), table))
    bad_rows = {v: s for v, s in table.items()
                if s not in ('available', 'creating')}
    if bad_rows:
        found.append('rows still held: %s' % bad_rows)
    both = in_pool & held
    if both:
        found.append('in the pool and with a caller: %s' % sorted(both))
    ids = list(answers.values())
    if len(ids) != len(set(ids)):
        found.append('a volume answered twice: %s' % sorted(ids))
    for key, volume_id in answers.items():
        if volume_id in in_pool:
            found.append('%s answered %s, now back in the pool'
                         % (key, volume_id))
    return found
