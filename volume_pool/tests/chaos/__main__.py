"""``python -m volume_pool.tests.chaos``: the chaos soak ("tox -e chaos").
"""

import volume_pool.cmd  # noqa: F401  (first: no eventlet, threading)

# isort: split

import argparse
import sys

from volume_pool.tests.chaos import faults
from volume_pool.tests.chaos import soak

DESCRIPTION = """\
Claims against a cluster of volume-pool-manager processes -- keyed ones
(confirmed, released, attached or left to their lease), claims without a
key, and claims into a second, allowed project -- while faults happen at
random: kill -9 of a manager (started again), RabbitMQ connections of the
run's vhost closed, database sessions killed, cinder-api stopped (SIGSTOP)
or stalled in the fault proxy, the private redis-server restarted, and
Cinder requests delayed, failed (5xx, 413), dropped before or after Cinder
saw them, or landed late, after the manager gave up on them.  Then the
faults stop, the managers settle, and the exactly-once invariant is
checked against Cinder (every project the run used) and the database.
Needs MariaDB or PostgreSQL, RabbitMQ, redis-server and the local Cinder
of volume_pool/fixtures/cinder-local.sh (installed on first use).

--topology ha runs the managers on clusters instead, all on free ports:
three Galera nodes behind HAProxy, three RabbitMQ nodes (quorum queues)
and Redis Sentinel or three etcd members (--coordination); its faults
add a Galera node killed, a RabbitMQ node stopped, a Sentinel failover
or the etcd leader killed (each started again after the outage), and
drop the Redis restart.

Exit status: 0 the invariant held, 1 it did not, 2 the soak could not run.
"""


def positive(kind):
    def parse(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError('must be > 0: %s' % text)
        return value
    return parse


def share(text):
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError('must be between 0 and 1: %s'
                                         % text)
    return value


def fault_list(text):
    """The names of ``--faults``; checked against the topology's kinds
    once every option is read (:func:`parse_args`)."""
    return [k.strip() for k in text.split(',') if k.strip()]


def topology_faults(kinds, topology, coordination):
    """``kinds`` (None: the topology's default, all of its kinds), or
    ValueError naming what does not apply there."""
    known = faults.kinds_for(topology, coordination)
    if kinds is None:
        return list(known)
    unknown = [k for k in kinds if k not in known]
    if unknown:
        where = topology if topology == faults.SINGLE else '%s with %s' % (
            topology, coordination)
        raise ValueError('fault(s) %s not on the %s topology; known there: '
                         '%s' % (', '.join(unknown), where, ', '.join(known)))
    return kinds


def parser():
    p = argparse.ArgumentParser(
        prog='tox -e chaos --', description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--duration', type=positive(int), default=180,
                   metavar='SECONDS',
                   help='how long claims run under faults (default 180)')
    p.add_argument('--seed', type=int,
                   help='seed of every random choice (default: random, '
                        'printed); a run is repeatable only as far as the '
                        'services\' timing allows')
    p.add_argument('--topology', choices=faults.TOPOLOGIES,
                   default=faults.SINGLE,
                   help='single: the machine\'s MariaDB or PostgreSQL and '
                        'RabbitMQ, a private redis-server (default); ha: '
                        'Galera behind HAProxy, a RabbitMQ cluster with '
                        'quorum queues, Sentinel or etcd, on free ports')
    p.add_argument('--coordination', choices=faults.COORDINATIONS,
                   default='sentinel',
                   help='coordination backend on the ha topology (default '
                        'sentinel; ignored on single)')
    p.add_argument('--backend', choices=('mysql', 'postgresql'),
                   default='mysql', help='database of the managers '
                                         '(default mysql: MariaDB; ha is '
                                         'Galera, MariaDB)')
    p.add_argument('--managers', type=positive(int), default=3,
                   help='manager processes in the cluster (default 3)')
    p.add_argument('--callers', type=positive(int), default=8,
                   help='claiming threads (default 8)')
    p.add_argument('--pools', type=positive(int), default=2,
                   help='pools, all from one snapshot (default 2)')
    p.add_argument('--target', type=positive(int), default=5,
                   help='ready volumes per pool (default 5)')
    p.add_argument('--pause', type=float, default=0.5, metavar='SECONDS',
                   help='mean pause of a caller between two keys '
                        '(default 0.5)')
    p.add_argument('--lease', type=positive(int), default=20,
                   metavar='SECONDS',
                   help='[volume_pool] claim_lease: an abandoned claim '
                        'goes back to its pool after it (default 20)')
    p.add_argument('--faults', type=fault_list, default=None,
                   metavar='KIND,...',
                   help='faults to draw from (default all of the '
                        'topology\'s: single %s; ha %s, and %s with '
                        'sentinel or %s with etcd); empty for none'
                   % (','.join(faults.KINDS), ','.join(faults.HA_KINDS),
                      faults.SENTINEL, faults.ETCD_LEADER))
    p.add_argument('--proxy-fault-rate', type=float, default=0.05,
                   metavar='P',
                   help='chance that the proxy delays, fails or drops one '
                        'Cinder request while the faults run (default '
                        '0.05)')
    p.add_argument('--late-rate', type=share, default=0.05, metavar='P',
                   help='chance that the proxy holds one Cinder request '
                        'that changes something until the manager gave up '
                        'on it, then lets it land (default 0.05)')
    p.add_argument('--project-share', type=share, default=0.15,
                   metavar='S',
                   help='share of claims into a second project, allowed in '
                        '[volume_pool] claim_projects: a Cinder transfer '
                        '(default 0.15)')
    p.add_argument('--unkeyed-share', type=share, default=0.15,
                   metavar='S',
                   help='share of claims without a claim key: no lease, '
                        'the volume is the caller\'s at once (default '
                        '0.15)')
    p.add_argument('--attach-share', type=share, default=0.1, metavar='S',
                   help='share of keyed claims whose volume the caller '
                        'attaches in Cinder instead of confirming '
                        '(default 0.1)')
    p.add_argument('--call-timeout', type=positive(int), default=60,
                   metavar='SECONDS',
                   help='RPC timeout of a claim, with its retries '
                        '(default 60)')
    p.add_argument('--fill-timeout', type=positive(int), default=180,
                   metavar='SECONDS',
                   help='longest wait for full pools before the faults '
                        '(default 180)')
    p.add_argument('--settle', type=positive(int), default=180,
                   metavar='SECONDS',
                   help='longest wait after the faults for the managers '
                        'to settle (default 180)')
    p.add_argument('--keep', action='store_true',
                   help='keep the work dir (logs, chaos-result.json) of a '
                        'run that passed too')
    return p


def parse_args(argv=None):
    """The options, checked together; exits (status 2) on an error."""
    p = parser()
    args = p.parse_args(argv)
    if not 0 <= args.proxy_fault_rate <= 1:
        p.error('--proxy-fault-rate must be between 0 and 1')
    if args.topology == faults.HA and args.backend != 'mysql':
        p.error('--topology ha runs on Galera: --backend %s does not apply'
                % args.backend)
    try:
        args.faults = topology_faults(args.faults, args.topology,
                                      args.coordination)
    except ValueError as exc:
        p.error('--faults: %s' % exc)
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        return soak.run(args)
    except KeyboardInterrupt:
        print('interrupted: the services of the run were stopped')
        return 130


if __name__ == '__main__':
    sys.exit(main())
