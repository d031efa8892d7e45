"""``[coordination]``: tooz, for sharing background work among managers."""

from oslo_config import cfg

coordination_group = cfg.OptGroup(
    'coordination', title='Coordination options',
    help='Group membership and locks between several managers (tooz).')

coordination_opts = [
    cfg.StrOpt('backend_url',
               secret=True,
               help='tooz backend URL, for example redis://127.0.0.1:6379. '
                    'Needed only when several managers serve one cluster; '
                    'unset, this manager does all the background work of '
                    'its pools alone.'),
    cfg.IntOpt('membership_timeout',
               default=30,
               min=2,
               help='Seconds after its last heartbeat a manager counts as '
                    'gone; its pools are then taken over by the others '
                    'within this time plus one replenish interval.'),
    cfg.IntOpt('refresh_interval',
               default=10,
               min=1,
               help='Seconds between two membership refreshes (rejoin '
                    'after an outage, record liveness for "cluster list").'),
]


def register_opts(conf):
    conf.register_group(coordination_group)
    conf.register_opts(coordination_opts, group=coordination_group)


def list_opts():
    return {coordination_group: coordination_opts}
