"""The committed sample config is what oslo-config-generator makes now
(its main, in this process; the functional layer runs its script)."""

import os

from oslo_config import generator

import volume_pool

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
