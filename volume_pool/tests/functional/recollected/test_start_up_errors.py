"""The unit tests of ``test_start_up_errors``, re-collected on the real
services: the installed scripts, each in a process of its own."""

from volume_pool.tests.unit.test_start_up_errors import *  # noqa: F401,F403
