"""The processes of volume-pool run on oslo.service's threading backend,
without eventlet, although it is installed and libraries they import
would import it."""

import importlib
import os
import subprocess
import sys

from oslo_service import backend
from oslo_utils import eventletutils
import pytest

import volume_pool.cmd as vp_cmd

ENTRY_MODULES = ('volume_pool.cmd.manager', 'volume_pool.cmd.manage',
                 'volume_pool.cmd.status', 'volume_pool.cmd.demo',
                 'volume_pool.bench.cli')


def _eventlet_modules():
    return sorted(name for name in sys.modules
                  if name == 'eventlet' or name.startswith('eventlet.'))


@pytest.mark.parametrize('transport_url', ['fake'], indirect=True)
def test_entry_points_and_a_running_service_leave_eventlet_out(
        running_service):
    for name in ENTRY_MODULES:
        importlib.import_module(name)
    assert running_service.rpcserver is not None  # threads, timers, RPC
    assert backend.get_backend_type() == backend.BackendType.THREADING
    assert _eventlet_modules() == []
    assert not eventletutils.EVENTLET_AVAILABLE


def test_eventlet_is_refused_with_the_reason():
    assert any(isinstance(finder, vp_cmd.EventletRefused)
               for finder in sys.meta_path)
    for name in ('eventlet', 'eventlet.patcher'):
        with pytest.raises(ModuleNotFoundError,
                           match="oslo.service's threading backend"):
            importlib.import_module(name)


def test_the_hook_is_installed_once():
    before = list(sys.meta_path)
    vp_cmd.keep_eventlet_out()
    assert sys.meta_path == before


_EVENTLET_LOADED = ("import sys; print(sorted(m for m in sys.modules "
                    "if m.split('.')[0] == 'eventlet'))")


def _fresh_python(*args):
    """A controller's interpreter: Python's default warning filters."""
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONWARNINGS'}
    env['PYTHONPATH'] = os.pathsep.join(p for p in sys.path if p)
    return subprocess.run([sys.executable, *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_importing_the_client_brings_no_eventlet_and_prints_nothing():
    result = _fresh_python(
        '-c', 'import volume_pool.rpcapi; ' + _EVENTLET_LOADED)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '[]'
    assert result.stderr == ''


def test_the_client_shows_no_eventlet_warning_even_when_asked_to():
    # -W default shows every DeprecationWarning: only oslo.utils' own
    # (its eventletutils module, on "import oslo_messaging") is left.
    result = _fresh_python('-W', 'default', '-c', 'import volume_pool.rpcapi')
    assert result.returncode == 0, result.stderr
    assert 'EventletDeprecationWarning' not in result.stderr
    assert 'eventlet_backdoor' not in result.stderr


def test_a_process_that_took_eventlet_first_keeps_it():
    result = _fresh_python('-W', 'ignore', '-c', (
        'import eventlet; import volume_pool.rpcapi; '
        'from oslo_service import backend; '
        'print(backend.get_backend_type().value)'))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'eventlet'
