"""Every claim that fails is logged once, with its error's type, claim
key, pool and request id, and counted ``refused`` when the pool said no
to its caller, ``error`` when the service failed."""

import logging

import pytest

from volume_pool import context as vp_context
from volume_pool import exception
from volume_pool import metrics
from volume_pool.tests.unit.manager_steps import call
from volume_pool.tests.unit.manager_steps import fill


def claims_counted(pool, outcome):
    return metrics.REGISTRY.get_sample_value(
        'volume_pool_claims_total',
        {'cluster': '', 'pool': pool, 'outcome': outcome}) or 0.0


def failure_lines(caplog):
    return [record for record in caplog.records
            if record.name == 'volume_pool.claim_failures']


@pytest.mark.parametrize('kwargs, error, pool', [
    ({'snapshot_type': 'debian', 'create_on_miss': False}, 'PoolEmpty',
     'debian'),
    ({'snapshot_type': 'no-such-pool'}, 'PoolNotFound', '(unknown)'),
    ({'snapshot_type': 'debian', 'name': 'x' * 300}, 'InvalidClaimRequest',
     'debian'),
    ({'snapshot_type': 'debian',
      'project_id': '0123456789abcdef0123456789abcdef'},
     'ProjectNotAllowed', 'debian'),
])
def test_a_refused_claim_is_one_info_line_and_counted_refused(
        make_manager, caplog, kwargs, error, pool):
    mgr = make_manager({'debian': 0})
    ctxt = vp_context.RequestContext(request_id='req-refused-1')
    before = {outcome: claims_counted(pool, outcome)
              for outcome in ('refused', 'error')}
    caplog.set_level(logging.INFO)
    with pytest.raises(exception.VolumePoolException) as caught:
        call(mgr.claim, ctxt=ctxt, claim_key='key-refused-1', **kwargs)
    assert caught.value.__class__.__name__ == error
    [line] = failure_lines(caplog)
    assert line.levelno == logging.INFO
    text = line.getMessage()
    for needle in (error, 'claim key key-refused-1', 'request req-refused-1',
                   'pool %s' % pool, '(refused)'):
        assert needle in text
    assert claims_counted(pool, 'refused') == before['refused'] + 1
    assert claims_counted(pool, 'error') == before['error']


def test_a_claim_cinder_fails_is_one_warning_and_counted_error(
        make_manager, simulator, caplog):
    mgr = make_manager({'debian': 1})
    fill(mgr)
    before = claims_counted('debian', 'error')
    simulator.inject_fault(status=503, method='PUT')
    caplog.set_level(logging.INFO)
    with pytest.raises(exception.CinderUnavailable):
        call(mgr.claim, 'debian', claim_key='key-503',
             ctxt=vp_context.RequestContext(request_id='req-503'))
    [line] = failure_lines(caplog)
    assert line.levelno == logging.WARNING
    assert 'CinderUnavailable' in line.getMessage()
    assert 'claim key key-503' in line.getMessage()
    assert 'request req-503' in line.getMessage()
    assert claims_counted('debian', 'error') == before + 1


def test_the_claimed_line_names_the_claim_key(make_manager, caplog):
    mgr = make_manager({'debian': 1})
    fill(mgr)
    caplog.set_level(logging.INFO)
    result = call(mgr.claim, 'debian', claim_key='key-ok-1')
    [line] = [r.getMessage() for r in caplog.records
              if r.getMessage().startswith('Claimed volume')]
    assert result['volume_id'] in line and 'claim key key-ok-1' in line
    assert failure_lines(caplog) == []
