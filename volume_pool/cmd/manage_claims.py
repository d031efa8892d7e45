"""volume-pool-manage claim commands: by hand, through the controller's
RPC calls, and the receipts from the database."""

from volume_pool import config
from volume_pool import exception
from volume_pool.cmd import manage_rpc
from volume_pool.cmd.manage_output import emit
from volume_pool.cmd.manage_output import emit_one
from volume_pool.cmd.manage_output import EXIT_OK
from volume_pool.db import receipts as db_receipts

CONF = config.CONF

CLAIM_COLUMNS = ['claim_key', 'state', 'pool', 'volume_id', 'source',
                 'project_id', 'lease_expires_at', 'created_at']
# A receipt as db_receipts.view() shows it: claim list, release, confirm.
RECEIPT_FIELDS = ['claim_key', 'claim_id', 'state', 'pool', 'cluster',
                  'project_id', 'volume_id', 'source', 'target_project',
                  'lease_expires_at', 'created_at', 'updated_at']
# claim show adds the answer the caller got.
SHOWN_FIELDS = RECEIPT_FIELDS + ['answer']
# What a claim answers: the volume (claim_request.volume_view), the project
# it was handed to (RPC 1.3), its key and lease (RPC 1.4).
CLAIMED_FIELDS = ['volume_id', 'name', 'snapshot_type', 'snapshot_id',
                  'size', 'status', 'cluster', 'source', 'project_id',
                  'claim_key', 'lease_expires_at']


def claim_take():
    args = CONF.command
    kwargs = {'name': args.volume_name, 'cluster': args.for_cluster,
              'create_on_miss': not args.no_create_on_miss}
    if args.project_id:
        kwargs['project_id'] = args.project_id
    if args.key:
        kwargs['claim_key'] = args.key
    volume = manage_rpc.call(lambda api, ctxt: api.claim(
        ctxt, args.pool_name, **kwargs), args.timeout,
        project_id=args.caller_project)
    emit_one(volume, args)
    return EXIT_OK


def claim_list():
    args = CONF.command
    receipts = db_receipts.listing(CONF.cluster or None,
                                   states=args.state or None,
                                   pool=args.pool, limit=args.limit)
    emit([db_receipts.view(r) for r in receipts], args)
    return EXIT_OK


def claim_show():
    args = CONF.command
    receipt = db_receipts.get(CONF.cluster or None, args.caller_project,
                              args.claim_key)
    if receipt is None:
        raise exception.ClaimNotFound(claim_key=args.claim_key)
    record = db_receipts.view(receipt)
    record['answer'] = db_receipts.answer(receipt)
    emit_one(record, args)
    return EXIT_OK


def _claim_action(method):
    """``claim release`` / ``claim confirm``: one RPC call by key."""
    def run():
        args = CONF.command
        record = manage_rpc.call(lambda api, ctxt: getattr(api, method)(
            ctxt, args.claim_key, cluster=args.for_cluster), args.timeout,
            project_id=args.caller_project)
        emit_one(record, args)
        return EXIT_OK
    return run


claim_release = _claim_action('release')
claim_confirm = _claim_action('confirm')
