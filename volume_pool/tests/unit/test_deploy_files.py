"""The files an operator deploys with, read as text: the systemd unit and
the user and directory it needs, what the install guide says of them, and
the DevStack plugin's Redis (bash runs the shell tools and the plugin in
the functional layer), and the contributor guide's module table against
the package's modules."""

import configparser
import os
import re
import shlex

from volume_pool.conf import default as default_conf

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
UNIT = os.path.join('etc', 'systemd', 'volume-pool-manager.service')
SYSUSERS = os.path.join('etc', 'sysusers.d', 'volume-pool.conf')
TMPFILES = os.path.join('etc', 'tmpfiles.d', 'volume-pool.conf')
INSTALL_GUIDE = os.path.join('doc', 'source', 'install.rst')
DEVSTACK_PLUGIN = os.path.join('devstack', 'plugin.sh')


def _text(path):
    with open(os.path.join(TOP, path)) as f:
        return f.read()


def _ini(path):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(os.path.join(TOP, path))
    return parser


def _service():
    return _ini(UNIT)['Service']


def _exec_start():
    return shlex.split(_service()['ExecStart'])


def console_scripts():
    """``{command: entry point}`` that setup.cfg installs."""
    lines = _ini('setup.cfg')['entry_points']['console_scripts']
    return dict((part.strip() for part in line.split('=', 1))
                for line in lines.strip().splitlines())


def _data_files():
    """``{path under the install prefix: source}`` of setup.cfg."""
    files, target = {}, None
    for line in _ini('setup.cfg')['files']['data_files'].splitlines():
        if line.strip().endswith('='):
            target = line.strip()[:-1].strip()
        elif line.strip():
            source = line.strip()
            files[os.path.join(target, os.path.basename(source))] = source
    return files


def _entries(path):
    """The lines of a sysusers.d or tmpfiles.d file, split into fields
    (quoted fields, such as a GECOS, are one)."""
    return [shlex.split(line) for line in _text(path).splitlines()
            if line.strip() and not line.lstrip().startswith('#')]


def _venv():
    """The virtualenv the unit runs the daemon from."""
    return os.path.dirname(os.path.dirname(_exec_start()[0]))


def test_systemd_unit():
    service = _service()
    assert service['Type'] == 'simple'
    assert _exec_start() == [
        '/opt/volume-pool/bin/volume-pool-manager', '--config-file',
        '/etc/volume-pool/volume-pool.conf']
    assert '-HUP' in service['ExecReload']
    # Longer than the service's own graceful_shutdown_timeout (60 s).
    assert int(service['TimeoutStopSec']) > 60
    # The hardening stays.
    assert service['NoNewPrivileges'] == 'true'
    assert service['ProtectSystem'] == 'full'
    assert service['PrivateTmp'] == 'true'
    assert _ini(UNIT)['Install']['WantedBy'] == 'multi-user.target'


def test_exec_start_runs_an_installed_script():
    path = _exec_start()[0]
    assert os.path.isabs(path)
    assert console_scripts()[os.path.basename(path)] == (
        'volume_pool.cmd.manager:main')


def test_exec_start_is_where_the_install_guide_installs():
    guide = _text(INSTALL_GUIDE)
    venv = _venv()
    assert 'python3 -m venv %s\n' % venv in guide
    # From the checkout: the package is on no index.
    assert '%s/bin/pip install -c upper-constraints.txt .\n' % venv in guide


def test_install_guide_overrides_exec_start_with_a_drop_in():
    """Installed elsewhere, the guide's drop-in must reset ExecStart and
    start the same command line from another path."""
    lines = [line.strip() for line in _text(INSTALL_GUIDE).splitlines()]
    assert 'systemctl edit volume-pool-manager' in lines
    assert any('command -v volume-pool-manager' in line for line in lines)
    reset = lines.index('ExecStart=')
    assert lines[reset - 1] == '[Service]'
    override = shlex.split(lines[reset + 1].split('=', 1)[1])
    assert lines[reset + 1].startswith('ExecStart=/')
    assert override[0] != _exec_start()[0]
    assert os.path.basename(override[0]) == 'volume-pool-manager'
    assert override[1:] == _exec_start()[1:]


def test_unit_user_comes_from_sysusers():
    service = _service()
    users = {e[1]: e for e in _entries(SYSUSERS) if e[0] == 'u'}
    groups = {e[1] for e in _entries(SYSUSERS) if e[0] == 'g'}
    user = users[service['User']]
    # "u" makes the group of the same name unless one is given.
    assert service['Group'] in groups | {user[1]}
    assert user[2] == '-'  # a system user, its id chosen by systemd
    assert user[4] == '/var/lib/' + service['StateDirectory']


def test_state_directory_is_made_before_the_first_start():
    service = _service()
    state_dir = '/var/lib/' + service['StateDirectory']
    # The service's own default of [DEFAULT] state_path.
    state_path = {opt.name: opt for opt in default_conf.default_opts}[
        'state_path']
    assert state_path.default == state_dir
    entries = {e[1]: e for e in _entries(TMPFILES) if e[0] == 'd'}
    kind, path, mode, user, group, _age = entries[state_dir]
    assert (mode, user, group) == (
        service['StateDirectoryMode'], service['User'], service['Group'])


def test_package_ships_the_deploy_files_the_guide_copies():
    shipped = _data_files()
    for source in shipped.values():
        assert os.path.isfile(os.path.join(TOP, source)), source
    assert {UNIT, SYSUSERS, TMPFILES} <= set(shipped.values())
    guide = _text(INSTALL_GUIDE)
    for installed in shipped:
        assert os.path.join(_venv(), installed) in guide, installed


def test_install_guide_names_every_console_script():
    """One definition per installed command, and none that is not."""
    described = {line.strip('`') for line in
                 _text(INSTALL_GUIDE).splitlines()
                 if line.startswith('``volume-pool-') and
                 line.endswith('``')}
    assert described == set(console_scripts())


def _shell_functions(text):
    """``{name: body}`` of the functions of a script."""
    return dict(re.findall(r'^function (\w+) \{\n(.*?)^\}', text,
                           re.M | re.S))


def _phase(plugin, phase):
    """The branch of the plugin's dispatch that runs at ``stack PHASE``."""
    branch = plugin.split('"$2" == "%s" ]]; then' % phase, 1)[1]
    return branch.split('elif', 1)[0]


def test_devstack_installs_the_redis_whose_url_it_writes():
    """DevStack runs no Redis: whatever redis:// URL the plugin writes to
    [coordination] backend_url, it installs and starts Redis first."""
    plugin = _text(DEVSTACK_PLUGIN)
    functions = _shell_functions(plugin)
    writers = [name for name, body in functions.items()
               if 'coordination backend_url' in body]
    installers = [name for name, body in functions.items()
                  if re.search(r'^\s*install_package redis', body, re.M)]
    assert len(writers) == 1 and len(installers) == 1
    writer, installer = functions[writers[0]], functions[installers[0]]
    # The writer writes the URL whenever it is set; the installer skips
    # only URLs that are not redis://.
    assert 'if [[ -n "$VOLUME_POOL_COORDINATION_URL" ]]; then' in writer
    assert re.search(r'^    if \[\[ "\$VOLUME_POOL_COORDINATION_URL" != '
                     r'redis://\* \]\]; then\n        return 0\n    fi\n',
                     installer, re.M)
    for distro, package in (('if is_ubuntu; then', 'redis-server'),
                            ('else', 'redis')):
        block = installer.split('    %s\n' % distro, 1)[1]
        assert block.split('\n')[:2] == [
            '        install_package %s' % package,
            '        restart_service %s' % package]
    # Installed at "stack install", before the configuration is written
    # at "stack post-config".
    assert installers[0] in _phase(plugin, 'install')
    assert writers[0] in _phase(plugin, 'post-config')


def _production_modules():
    """Paths of the package's modules, relative to it, but the tests and
    the packages' __init__."""
    package = os.path.join(TOP, 'volume_pool')
    for root, dirs, files in os.walk(package):
        dirs[:] = [d for d in dirs if d not in ('tests', '__pycache__')]
        for name in files:
            if name.endswith('.py') and name != '__init__.py':
                yield os.path.relpath(os.path.join(root, name), package)


CONTRIBUTOR_LAYOUT = os.path.join('doc', 'source', 'contributor',
                                  'layout.rst')


def _module_table():
    """``[(path, its job)]`` of the rows of the contributor guide's module
    table, paths relative to ``volume_pool/``: ``name.py``, ``pkg/`` or
    another file of the package."""
    text = _text(CONTRIBUTOR_LAYOUT)
    table = text.split('\nModule table\n============\n', 1)[1]
    return re.findall(r'^   \* - ``([^`]+)``\n     - (.*)$', table, re.M)


def test_module_table_names_every_production_module():
    """One row per module, its job said: a module added without its line
    fails here."""
    rows = _module_table()
    jobs = dict(rows)
    assert len(jobs) == len(rows), 'a module has two rows'
    missing = [path for path in sorted(_production_modules())
               if not jobs.get(path.replace(os.sep, '/'), '').strip()]
    assert missing == []


def test_module_table_names_no_module_that_is_gone():
    package = os.path.join(TOP, 'volume_pool')
    rows = _module_table()
    assert len(rows) > 100
    for entry, _job in rows:
        path = os.path.join(package, *entry.rstrip('/').split('/'))
        if entry.endswith('/'):
            assert os.path.isfile(os.path.join(path, '__init__.py')), entry
        else:
            assert os.path.isfile(path), entry


def test_requirements_list_the_oslo_libraries_the_package_imports():
    """No oslo library installed for nothing, none imported unlisted
    (what they pull in themselves is theirs to list)."""
    required = set()
    for line in _text('requirements.txt').splitlines():
        match = re.match(r'(oslo\.[\w]+)', line)
        if match:
            required.add(match.group(1))
    imported = set()
    for path in _production_modules():
        text = _text(os.path.join('volume_pool', path))
        imported.update('oslo.' + name for name in re.findall(
            r'^\s*(?:from|import) oslo_(\w+)', text, re.M))
    assert required == imported


def test_package_ships_the_monitoring_files():
    """The alert rules with their promtool tests, in one directory (the
    tests name the rules file beside them), and the dashboard."""
    shipped = _data_files()
    prometheus = os.path.join('share', 'volume-pool', 'prometheus')
    assert shipped[os.path.join(prometheus, 'volume-pool-alerts.yaml')] == (
        os.path.join('etc', 'prometheus', 'volume-pool-alerts.yaml'))
    assert shipped[os.path.join(
        prometheus, 'volume-pool-alerts-tests.yaml')] == os.path.join(
            'etc', 'prometheus', 'volume-pool-alerts-tests.yaml')
    assert shipped[os.path.join('share', 'volume-pool', 'grafana',
                                'volume-pool-dashboard.json')] == (
        os.path.join('etc', 'grafana', 'volume-pool-dashboard.json'))
