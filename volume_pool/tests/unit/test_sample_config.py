"""The committed sample configs: the full one is what
oslo-config-generator makes now (its main, in this process; the functional
layer runs its script), and the two-cluster one sets only options the
service has, and starts the managers of both clusters."""

import os

from oslo_config import cfg
from oslo_config import generator

import volume_pool
from volume_pool import cinder_session
from volume_pool import config
from volume_pool import pool_spec
from volume_pool import rpc
from volume_pool.conf import volume_pool as vp_conf_volume_pool

TOP = os.path.dirname(os.path.dirname(volume_pool.__file__))
GENERATOR_CONF = os.path.join(TOP, 'etc', 'volume-pool',
                              'volume-pool-config-generator.conf')
SAMPLE = os.path.join(TOP, 'etc', 'volume-pool', 'volume-pool.conf.sample')


def test_sample_config_matches_the_options(tmp_path):
    generated = tmp_path / 'volume-pool.conf.sample'
    generator.main(['--config-file', GENERATOR_CONF,
                    '--output-file', str(generated)])
    with open(SAMPLE) as committed:
        assert generated.read_text() == committed.read(), (
            'etc/volume-pool/volume-pool.conf.sample is stale: run '
            '"tox -e genconfig" and commit the result')


def test_sample_documents_every_pool_option():
    with open(SAMPLE) as sample:
        text = sample.read()
    assert '[pool:name]' in text
    for option in ('snapshot_id', 'target', 'size', 'volume_type',
                   'availability_zone', 'name_prefix'):
        assert '#%s = ' % option in text
    for option in ('replenish_interval', 'sync_interval',
                   'creating_timeout'):
        assert '#%s = ' % option in text
    assert '#enabled_pools =' in text


TWO_CLUSTERS = os.path.join(TOP, 'etc', 'volume-pool',
                            'volume-pool.conf.two-clusters.sample')
EAST_DEBIAN = '6f1c1a3e-0d8e-4c54-9a43-8f0a3a2f7e11'
WEST_DEBIAN = '9a41d2c7-3b8e-4f15-8c6a-1e2d3f4a5b60'


def _written_options(path):
    """``{section: option names}`` as the file sets them, read by
    oslo.config's own parser."""
    sections = {}
    cfg.ConfigParser(path, sections).parse()
    return {section: set(options) for section, options in sections.items()}


def _start_as(conf, tmp_path, host, cluster):
    """Parse the sample as the manager ``host`` of ``cluster`` would, with
    the checks of its start-up that need no service; its pool specs."""
    mine = tmp_path / ('%s.conf' % host)
    mine.write_text('[DEFAULT]\nhost = %s\ncluster = %s\n' % (host, cluster))
    config.parse_args(['--config-file', TWO_CLUSTERS,
                       '--config-file', str(mine)])
    specs = pool_spec.load_specs(conf)
    assert vp_conf_volume_pool.check(conf) is None
    assert pool_spec.unused_pool_sections(conf) == []
    cinder_session.load(conf)  # registers the auth plugin's options
    rpc.check_transport_url(conf)  # registers transport_url
    return specs


def _unknown_options(conf, written):
    """The options ``written`` that ``conf`` has no registered option for;
    sections it has not registered (another cluster's) are left out."""
    unknown, checked = [], set()
    for section, options in written.items():
        if section != 'DEFAULT' and section not in conf:
            continue
        checked.add(section)
        group = None if section == 'DEFAULT' else section
        for option in sorted(options):
            try:
                # Reading parses the value too: a bad one raises.
                (conf[group] if group else conf)[option]
            except cfg.NoSuchOptError:
                unknown.append('[%s] %s' % (section, option))
    return unknown, checked


def test_two_clusters_sample_loads_on_every_manager(conf, tmp_path):
    """Every option the sample sets is one of the service's, and the file
    starts the managers of both clusters, each with its own pools."""
    written = _written_options(TWO_CLUSTERS)
    assert written['DEFAULT'] >= {'host', 'cluster'}
    checked = set()

    east = _start_as(conf, tmp_path, 'east-2', 'east')
    unknown, seen = _unknown_options(conf, written)
    assert unknown == []
    checked |= seen
    assert (east['debian'].cluster, east['debian'].snapshot_id,
            east['debian'].volume_type, east['debian'].target,
            east['debian'].size) == ('east', EAST_DEBIAN, 'ceph-east', 5, 10)

    west = _start_as(conf, tmp_path, 'west-1', 'west')
    unknown, seen = _unknown_options(conf, written)
    assert unknown == []
    checked |= seen
    assert (west['debian'].cluster, west['debian'].snapshot_id,
            west['debian'].volume_type, west['debian'].target,
            west['debian'].size) == ('west', WEST_DEBIAN, 'ceph-west', 8, 10)
    assert east['windows'].snapshot_id != west['windows'].snapshot_id

    # Every section was some manager's.
    assert checked == set(written)
    assert conf.coordination.backend_url  # several clusters need one


def test_two_clusters_sample_as_written_is_east_1(conf):
    config.parse_args(['--config-file', TWO_CLUSTERS])
    assert (conf.host, conf.cluster) == ('east-1', 'east')
