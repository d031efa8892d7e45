"""The chaos soak's checker across projects: a claim into the second
project keeps its volume there, and a volume there that nobody holds,
tagged or not, is a leak."""

import pytest

from volume_pool.tests.chaos import check
from volume_pool.tests.chaos import record as rec
from volume_pool.tests.unit.test_chaos_check import kinds
from volume_pool.tests.unit.test_chaos_check import LEASE
from volume_pool.tests.unit.test_chaos_check import State
from volume_pool.tests.unit.test_chaos_check import volume


@pytest.fixture
def state():
    return State()


HOME, OTHER = 'home-project', 'other-project'


def in_project(project, *args, **kwargs):
    made = volume(*args, **kwargs)
    made['project'] = project
    return made


def check_in_projects(state):
    return check.check(state.records, state.volumes, state.rows,
                       state.receipts, pools=state.pools,
                       golden=state.golden, lease=LEASE, home=HOME)


def projects_state(state):
    """k1 claimed into OTHER; everything else in HOME."""
    state.volumes = [dict(v, project=HOME) for v in state.volumes]
    state.volumes[4]['project'] = OTHER
    state.record('k1').project = OTHER
    state.record('k1').outcome = rec.KEPT
    return state


def test_a_project_claim_kept_in_its_project_is_fine(state):
    assert check_in_projects(projects_state(state)).ok


@pytest.mark.parametrize('tags', [{}, {check.TAG_POOL: 'p1'}])
def test_a_leak_in_the_other_project_tagged_or_not(state, tags):
    projects_state(state).volumes.append(in_project(OTHER, 'v9', **tags))
    report = check_in_projects(state)
    assert kinds(report) == [check.LEAK]
    assert 'v9' in report.violations[0].message
    assert 'project %s' % OTHER in report.violations[0].message


def test_a_project_claims_volume_left_in_the_pools_project(state):
    projects_state(state).volumes[4]['project'] = HOME
    report = check_in_projects(state)
    assert kinds(report) == [check.LOST]
    assert 'volume v3 of key k1 is in project %s, not %s' % (HOME, OTHER) \
        in report.violations[0].message


def test_a_pool_row_whose_volume_moved_to_another_project(state):
    projects_state(state).volumes[1]['project'] = OTHER
    report = check_in_projects(state)
    assert check.POOL in kinds(report)
    assert any('pool p1 volume v1 is in project %s' % OTHER in v.message
               for v in report.violations)
