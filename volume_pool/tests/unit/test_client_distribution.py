"""The volume-pool-client distribution (client/) holds exactly what
volume_pool.rpcapi imports of this package, as links to the service's
own files, and asks for no library the service's modules would need."""

import ast
import os

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..',
                                   '..'))
PACKAGE = os.path.join(TOP, 'volume_pool')
CLIENT = os.path.join(TOP, 'client')


def _imports(module):
    """Top-level imports of ``volume_pool/<module>.py``: (ours, others)."""
    with open(os.path.join(PACKAGE, module + '.py')) as source:
        tree = ast.parse(source.read())
    ours, others = set(), set()
    # Imports in a top-level "with" block are module imports too.
    nodes = []
    for node in tree.body:
        nodes.extend(node.body if isinstance(node, ast.With) else [node])
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == 'volume_pool':
                ours.update(alias.name for alias in node.names)
            elif node.module.startswith('volume_pool.'):
                ours.add(node.module.split('.')[1])
            else:
                others.add(node.module.split('.')[0])
        elif isinstance(node, ast.Import):
            others.update(alias.name.split('.')[0] for alias in node.names)
    return ours, others


def _closure(module):
    seen, libraries, todo = set(), set(), [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        ours, others = _imports(name)
        libraries |= others
        todo.extend(ours)
    return seen, libraries


def test_client_links_exactly_what_rpcapi_imports():
    modules, _libraries = _closure('rpcapi')
    linked = {}
    for name in os.listdir(os.path.join(CLIENT, 'volume_pool')):
        path = os.path.join(CLIENT, 'volume_pool', name)
        assert os.path.islink(path), '%s must link to the service file' % name
        assert os.path.realpath(path) == os.path.join(PACKAGE, name)
        linked[name[:-3]] = path
    assert set(linked) == modules | {'__init__'}


def test_client_requirements_cover_what_its_modules_import():
    _modules, libraries = _closure('rpcapi')
    third_party = {name for name in libraries
                   if name.startswith('oslo_')}
    with open(os.path.join(CLIENT, 'requirements.txt')) as requirements:
        listed = {line.split('>=')[0].strip().replace('.', '_')
                  for line in requirements
                  if line.strip() and not line.startswith('#')}
    assert third_party <= listed
    # Nothing of the service's own stack.
    assert not listed & {'SQLAlchemy', 'oslo_db', 'python-cinderclient',
                         'keystoneauth1', 'tooz'}
