"""Where an operation's CPU goes: each process's CPU time over a run.

On a machine whose cores the client, the broker, the manager, the database
and Cinder share, operations per second are bounded by the CPU one
operation costs all of them together.  The meter reads the CPU time of the
manager, of this process (the RPC client, and the Cinder simulator when it
runs here), of the broker, of the database server and of a real Cinder's
services before and after a run, and divides by the operations the run
made.
"""

import os

import psutil

# Process names of the machine's services, by role; a real Cinder's
# services are Python processes, known by their command line.
SERVICES = {'broker': ('beam.smp',),
            'database': ('mariadbd', 'mysqld', 'postgres')}
CINDER_COMMANDS = ('cinder-api', 'cinder-scheduler', 'cinder-volume')
ROLES = ('manager', 'client', 'broker', 'database', 'cinder')


class CpuMeter:
    """CPU seconds per role, read off /proc for the processes of each."""

    def __init__(self, manager_pid):
        self.manager_pid = manager_pid
        self._fixed = {manager_pid: 'manager', os.getpid(): 'client'}

    def _processes(self):
        for pid, role in self._fixed.items():
            yield pid, role
        for process in psutil.process_iter(['name', 'cmdline']):
            for role, names in SERVICES.items():
                if process.info['name'] in names:
                    yield process.pid, role
            command = ' '.join(process.info['cmdline'] or ())
            if any(name in command for name in CINDER_COMMANDS):
                yield process.pid, 'cinder'

    def read(self):
        """{pid: (role, CPU seconds)} now."""
        readings = {}
        for pid, role in self._processes():
            try:
                times = psutil.Process(pid).cpu_times()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            readings[pid] = (role, times.user + times.system)
        return readings

    def measure(self, operation, count):
        """Run ``operation()``; returns (its result, ms of CPU per op by
        role, with ``total`` and the ops/s that total allows per core)."""
        before = self.read()
        result = operation()
        after = self.read()
        used = dict.fromkeys(ROLES, 0.0)
        for pid, (role, seconds) in after.items():
            # A process started during the run (a database backend for a
            # new connection) counts from zero.
            used[role] += seconds - before.get(pid, (role, 0.0))[1]
        per_op = {role: round(used[role] * 1000.0 / count, 3)
                  for role in ROLES}
        total = sum(used.values()) * 1000.0 / count
        per_op['total'] = round(total, 3)
        per_op['ops_per_core_s'] = (round(1000.0 / total, 1) if total > 0
                                    else None)
        return result, per_op
