"""A controller's use of volume-pool, whole: claim a volume with a key,
confirm it, give one back, and the errors to handle, each by its class.

Against a manager served by ``volume-pool-demo --serve``, from another
shell::

    python doc/source/examples/controller.py \
        --transport-url rabbit://guest:guest@127.0.0.1:5672/

It needs only the light client (``pip install ./client``).
"""

import argparse
import sys
import time
import uuid

from oslo_config import cfg
from oslo_context import context

from volume_pool import exception
from volume_pool import rpcapi


def parse_cli():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--transport-url', required=True,
                        help="The managers' RabbitMQ, as the controller's "
                             'own [DEFAULT] transport_url would be.')
    parser.add_argument('--pool', default='debian',
                        help='The pool to claim from (default: '
                             '%(default)s).')
    return parser.parse_args()


def timed(what, call, *args, **kwargs):
    started = time.monotonic()
    result = call(*args, **kwargs)
    print('%-34s %7.1f ms' % (what, (time.monotonic() - started) * 1000.0))
    return result


def main():
    args = parse_cli()
    # The controller's own config: build the transport on the global
    # CONF, where oslo.messaging registers some of its options.
    cfg.CONF([], project='controller')
    transport = rpcapi.get_transport(cfg.CONF, url=args.transport_url)
    api = rpcapi.VolumePoolAPI(transport, timeout=60)
    # Claim keys are unique per project of the context.
    ctxt = context.RequestContext(project_id='tenant-1',
                                  request_id='req-%s' % uuid.uuid4())
    instance = str(uuid.uuid4())
    try:
        # The root disk: claimed under a key the controller keeps (the
        # instance UUID), held under a lease until confirmed.
        root_key = '%s-root' % instance
        volume = timed('claim %s' % root_key[-13:], api.claim, ctxt,
                       args.pool, name='vnf-root', claim_key=root_key,
                       timeout=90)
        print('  volume %(volume_id)s from %(source)s, lease until '
              '%(lease_expires_at)s' % volume)
        # Asked again with the same key (a retry after a crash, say): the
        # same volume, never a second one.
        again = timed('claim again with the same key', api.claim, ctxt,
                      args.pool, name='vnf-root', claim_key=root_key)
        print('  same volume: %s' % (again['volume_id'] ==
                                     volume['volume_id']))
        # ... attach it and boot; then the volume is the caller's for good.
        timed('confirm', api.confirm, ctxt, root_key)

        # A data disk whose boot failed: give it back to its pool.
        data_key = '%s-data' % instance
        timed('claim %s' % data_key[-13:], api.claim, ctxt, args.pool,
              name='vnf-data', claim_key=data_key)
        receipt = timed('release', api.release, ctxt, data_key)
        print('  released: state %s' % receipt['state'])

        # The errors, each its own class.
        try:
            api.claim(ctxt, 'no-such-pool')
        except exception.PoolNotFound as exc:
            print('PoolNotFound: %s' % exception.first_line(exc))
        try:
            api.claim(ctxt, args.pool, name='another-name',
                      claim_key=root_key)
        except exception.ClaimKeyConflict as exc:
            print('ClaimKeyConflict: %s' % exception.first_line(exc))
        try:
            api.claim(ctxt, args.pool, name='vnf-data', claim_key=data_key)
        except exception.ClaimReleased as exc:
            print('ClaimReleased: %s' % exception.first_line(exc))
        # Others to expect: PoolEmpty (create_on_miss=False and nothing
        # ready), CinderUnavailable (retry later), ClaimTimedOut (also a
        # MessagingTimeout: no answer in time, the key was released; claim
        # again with a new key).
    except rpcapi.ClaimTimedOut as exc:
        print('ClaimTimedOut: no manager answered: %s' % exc,
              file=sys.stderr)
        return 1
    finally:
        transport.cleanup()
    return 0


if __name__ == '__main__':
    sys.exit(main())
