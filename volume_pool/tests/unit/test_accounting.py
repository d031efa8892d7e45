"""The functional tests' accounting, on the Cinder simulator over HTTP
and a small SQLite database: it sees every volume in every project the
test uses, tagged or not."""

import pytest
import sqlalchemy as sa

from volume_pool import cinder as vp_cinder
from volume_pool.fixtures import cinder_handles
from volume_pool.fixtures.simulator import cinder_api
from volume_pool.tests import accounting

POOL = 'p1'
OTHER = '0123456789abcdef0123456789abcdef'
TABLES = ('CREATE TABLE pool_volumes (volume_id VARCHAR(36), '
          'pool VARCHAR(255), status VARCHAR(16))',
          'CREATE TABLE claim_receipts (claim_key VARCHAR(255), '
          'state VARCHAR(16), volume_id VARCHAR(36), pool VARCHAR(255))')


class Setting:
    """A pool of one, a leased claim, a caller's volume in the other
    project and a golden volume with its snapshot: all accounted for."""

    def __init__(self, simulator, db_url):
        self.simulator = simulator
        self.db_url = db_url
        golden = simulator.add_volume(name='golden')
        simulator.add_snapshot(volume_id=golden)
        self.pooled = simulator.add_volume(
            name='pooled', metadata={vp_cinder.TAG_POOL: POOL})
        self.leased = simulator.add_volume(name='vnf-leased')
        self.given = simulator.add_volume(name='vnf-given', project=OTHER)
        self.insert('pool_volumes', volume_id=self.pooled, pool=POOL,
                    status='available')
        self.insert('claim_receipts', claim_key='k1', state='leased',
                    volume_id=self.leased, pool=POOL)
        self.answers = {'k1': self.leased, 'k2': self.given}

    def insert(self, table, **values):
        engine = sa.create_engine(self.db_url)
        with engine.begin() as conn:
            conn.execute(sa.text('INSERT INTO %s (%s) VALUES (%s)' % (
                table, ', '.join(values),
                ', '.join(':' + name for name in values))), values)
        engine.dispose()

    def problems(self, projects=(OTHER,)):
        return accounting.accounted(self.simulator, self.db_url, POOL,
                                    self.answers, projects=projects)


@pytest.fixture
def setting(tmp_path):
    db_url = 'sqlite:///%s' % (tmp_path / 'accounting.db')
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        for statement in TABLES:
            conn.execute(sa.text(statement))
    engine.dispose()
    with cinder_api.CinderSimulator() as simulator:
        yield Setting(simulator, db_url)


def test_everything_accounted_for(setting):
    assert setting.problems() == []


@pytest.mark.parametrize('project', [None, OTHER])
def test_an_untagged_leak_is_caught_in_any_project(setting, project):
    leak = setting.simulator.add_volume(name='vnf-lost', project=project)
    [problem] = setting.problems()
    assert leak in problem and 'tagged None' in problem
    assert 'in no pool, held by no receipt' in problem


def test_a_leak_in_a_project_not_named_goes_unseen(setting):
    # The test must name every project it claims into.
    setting.simulator.add_volume(name='vnf-lost', project=OTHER)
    assert setting.problems(projects=()) == []
    assert len(setting.problems()) == 1


def test_a_caller_nobody_knows_is_a_leak(setting):
    del setting.answers['k2']
    [problem] = setting.problems()
    assert setting.given in problem


def test_a_tagged_volume_without_a_row(setting):
    stray = setting.simulator.add_volume(
        name='stray', metadata={vp_cinder.TAG_POOL: POOL})
    problems = setting.problems()
    assert len(problems) == 2
    assert problems[0].startswith('tagged ') and stray in problems[0]
    assert stray in problems[1] and "tagged 'p1'" in problems[1]


def test_deleting_volumes_and_older_ones_are_left_out(setting):
    setting.simulator.deletion_delay = 60
    going = setting.simulator.add_volume(name='going')
    client = cinder_handles.noauth_cinder_client(
        setting.simulator.endpoint, setting.simulator.project_id)
    client.volumes.delete(going)
    assert setting.simulator.get_volume(going)['status'] == 'deleting'
    assert setting.problems() == []
    old = setting.simulator.get_volume(setting.leased)['created_at']
    setting.simulator.add_volume(name='vnf-lost')
    assert len(setting.problems()) == 1
    assert accounting.accounted(
        setting.simulator, setting.db_url, POOL, setting.answers,
        projects=(OTHER,), since='9999') == []
    assert old < '9999'


def test_another_tests_pool_volumes_made_before_are_not_this_tests(setting):
    """The functional tests share one Cinder: a pool volume an earlier
    test left behind has no row in this test's database."""
    setting.simulator.add_volume(name='earlier',
                                 metadata={vp_cinder.TAG_POOL: 'p0'})
    assert accounting.accounted(
        setting.simulator, setting.db_url, POOL, setting.answers,
        projects=(OTHER,), since='9999') == []
    stray = setting.simulator.add_volume(
        name='stray', metadata={vp_cinder.TAG_POOL: POOL})
    assert any(stray in problem for problem in accounting.accounted(
        setting.simulator, setting.db_url, POOL, setting.answers,
        projects=(OTHER,), since='9999'))


def test_another_pools_volume_made_late_is_not_this_tests(setting):
    """A create that an earlier test's killed manager sent can land after
    this test started: tagged for that test's pool, it is not this one's;
    an untagged volume made since is."""
    since = '0000'
    assert setting.problems() == []
    setting.simulator.add_volume(name='late',
                                 metadata={vp_cinder.TAG_POOL: 'p0'})
    assert accounting.accounted(
        setting.simulator, setting.db_url, POOL, setting.answers,
        projects=(OTHER,), since=since) == []
    lost = setting.simulator.add_volume(name='vnf-lost')
    assert any(lost in problem for problem in accounting.accounted(
        setting.simulator, setting.db_url, POOL, setting.answers,
        projects=(OTHER,), since=since))


def test_an_untagged_volume_named_for_another_pool_is_not_this_tests(
        setting):
    """A miss create of an earlier test, with no name of the caller's,
    handed over (its tags dropped) or untagged by a late request: named
    after that test's pool, made after this one started.  One named
    after this test's pool is still this test's."""
    since, pool = '0000', 'fn-0badc0de'
    setting.simulator.add_volume(name='volume-pool-fn-12345678-claimed-1')
    assert accounting.accounted(
        setting.simulator, setting.db_url, pool, setting.answers,
        projects=(OTHER,), since=since) == []
    mine = setting.simulator.add_volume(name='volume-pool-%s-claimed-2'
                                        % pool)
    found = accounting.accounted(setting.simulator, setting.db_url, pool,
                                 setting.answers, projects=(OTHER,),
                                 since=since)
    assert any(mine in problem for problem in found)
    assert not any('fn-12345678' in problem for problem in found)
