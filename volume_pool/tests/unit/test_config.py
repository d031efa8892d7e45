"""Pool configuration: valid layouts load, bad ones stop with one line."""

import pytest

from volume_pool import config
from volume_pool import exception
from volume_pool import pool_spec
from volume_pool.cmd import manager as manager_cmd

SNAP = '6f1c1a3e-0d8e-4c54-9a43-8f0a3a2f7e11'


def test_pools_load_with_defaults_and_overrides(write_config, conf):
    write_config("""
        [DEFAULT]
        cluster = east
        [volume_pool]
        enabled_pools = debian, windows
        [pool:debian]
        snapshot_id = %s
        target = 5
        size = 10
        volume_type = fast
        [pool:windows]
        snapshot_id = %s
        """ % (SNAP, SNAP))
    specs = pool_spec.load_specs(conf)
    assert list(specs) == ['debian', 'windows']
    debian = specs['debian']
    assert (debian.target, debian.size, debian.volume_type,
            debian.cluster) == (5, 10, 'fast', 'east')
    assert debian.volume_name_prefix == 'volume-pool-debian-'
    assert specs['windows'].target == 1
    assert specs['windows'].size is None


@pytest.mark.parametrize('body, needle', [
    ("""[volume_pool]
        enabled_pools = debian
        [pool:debian]
        target = 2
        """, '[pool:debian] snapshot_id is required'),
    ("""[volume_pool]
        enabled_pools = debian
        """, "pool 'debian' has no [pool:debian] section"),
    ("""[volume_pool]
        enabled_pools = debian
        [pool:debian]
        snapshot_id = %s
        target = -1
        """ % SNAP, '[pool:debian] target'),
    ("""[volume_pool]
        enabled_pools = debian
        [pool:debian]
        snapshot_id = not-a-uuid
        """, "[pool:debian] snapshot_id: 'not-a-uuid' is not a UUID"),
    ("""[volume_pool]
        enabled_pools = debian, debian
        [pool:debian]
        snapshot_id = %s
        """ % SNAP, "pool 'debian' is listed twice"),
    ("""[volume_pool]
        enabled_pools = bad/name
        """, "invalid pool name 'bad/name'"),
    ("""[volume_pool]
        enabled_pools = debian
        [pool:debian]
        snapshot_id = %s
        target = auto
        min_ready = 4
        max_ready = 3
        """ % SNAP, '[pool:debian] min_ready (4) is above max_ready (3)'),
    ("""[volume_pool]
        enabled_pools = debian
        [pool:debian]
        snapshot_id = %s
        target = 2
        min_ready = 3
        """ % SNAP, '[pool:debian] min_ready (3) is above target (2)'),
    ("""[volume_pool]
        enabled_pools = debian
        [pool:debian]
        snapshot_id = %s
        target = auto
        """ % SNAP, '[pool:debian] target = auto needs max_ready'),
    ("""[volume_pool]
        enabled_pools = debian
        [pool:debian]
        snapshot_id = %s
        target = lots
        """ % SNAP, '[pool:debian] target'),
    ("""[volume_pool]
        enabled_pools = debian
        [pool:debian]
        snapshot_id = %s
        idle_ttl = -5
        """ % SNAP, '[pool:debian] idle_ttl'),
    ("""[volume_pool]
        enabled_pools = debian
        [pool:debian]
        snapshot_id = %s
        max_ready_gb = -1
        """ % SNAP, '[pool:debian] max_ready_gb'),
    ("""[volume_pool]
        enabled_pools = debian
        [pool:debian]
        snapshot_id = %s
        max_ready = -1
        """ % SNAP, '[pool:debian] max_ready'),
    ("""[volume_pool]
        enabled_pools = debian
        max_total_gb = -10
        [pool:debian]
        snapshot_id = %s
        """ % SNAP, '[volume_pool] max_total_gb'),
])
def test_bad_pool_config_names_the_option(write_config, conf, body, needle):
    # A global option is refused as the file is parsed, a pool's as the
    # pools are loaded.
    with pytest.raises((exception.ConfigError, config.InvalidValue)) as info:
        write_config(body)
        pool_spec.load_specs(conf)
    assert needle in str(info.value)
    assert '\n' not in str(info.value)


def test_unused_pool_sections_are_reported(write_config, conf):
    write_config("""
        [volume_pool]
        enabled_pools = debian
        [pool:debian]
        snapshot_id = %s
        [pool:old]
        snapshot_id = %s
        """ % (SNAP, SNAP))
    assert pool_spec.unused_pool_sections(conf) == ['pool:old']


def test_target_is_mutable_for_sighup(write_config, conf):
    path = write_config("""
        [volume_pool]
        enabled_pools = debian
        [pool:debian]
        snapshot_id = %s
        target = 2
        """ % SNAP)
    assert pool_spec.load_specs(conf)['debian'].target == 2
    path.write_text(path.read_text().replace('target = 2', 'target = 7'))
    conf.mutate_config_files()
    assert pool_spec.load_specs(conf)['debian'].target == 7


def test_cluster_section_overrides_the_shared_one(write_config, conf):
    other = '0b5d5f0e-4a39-4f7e-9d8e-2b1c7a9c4d21'
    text = """
        [DEFAULT]
        cluster = %s
        [volume_pool]
        enabled_pools = debian
        [pool:debian]
        snapshot_id = %s
        target = 5
        size = 10
        [pool:debian@east]
        snapshot_id = %s
        target = 2
        """
    write_config(text % ('east', SNAP, other))
    east = pool_spec.load_specs(conf)['debian']
    assert (east.snapshot_id, east.target, east.size) == (other, 2, 10)
    assert pool_spec.unused_pool_sections(conf) == []
    write_config(text % ('west', SNAP, other))
    west = pool_spec.load_specs(conf)['debian']
    assert (west.snapshot_id, west.target, west.cluster) == (SNAP, 5, 'west')


def test_target_auto_bounds_caps_and_idle_load(write_config, conf):
    write_config("""
        [volume_pool]
        enabled_pools = debian, windows
        max_total_gb = 100
        [pool:debian]
        snapshot_id = %s
        target = AUTO
        min_ready = 1
        max_ready = 8
        max_ready_gb = 40
        idle_ttl = 3600
        [pool:windows]
        snapshot_id = %s
        target = 5
        """ % (SNAP, SNAP))
    specs = pool_spec.load_specs(conf)
    debian, windows = specs['debian'], specs['windows']
    assert (debian.auto, debian.target, debian.target_label) == (
        True, 8, 'auto')
    assert (debian.min_ready, debian.max_ready, debian.max_ready_gb,
            debian.idle_ttl) == (1, 8, 40, 3600)
    assert (windows.auto, windows.target, windows.target_label) == (
        False, 5, '5')
    assert (windows.min_ready, windows.max_ready, windows.idle_ttl) == (
        0, None, 0)
    assert pool_spec.max_total_gb(conf) == 100


def test_a_pool_spelt_in_another_case_than_its_volumes_clashes():
    assert pool_spec.case_clash(['gold', 'Debian'], ['gold', 'debian']) == (
        'Debian', 'debian')
    assert pool_spec.case_clash(['gold'], ['gold', 'GOLDEN']) is None
    assert pool_spec.case_clash(['gold'], []) is None


class _Reloaded:
    """The service's side of a reload: it hands it to its manager."""

    def __init__(self, manager):
        self.manager = manager

    def reset(self):
        self.manager.reset()


@pytest.mark.parametrize('change, needle', [
    (('target = 2', 'target = -3'), '[pool:debian] target'),
    (('target = 2', 'target = many'), '[pool:debian] target: '),
])
def test_a_reload_refuses_a_value_out_of_range_and_keeps_the_pools(
        make_manager, conf, tmp_path, caplog, change, needle):
    mgr = make_manager({'debian': 2})
    path = tmp_path / 'volume-pool.conf'
    path.write_text(path.read_text().replace(*change))
    manager_cmd.reload_config(_Reloaded(mgr), conf)
    [refused] = [r for r in caplog.records
                 if r.getMessage().startswith('Reload refused')]
    assert needle in refused.getMessage()
    assert 'LocationInfo' not in refused.getMessage()
    assert refused.exc_info is None  # one line, no traceback
    assert mgr.specs['debian'].target == 2


def test_a_reload_with_good_values_changes_the_target(make_manager, conf,
                                                      tmp_path):
    mgr = make_manager({'debian': 2})
    path = tmp_path / 'volume-pool.conf'
    path.write_text(path.read_text().replace('target = 2', 'target = 5'))
    manager_cmd.reload_config(_Reloaded(mgr), conf)
    assert mgr.specs['debian'].target == 5
