"""Where the manager's CPU goes during a run: py-spy, attached from outside.

py-spy samples the manager's thread that holds the GIL (a thread waiting
on a socket or a lock is not sampled), pausing the process for each sample
so that every stack is whole; the profiled run is apart from the measured
one.  The run's CPU is split by the share of samples in each phase.  Each
profiled run leaves a flame graph (SVG) and the raw collapsed stacks.
"""

import collections
import os
import signal
import subprocess
import sys

# Samples per second: enough samples over a few hundred claims, little
# enough that the sampler does not take the cores the run needs.
RATE = 500
PHASES = ('rpc dispatch', 'database', 'cinder call', 'bookkeeping')
# A frame's file, by phase: the first frame (from the thread's root) that
# is in one of these decides.  Everything a claim runs outside them is its
# bookkeeping; everything outside a claim is the RPC dispatch around it.
_DATABASE = ('sqlalchemy/', 'oslo_db/', 'pymysql/', 'psycopg2/',
             'volume_pool/db/')
_CINDER = ('cinderclient/', 'keystoneauth1/', 'requests/', 'urllib3/',
           'http/client.py', 'volume_pool/cinder.py',
           'volume_pool/cinder_errors.py', 'volume_pool/cinder_session.py')
_CLAIM = ('volume_pool/api_endpoint.py',)


def _in(frame, places):
    """Whether a py-spy frame, ``function (path:line)``, runs in one of
    ``places`` (paths as py-spy shortens them, relative to sys.path)."""
    path = frame.rpartition(' (')[2].rpartition(':')[0]
    return any(path.startswith(place) or '/' + place in path
               for place in places)


def _py_spy():
    """The py-spy beside this interpreter (the bench extra installs it)."""
    found = os.path.join(os.path.dirname(sys.executable), 'py-spy')
    return found if os.path.exists(found) else 'py-spy'


def phase_of(frames):
    """The phase of one sampled stack (frames from the root)."""
    in_claim = False
    for frame in frames:
        if _in(frame, _CLAIM):
            in_claim = True
        elif in_claim:
            if _in(frame, _DATABASE):
                return 'database'
            if _in(frame, _CINDER):
                return 'cinder call'
    return 'bookkeeping' if in_claim else 'rpc dispatch'


def shares(collapsed_lines):
    """{phase: fraction of the samples} of py-spy's raw output, or None
    when it holds no sample."""
    counts = collections.Counter()
    for line in collapsed_lines:
        stack, _, count = line.rstrip('\n').rpartition(' ')
        if not stack or not count.isdigit():
            continue
        # The first frame is the thread ("process 12:..." / "thread ...").
        counts[phase_of(stack.split(';'))] += int(count)
    total = sum(counts.values())
    if not total:
        return None
    return {phase: counts[phase] / total for phase in PHASES}


class Profiler:
    """Records one run of the manager into ``directory``."""

    def __init__(self, directory):
        self.directory = directory
        os.makedirs(directory, exist_ok=True)

    def record(self, pid, name, operation):
        """Run ``operation()`` under py-spy; returns (its result, the
        phase shares or None without samples, the flame graph's path or
        None)."""
        svg = os.path.join(self.directory, name + '.svg')
        raw = os.path.join(self.directory, name + '.txt')
        # Only one process can pause another at a time: the stacks that
        # are counted pause the manager, the picture's sampler reads it
        # running (a rare torn stack in a picture is harmless).
        samplers = [self._start(pid, 'raw', raw),
                    self._start(pid, 'flamegraph', svg, pause=False)]
        try:
            result = operation()
        finally:
            for sampler in samplers:
                sampler.send_signal(signal.SIGINT)
            for sampler in samplers:
                sampler.wait(timeout=60)
        if not os.path.exists(raw):
            # py-spy writes nothing when it took no sample.
            return result, None, None
        with open(raw) as lines:
            return result, shares(lines), (svg if os.path.exists(svg)
                                           else None)

    @staticmethod
    def _start(pid, fmt, path, pause=True):
        return subprocess.Popen(
            [_py_spy(), 'record', '--pid', str(pid), '--rate', str(RATE),
             '--gil', '--format', fmt, '--output', path] +
            ([] if pause else ['--nonblocking']),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
