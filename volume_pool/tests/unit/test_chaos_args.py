"""The chaos soak's command line: the topology, its coordination backend,
and the faults each topology draws from by default or accepts."""

import pytest

from volume_pool.tests.chaos import __main__ as chaos_main
from volume_pool.tests.chaos import faults


def parse(*argv):
    return chaos_main.parse_args(list(argv))


def refused(capsys, *argv):
    with pytest.raises(SystemExit) as exited:
        parse(*argv)
    assert exited.value.code == 2
    return capsys.readouterr().err


def test_single_by_default_with_its_faults():
    args = parse()
    assert args.topology == 'single'
    assert args.faults == list(faults.KINDS)
    assert faults.REDIS in args.faults
    assert not set(args.faults) & {faults.GALERA_NODE, faults.RABBIT_NODE,
                                   faults.SENTINEL, faults.ETCD_LEADER}


def test_ha_with_sentinel_by_default():
    args = parse('--topology', 'ha')
    assert args.coordination == 'sentinel'
    assert args.faults == list(faults.HA_KINDS) + [faults.SENTINEL]
    assert faults.REDIS not in args.faults
    for kind in (faults.KILL, faults.RABBIT, faults.DATABASE,
                 faults.CINDER_STOP, faults.PROXY_STALL, faults.PROXY_BURST,
                 faults.GALERA_NODE, faults.RABBIT_NODE):
        assert kind in args.faults


def test_ha_with_etcd():
    args = parse('--topology', 'ha', '--coordination', 'etcd')
    assert args.faults == list(faults.HA_KINDS) + [faults.ETCD_LEADER]
    assert faults.SENTINEL not in args.faults


def test_every_kind_has_its_method():
    chaos = faults.Chaos(rig=None, rng=None)
    for kind in faults.ALL_KINDS:
        assert callable(getattr(chaos, '_' + kind)), kind
    assert len(set(faults.ALL_KINDS)) == len(faults.ALL_KINDS)


@pytest.mark.parametrize('argv, kinds', [
    (('--faults', 'kill_manager, redis_restart'),
     ['kill_manager', 'redis_restart']),
    (('--topology', 'ha', '--faults', 'galera_node_kill,rabbit_node_stop'),
     ['galera_node_kill', 'rabbit_node_stop']),
    (('--topology', 'ha', '--coordination', 'etcd', '--faults',
      'etcd_leader_kill'), ['etcd_leader_kill']),
    (('--topology', 'ha', '--faults', ''), []),
    (('--faults', ''), []),
])
def test_faults_named(argv, kinds):
    assert parse(*argv).faults == kinds


@pytest.mark.parametrize('argv, named', [
    (('--faults', 'galera_node_kill'), 'galera_node_kill'),
    (('--faults', 'kill_manager,sentinel_failover'), 'sentinel_failover'),
    (('--topology', 'ha', '--faults', 'redis_restart'), 'redis_restart'),
    (('--topology', 'ha', '--faults', 'etcd_leader_kill'),
     'etcd_leader_kill'),
    (('--topology', 'ha', '--coordination', 'etcd', '--faults',
      'sentinel_failover'), 'sentinel_failover'),
    (('--faults', 'no_such_fault'), 'no_such_fault'),
])
def test_faults_off_the_topology_refused(capsys, argv, named):
    err = refused(capsys, *argv)
    assert '--faults' in err
    assert named in err
    assert 'known there' in err


def test_the_error_names_the_topology_and_its_kinds(capsys):
    err = refused(capsys, '--topology', 'ha', '--faults', 'redis_restart')
    assert 'ha with sentinel' in err
    assert 'galera_node_kill' in err and 'sentinel_failover' in err


def test_ha_is_galera_only(capsys):
    err = refused(capsys, '--topology', 'ha', '--backend', 'postgresql')
    assert 'Galera' in err


def test_unknown_topology_or_coordination_refused(capsys):
    refused(capsys, '--topology', 'triple')
    refused(capsys, '--topology', 'ha', '--coordination', 'zookeeper')
