"""Every third-party distribution the package imports is declared where
its importers are installed from: the service's modules in
requirements.txt, the benchmark's in the ``bench`` extra, the charts'
in ``charts``, the test fixtures' in test-requirements.txt.  A library
that only arrives through another one's dependencies goes the day that
one drops it."""

import ast
import configparser
import importlib.metadata
import os
import re
import sys

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..',
                                   '..'))
PACKAGE = os.path.join(TOP, 'volume_pool')


def _names(path):
    """The top-level names of the modules a file imports, anywhere in
    it (a late import is still a dependency)."""
    with open(path) as source:
        tree = ast.parse(source.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.split('.')[0] for alias in node.names)
        elif (isinstance(node, ast.ImportFrom) and node.module and
              node.level == 0):
            yield node.module.split('.')[0]


def _home(relative):
    """Which declaration a module's imports belong to."""
    if relative == os.path.join('bench', 'plot.py'):
        return 'charts'  # the demo draws with it, on the charts extra alone
    if relative.startswith(('bench' + os.sep, 'tests' + os.sep)):
        return relative.split(os.sep)[0]
    if relative.startswith('fixtures' + os.sep):
        return 'tests'
    return 'service'


def _imported():
    """``{home: {distribution: a file that imports it}}``."""
    distributions = importlib.metadata.packages_distributions()
    found = {}
    for root, _dirs, files in os.walk(PACKAGE):
        for name in files:
            if not name.endswith('.py'):
                continue
            path = os.path.join(root, name)
            home = _home(os.path.relpath(path, PACKAGE))
            for module in _names(path):
                if module in sys.stdlib_module_names or module in (
                        'volume_pool', '__future__'):
                    continue
                for distribution in distributions.get(module, [module]):
                    found.setdefault(home, {}).setdefault(
                        _normal(distribution), path)
    return found


def _normal(name):
    return re.sub(r'[-_.]+', '-', name).lower()


def _declared(lines):
    names = set()
    for line in lines:
        line = line.split('#')[0].strip()
        if line and not line.startswith('-'):
            names.add(_normal(re.split(r'[<>=!~\[; ]', line)[0]))
    return names


def _file(name):
    with open(os.path.join(TOP, name)) as requirements:
        return _declared(requirements)


def _extra(name):
    setup = configparser.ConfigParser()
    setup.read(os.path.join(TOP, 'setup.cfg'))
    return _declared(setup['extras'][name].splitlines())


def test_every_imported_distribution_is_declared():
    service = _file('requirements.txt')
    homes = {'service': service,
             'bench': service | _extra('bench'),
             'charts': service | _extra('charts'),
             'tests': service | _file('test-requirements.txt') |
             _extra('bench')}
    missing = {(home, distribution, os.path.relpath(path, TOP))
               for home, imported in _imported().items()
               for distribution, path in imported.items()
               if distribution not in homes[home]}
    assert missing == set()
