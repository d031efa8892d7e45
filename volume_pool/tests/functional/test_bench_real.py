"""volume-pool-bench on real processes at tiny sizes: the claim bench
against a volume-pool-manager process on RabbitMQ, the CPU meter that
charges each process its own CPU, and the whole run with its charts.
Structure and sanity of the figures, never their timings."""

import json
import subprocess
import sys
import time

from oslo_db.sqlalchemy import enginefacade
import pytest

from volume_pool import rpcapi
from volume_pool.bench import charts
from volume_pool.bench import claim
from volume_pool.bench import cli
from volume_pool.bench import cpu as cpu_meter
from volume_pool.bench import profile
from volume_pool.bench import rpc_wait
from volume_pool.bench import services
from volume_pool.db import api as db_api


def test_claim_bench_checks_every_claim_on_a_real_manager(
        tmp_path, conf, simulator, transport_url):
    conf([], project='volume-pool')
    transport = rpcapi.get_transport(conf, url=transport_url)
    try:
        with services.database('sqlite', str(tmp_path)) as url:
            result = claim.run_backend(
                'sqlite', url, transport, transport_url, simulator,
                str(tmp_path), levels=[1, 2], calls=3)
    finally:
        transport.cleanup()
    assert [lv['callers'] for lv in result['levels']] == [1, 2]
    for level in result['levels']:
        assert level['misses'] == 0
        for part in ('empty_rpc', 'rename', 'claim'):
            assert level[part]['count'] == 3
            # Three calls may fall within one clock tick: only the shape
            # is checked here (the meter itself in the test below).
            cpu = level['cpu_ms_per_op'][part]
            roles = [cpu[role] for role in cpu_meter.ROLES]
            assert min(roles) >= 0
            assert abs(cpu['total'] - sum(roles)) < 0.01
        assert level['floor_ms'] > 0
    claimed = 3 * 2 + 2 * (1 + 2)  # measured and warm-up claims
    assert result['claims_checked_unique'] == claimed
    assert result['rows_left'] == claim.claims_needed([1, 2], 3) - claimed


def test_profiled_claims_split_the_manager_cpu_by_phase(
        tmp_path, conf, simulator, transport_url):
    conf([], project='volume-pool')
    transport = rpcapi.get_transport(conf, url=transport_url)
    profiler = profile.Profiler(str(tmp_path / 'profiles'))
    try:
        with services.database('sqlite', str(tmp_path)) as url:
            result = claim.run_backend(
                'sqlite', url, transport, transport_url, simulator,
                str(tmp_path), levels=[1], calls=60, profiler=profiler)
    finally:
        transport.cleanup()
    level = result['levels'][0]
    phases = level['manager_cpu_ms_by_phase']
    assert set(phases) == set(profile.PHASES)
    # The phases share out the measured CPU; the claim's database work
    # is sampled in its own phase.
    assert sum(phases.values()) == pytest.approx(
        level['cpu_ms_per_op']['claim']['manager'], abs=0.01)
    assert phases['database'] > 0
    with open(level['flame_graph']) as graph:
        assert '<svg' in graph.read(4096)
    # The profiled claims are checked like the measured ones.
    claimed = 60 * 2 + 2 * 1
    assert result['claims_checked_unique'] == claimed
    assert result['rows_left'] == claim.claims_needed(
        [1], 60, profiled=True) - claimed


def test_bench_run_draws_every_chart_as_a_png(tmp_path, conf, monkeypatch,
                                              transport_url):
    # transport_url: RabbitMQ is up; the run makes a vhost of its own.
    # The run configures the engine on its own SQLite file, as its own
    # process would: a fresh one, not this process's.
    monkeypatch.setattr(db_api, 'context_manager',
                        enginefacade.transaction_context())
    path = tmp_path / 'bench.json'
    try:
        code = cli.main([
            '--only', 'claim,refill,hitrate', '--backends', 'sqlite',
            '--callers', '1,2', '--calls', '3', '--no-pool-samples', '2',
            '--creation-delay', '0.05', '--poll-interval', '0.01',
            '--replenish-interval', '0.05', '--refill-size', '2',
            '--concurrency', '2', '--hit-targets', '2', '--bursts', '1',
            '--burst', '2', '--gap', '0.05', '--json', str(path)])
    finally:
        db_api.context_manager.dispose_pool()
    assert code == 0
    with open(path) as written:
        results = json.load(written)
    assert [b['backend'] for b in results['claim']] == ['sqlite']
    drawn = tmp_path / 'bench-charts'
    assert sorted(p.name for p in drawn.iterdir()) == sorted(
        name for name, _ in charts.CHARTS)
    for png in drawn.iterdir():
        data = png.read_bytes()
        assert data.startswith(b'\x89PNG') and len(data) > 1000


def test_rpc_server_cpu_per_call_grows_with_the_wait(conf, transport_url):
    conf([], project='volume-pool')
    transport = rpcapi.get_transport(conf, url=transport_url)
    try:
        figures = rpc_wait.run(transport, transport_url, waits_ms=(0, 20),
                               calls=20)
    finally:
        transport.cleanup()
    assert [f['wait_ms'] for f in figures] == [0, 20]
    assert figures[1]['call_ms'] >= 20
    assert all(f['server_cpu_ms'] >= 0 for f in figures)


@pytest.mark.serial
def test_cpu_meter_charges_each_process_its_own_cpu():
    # A "manager" that burns CPU while this process mostly sleeps, then
    # this process burning CPU while the child sleeps.
    child = subprocess.Popen([sys.executable, '-c', (
        'import time\n'
        'end = time.monotonic() + 0.6\n'
        'while time.monotonic() < end: pass\n'
        'time.sleep(30)')])
    try:
        meter = cpu_meter.CpuMeter(child.pid)
        _, sleeping = meter.measure(lambda: time.sleep(0.8), 10)
        _, burning = meter.measure(_burn(0.5), 10)
    finally:
        child.kill()
        child.wait()
    # About 60 ms per operation for the child in the first run, 50 for
    # this process in the second; the idle one only reads /proc.
    assert sleeping['manager'] > 20 and sleeping['client'] < 10
    assert burning['client'] > 20 and burning['manager'] < 10
    assert burning['ops_per_core_s'] == pytest.approx(
        1000.0 / burning['total'], rel=0.01)


def _burn(seconds):
    def operation():
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass
    return operation
