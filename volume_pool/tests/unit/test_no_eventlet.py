"""The processes of volume-pool run on oslo.service's threading backend,
without eventlet, although it is installed and libraries they import
would import it."""

import importlib
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
