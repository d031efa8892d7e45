"""Request context carried over RPC, so request ids reach the log lines."""

from oslo_context import context


class RequestContext(context.RequestContext):
    """The controller's context as the manager sees it."""


def get_admin_context():
    """Context of the manager's own work (periodic tasks)."""
    return RequestContext(is_admin=True, overwrite=False)


def from_dict(values):
    return RequestContext.from_dict(values or {})
