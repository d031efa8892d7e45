"""The committed sample config is what the installed oslo-config-generator
script makes now (the unit layer calls its main in process)."""

import os
import subprocess
import sys

from volume_pool.tests.unit.test_sample_config import GENERATOR_CONF
from volume_pool.tests.unit.test_sample_config import SAMPLE
from volume_pool.tests.unit.test_sample_config import TOP


def test_sample_config_matches_the_options(tmp_path):
    generated = tmp_path / 'volume-pool.conf.sample'
    generator = os.path.join(os.path.dirname(sys.executable),
                             'oslo-config-generator')
    subprocess.run([generator, '--config-file', GENERATOR_CONF,
                    '--output-file', str(generated)],
                   check=True, capture_output=True, timeout=120, cwd=TOP)
    with open(SAMPLE) as committed:
        assert generated.read_text() == committed.read(), (
            'etc/volume-pool/volume-pool.conf.sample is stale: run '
            '"tox -e genconfig" and commit the result')
