"""Sphinx configuration of the release notes (reno)."""

project = 'volume-pool Release Notes'
copyright = '2026, the volume-pool developers'
extensions = ['reno.sphinxext']
master_doc = 'index'
exclude_patterns = ['_build']
html_theme = 'alabaster'
html_static_path = []
