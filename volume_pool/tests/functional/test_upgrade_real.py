"""A rolling upgrade on the real services: the previous release's manager
runs beside a current one on the newer schema that ``db sync`` brought up.

The previous release is exported from git and run as it is, with this
venv's libraries.  What must hold while both run: the old manager starts
(it warns that the schema is newer), claims landing on either manager get
distinct volumes, and the old manager keeps what it does not know about:
the new table and column, the new code's leases, and the volumes that
carry the cluster tag.  No volume is lost or leaked, before or after it
stops.
"""

import json
import os
import re
import subprocess
import uuid

import pytest
import sqlalchemy as sa

from volume_pool import cinder as vp_cinder
from volume_pool import cluster_names
from volume_pool import context as vp_context
from volume_pool.db import migration
from volume_pool.fixtures import manager_process
from volume_pool.fixtures import waiting
from volume_pool.tests.functional import engines
from volume_pool.tests.functional.test_exactly_once_real import accounted
from volume_pool.tests.functional.test_exactly_once_real import receipts
from volume_pool.tests.functional.test_real_peers import table
from volume_pool.tests.functional.test_real_peers import tagged

# MariaDB only: what is tested is old code on a newer schema, and the
# old code's statements never touch what the new revision added, on
# either database; the claim statements themselves are proven on both
# by the other tests, and this one already runs two releases.
pytestmark = engines.ON_MARIADB

# The previous release and the newest schema revision it knows.
PREVIOUS_RELEASE = '7aad84b292e917811631287e4758e17158c270c6'
PREVIOUS_HEAD = 'd4e8a1b7c903'

CTXT = vp_context.RequestContext()
TARGET = 4
# The summary line of a sync run, the same in both releases.
SYNC_LINE = re.compile(r'Sync: ready=\d+, adopted=\d+, removed=(\d+), '
                       r'deleted=(\d+),')
CLAIMED_LINE = 'Claimed volume '


@pytest.fixture
def previous_release(tmp_path):
    """The previous release's package, exported from this clone."""
    repo = subprocess.run(
        ['git', '-C', os.path.dirname(os.path.abspath(__file__)),
         'rev-parse', '--show-toplevel'],
        capture_output=True, text=True, timeout=60)
    if repo.returncode != 0:
        pytest.fail('the upgrade test needs the git clone of the project: '
                    '%s' % repo.stderr.strip())
    dest = tmp_path / 'previous'
    dest.mkdir()
    try:
        manager_process.export_package(repo.stdout.strip(), PREVIOUS_RELEASE,
                               str(dest))
    except manager_process.ReleaseMissing as exc:
        pytest.fail(str(exc))  # never a skip: CI has the full history
    return str(dest)


@pytest.fixture
def old_managers(managers, previous_release, tmp_path):
    """Managers of the previous release, stopped before the database of
    ``managers`` is dropped."""
    started = []

    def _start(config_text, host):
        process = manager_process.SourceManagerProcess(
            str(tmp_path), host, config_text, previous_release)
        started.append(process.start())
        return process

    _start.source = previous_release
    yield _start
    for process in started:
        process.kill()
        if 'Traceback' in process.log():
            print('---- %s log ----\n%s' % (process.name,
                                             process.log()[-6000:]))


def _query(db_url, sql):
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def manager_rows(db_url):
    """host -> (incarnation, pools) of the managers that have not stopped."""
    return {host: (incarnation, pools) for host, incarnation, pools in
            _query(db_url, 'SELECT host, incarnation, pools FROM managers '
                           'WHERE stopped_at IS NULL')}


def pool_locks(db_url):
    return set(_query(db_url, 'SELECT cluster, pool FROM pool_locks'))


def syncs(process):
    """(removed, deleted) of each sync run the manager logged."""
    return [(int(removed), int(deleted)) for removed, deleted in
            SYNC_LINE.findall(process.log())]


def claims_served(process):
    return process.log().count(CLAIMED_LINE)


def lease_problems(cinder, db_url, pool, key):
    """What is wrong with the new code's leased claim ``key``: it keeps
    its receipt, and its volume the lease tag and no pool tag."""
    receipt = receipts(db_url, pool).get(key)
    if receipt is None or receipt.state != 'leased':
        return ['receipt %s: %s' % (key, receipt and receipt.state)]
    metadata = cinder.client().volumes.get(receipt.volume_id).metadata
    if (metadata.get(vp_cinder.TAG_LEASE) != cluster_names.NO_CLUSTER or
            vp_cinder.TAG_POOL in metadata):
        return ['leased volume %s: %s' % (receipt.volume_id, metadata)]
    return []


def leaked(cinder, snapshot_id, pool, handed_out):
    """Volumes made from the test's own snapshot that are neither in the
    pool (tagged) nor handed out: a volume that lost its row and its tags
    would be nowhere else."""
    made = {v.id for v in cinder.client().volumes.list()
            if v.snapshot_id == snapshot_id and v.status != 'deleting'}
    return sorted(made - {v.id for v in tagged(cinder, pool)}
                  - set(handed_out))


def test_previous_release_beside_the_current_on_the_new_schema(
        managers, old_managers, api, cinder, pool_name):
    # A snapshot of its own, so that every volume made from it is this
    # test's and none can leak unseen.
    snapshot = cinder.make_snapshot(size=1)
    db_url = managers.db_url

    # The current code: db sync to its head, one manager, a full pool.
    new = managers([(pool_name, snapshot, TARGET)], host='mgr-new',
                   sync_interval=2)
    assert _query(db_url, 'SELECT version_num FROM alembic_version') == [
        (migration.head(),)]
    assert migration.head() != PREVIOUS_HEAD
    waiting.pool_ready(api, pool_name, TARGET)
    # A claim with a key, so with a lease, made by the current code alone.
    key = str(uuid.uuid4())
    leased = api.claim(CTXT, pool_name, name='fn-leased', claim_key=key)
    assert leased['lease_expires_at']
    # Recorded just after the answer (its finish follows it).
    waiting.wait_clear(lambda: lease_problems(cinder, db_url, pool_name, key),
                       timeout=30, what='the leased claim recorded')
    waiting.pool_ready(api, pool_name, TARGET)
    made_by_new = {v.id: v.metadata for v in tagged(cinder, pool_name)}
    assert len(made_by_new) == TARGET
    assert all(m.get(vp_cinder.TAG_CLUSTER) == cluster_names.NO_CLUSTER
               for m in made_by_new.values()), made_by_new
    locks = pool_locks(db_url)
    assert locks == {('', pool_name)}, locks
    new_row = manager_rows(db_url)['mgr-new']
    assert json.loads(new_row[1]) == {pool_name: snapshot}

    # The previous release joins on the same database and broker.
    with open(new.conf_path) as conf:
        text = conf.read().replace('host = mgr-new\n', 'host = mgr-old\n')
    old = old_managers(text, 'mgr-old')
    waiting.wait_for(lambda: 'registered as incarnation' in old.log()
                     or not old.alive(), timeout=60,
                     what='the previous release started')
    assert old.alive(), 'exit %s:\n%s' % (old.proc.returncode,
                                          old.log()[-4000:])
    # It runs the exported code: the package it imported, the newest
    # revision it knows, a managers row without the column it lacks.
    assert old.imported_from() == os.path.join(
        old_managers.source, 'volume_pool', '__init__.py'), old.log()
    assert 'newer than this code (%s)' % PREVIOUS_HEAD in old.log()
    rows = manager_rows(db_url)
    assert rows['mgr-old'][1] is None
    assert rows['mgr-new'] == new_row

    # Syncs of the old manager on a full pool: it drops nothing it does
    # not know, and deletes none of the volumes with the cluster tag.
    waiting.wait_for(lambda: len(syncs(old)) >= 3, timeout=60,
                     what='three syncs of the previous release')
    assert all(s == (0, 0) for s in syncs(old)), syncs(old)
    now = {v.id: v.metadata for v in tagged(cinder, pool_name)}
    assert {i: now.get(i) for i in made_by_new} == made_by_new
    assert set(made_by_new) <= set(table(db_url, pool_name))
    assert not lease_problems(cinder, db_url, pool_name, key)
    assert pool_locks(db_url) == locks
    assert manager_rows(db_url)['mgr-new'] == new_row

    # Claims through the API land on either manager; each is one volume.
    before = claims_served(old), claims_served(new)
    answers = {}
    for number in range(20):
        claim_key = str(uuid.uuid4()) if number % 2 == 0 else None
        answer = api.claim(CTXT, pool_name, name='fn-up-%d' % number,
                           claim_key=claim_key)
        answers[claim_key or 'unkeyed-%d' % number] = answer['volume_id']
        served = (claims_served(old) - before[0],
                  claims_served(new) - before[1])
        if number >= 5 and all(served):
            break
    print('claims served: previous release %d, current %d' % served)
    assert all(served), served
    assert len(set(answers.values())) == len(answers), answers
    assert leased['volume_id'] not in answers.values()

    # The previous release gives one back, tagged as it knows (without
    # the cluster tag): the queue of its host reaches only it.
    given_back = next(k for k in answers if not k.startswith('unkeyed'))
    back = api.client.prepare(server='mgr-old', version='1.4',
                              timeout=30).call(
        CTXT, 'release', claim_key=given_back, cluster=None)
    assert back['state'] == 'released'
    assert 'Claim %s released' % given_back in old.log()
    given_back_volume = answers.pop(given_back)

    # More syncs on both; then each volume is in the pool (one row, one
    # volume) or with one caller, the lease kept, the new rows kept.
    for process in (old, new):
        count = len(syncs(process))
        waiting.wait_for(lambda p=process, c=count: len(syncs(p)) >= c + 2,
                         timeout=60, what='two syncs of %s' % process.name)
    answers[key] = leased['volume_id']
    waiting.wait_clear(
        lambda: (accounted(cinder, managers, pool_name, answers) +
                 leaked(cinder, snapshot, pool_name, answers.values())),
        what='every volume accounted for, both managers running')
    assert not lease_problems(cinder, db_url, pool_name, key)
    assert pool_locks(db_url) == locks
    assert manager_rows(db_url)['mgr-new'] == new_row
    assert old.alive() and new.alive()
    assert 'Traceback' not in old.log()

    # The upgrade goes on: the old manager stops cleanly, and the current
    # one alone brings every pool volume to the cluster tag, losing none.
    assert old.terminate() == 0

    def untagged():
        return ['%s has no cluster tag' % v.id
                for v in tagged(cinder, pool_name)
                if v.metadata.get(vp_cinder.TAG_CLUSTER) !=
                cluster_names.NO_CLUSTER]
    waiting.wait_clear(
        lambda: (accounted(cinder, managers, pool_name, answers) +
                 leaked(cinder, snapshot, pool_name, answers.values()) +
                 untagged()),
        what='every volume accounted for and tagged, the current manager '
             'alone')
    # The volume given back is in the pool, or was trimmed (oldest first)
    # as a surplus: never left aside.
    assert (given_back_volume in {v.id for v in tagged(cinder, pool_name)}
            or given_back_volume not in {
                v.id for v in cinder.client().volumes.list()
                if v.status != 'deleting'})
    assert not lease_problems(cinder, db_url, pool_name, key)
    assert pool_locks(db_url) == locks
