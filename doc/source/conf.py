"""Sphinx configuration of the volume-pool documentation."""

project = 'volume-pool'
copyright = 'volume-pool developers'
author = 'volume-pool developers'

extensions = [
    'sphinx.ext.autodoc',
    'oslo_config.sphinxext',
    'oslo_config.sphinxconfiggen',
]

# oslo_config.sphinxconfiggen: write the sample file from the options at
# build time, so the reference and the sample never drift from the code.
config_generator_config_file = (
    '../../etc/volume-pool/volume-pool-config-generator.conf')
sample_config_basename = '_static/volume-pool'

autodoc_member_order = 'bysource'
autodoc_default_options = {'members': True, 'show-inheritance': True}

master_doc = 'index'
exclude_patterns = []
html_theme = 'alabaster'
html_static_path = ['_static']
html_theme_options = {'description': 'A warm pool of ready Cinder volumes'}
