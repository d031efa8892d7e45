"""volume-pool-demo: the service on its embedded default, nothing to install.

One process runs the real manager Service on a SQLite file, oslo.messaging's
in-process ``fake://`` transport and the project's Cinder API simulator
(real HTTP on loopback).  It lets two pools fill, serves a few claims
through :mod:`volume_pool.rpcapi` (the controller's client), shows the pools
refilling, and exits 0 once they are full again.  With ``--chart`` it
also draws the pools' levels over the run (matplotlib, the charts extra).
With ``--serve`` it serves the manager to other processes instead
(:mod:`volume_pool.cmd.demo_serve`).
"""

import argparse
import os
import sys
import tempfile
import time

from oslo_log import log as logging

from volume_pool import config
from volume_pool import context as vp_context
from volume_pool import rpc
from volume_pool import rpcapi
from volume_pool import service
from volume_pool.bench import plot
from volume_pool.cmd import demo_chart
from volume_pool.cmd import demo_serve
from volume_pool.fixtures import waiting
from volume_pool.fixtures.simulator import cinder_api

CONF = config.CONF
LOG = logging.getLogger(__name__)

POOLS = {'debian': {'target': 3, 'size': 1},
         'windows': {'target': 2, 'size': 2}}

CONFIG_TEMPLATE = """\
[DEFAULT]
host = demo-manager
transport_url = {transport_url}
state_path = {state_dir}

[database]
connection = sqlite:///{state_dir}/volume_pool.sqlite

[volume_pool]
enabled_pools = {pool_names}
replenish_interval = 1
sync_interval = 5
create_concurrency = 4
create_poll_interval = 0.2
periodic_fuzzy_delay = 0

[cinder]
auth_type = noauth
endpoint = {endpoint}
project_id = {project_id}
user_id = demo

{pool_sections}
"""


def parse_cli(argv):
    parser = argparse.ArgumentParser(
        prog='volume-pool-demo', description=__doc__.splitlines()[0],
        epilog='Examples: "volume-pool-demo --creation-delay 3 --claims 5" '
               'runs the demo and exits; "volume-pool-demo --serve" serves '
               'the manager on the RabbitMQ of this machine until Ctrl-C, '
               'for a controller (or doc/source/examples/controller.py) to '
               'call from its own process.')
    parser.add_argument('--creation-delay', type=float, default=2.0,
                        help='Seconds the simulated Cinder takes to create a '
                             'volume (default: %(default)s).')
    parser.add_argument('--claims', type=int, default=4,
                        help='Claims to make from the debian pool; more than '
                             'its target (3) shows a miss (default: '
                             '%(default)s).')
    parser.add_argument('--timeout', type=float, default=60.0,
                        help='Give up if the pools are not full after this '
                             'many seconds (default: %(default)s).')
    parser.add_argument('--state-dir',
                        help='Where the config and SQLite file go (default: '
                             'a new temporary directory).')
    parser.add_argument('--verbose', action='store_true',
                        help="Show the manager's INFO log lines too.")
    parser.add_argument('--serve', action='store_true',
                        help='Serve the manager (SQLite, Cinder simulator) '
                             'until Ctrl-C instead of running the demo, on '
                             'a transport other processes reach: RabbitMQ, '
                             "as fake:// never leaves its process.")
    parser.add_argument('--transport-url', default=demo_serve.DEFAULT_URL,
                        help='With --serve: the RabbitMQ to serve on '
                             '(default: %(default)s, the guest user of a '
                             'RabbitMQ on this machine).')
    parser.add_argument('--chart', metavar='PATH.png',
                        help="Also write a PNG chart of each pool's ready "
                             'volumes over the run to this path (needs '
                             'matplotlib: the charts extra).')
    args = parser.parse_args(argv)
    if args.claims < 0 or args.creation_delay < 0 or args.timeout <= 0:
        parser.error('--claims and --creation-delay must be >= 0, '
                     '--timeout > 0')
    if args.serve and args.chart:
        parser.error('--chart draws the demo run, not --serve')
    if args.chart and not plot.available():
        parser.error(plot.missing('charts'))
    return args


def write_config(state_dir, simulator, transport_url='fake:///'):
    sections = []
    for name, pool in POOLS.items():
        snapshot_id = simulator.add_snapshot(size=pool['size'],
                                             name='golden-%s' % name)
        sections.append('[pool:%s]\nsnapshot_id = %s\ntarget = %d\n'
                        % (name, snapshot_id, pool['target']))
    path = os.path.join(state_dir, 'volume-pool.conf')
    with open(path, 'w') as conf_file:
        conf_file.write(CONFIG_TEMPLATE.format(
            state_dir=state_dir, transport_url=transport_url,
            pool_names=','.join(POOLS),
            endpoint=simulator.endpoint, project_id=simulator.project_id,
            pool_sections='\n'.join(sections)))
    return path


def show(status, label):
    cells = ['%-8s ready %d/%d  creating %d' % (p['name'], p['ready'],
                                                 p['target'], p['creating'])
             for p in status]
    print('[%s] %s' % (label, ' | '.join(cells)), flush=True)


def wait_full(api, ctxt, label, timeout, timeline):
    """Every pool at its target within ``timeout``; each answer on the
    way is drawn and, when it changed, printed."""
    shown = []

    def watch(status):
        timeline.add(status)
        levels = [(p['ready'], p['creating']) for p in status]
        if levels != shown:
            show(status, label)
            shown[:] = levels
    try:
        waiting.pool_ready(api, None, ctxt=ctxt, timeout=timeout,
                           interval=0.5, watch=watch)
    except waiting.NotMet:
        return False
    return True


def run(args, state_dir):
    with cinder_api.CinderSimulator(
            creation_delay=args.creation_delay) as simulator:
        conf_path = write_config(state_dir, simulator)
        print('Cinder simulator at %s; config %s' % (simulator.endpoint,
                                                     conf_path))
        demo_serve.prepare(conf_path, args.verbose)
        server = service.Service(CONF)
        timeline = demo_chart.Timeline()
        server.start()
        try:
            code = demo_claims(args, simulator, timeline)
        finally:
            server.stop()
            rpc.cleanup()
    if args.chart:
        print('Chart of the pool levels: %s'
              % demo_chart.draw(timeline, args.chart))
    return code


def demo_claims(args, simulator, timeline):
    api = rpcapi.VolumePoolAPI(timeout=30)
    ctxt = vp_context.RequestContext(request_id=None)
    if not wait_full(api, ctxt, 'filling', args.timeout, timeline):
        print('The pools did not fill within %ss.' % args.timeout)
        return 1
    timeline.mark('claims')
    for number in range(1, args.claims + 1):
        started = time.monotonic()
        volume = api.claim(ctxt, 'debian', name='vnf-%d-root' % number)
        print('claim %d: %s %-14s from %-7s status %-9s in %.1f ms' % (
            number, volume['volume_id'], volume['name'], volume['source'],
            volume['status'], (time.monotonic() - started) * 1000.0),
            flush=True)
    volume = api.claim(ctxt, 'windows')
    print('claim windows: %s from %s' % (volume['volume_id'],
                                         volume['source']))
    if not wait_full(api, ctxt, 'refilling', args.timeout, timeline):
        print('The pools did not refill within %ss.' % args.timeout)
        return 1
    tagged = [v for v in simulator.list_volumes()
              if 'volume_pool' in v.get('metadata', {})]
    print('Done: %d pool volumes ready in Cinder, pools full again.'
          % len(tagged))
    return 0


def run_or_serve(args, state_dir):
    if args.serve:
        return demo_serve.serve(args, state_dir, write_config)
    return run(args, state_dir)


def main(argv=None):
    args = parse_cli(sys.argv[1:] if argv is None else argv)
    if args.serve:
        try:
            demo_serve.check_url(args.transport_url)
        except demo_serve.CannotServe as exc:
            return demo_serve.refuse(exc)
    if args.state_dir:
        os.makedirs(args.state_dir, exist_ok=True)
        return run_or_serve(args, args.state_dir)
    with tempfile.TemporaryDirectory(prefix='volume-pool-demo-') as tmp:
        return run_or_serve(args, tmp)


if __name__ == '__main__':
    sys.exit(main())
