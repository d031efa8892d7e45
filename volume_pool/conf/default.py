"""``[DEFAULT]`` options that say who this manager is."""

import socket

from oslo_config import cfg

default_opts = [
    cfg.StrOpt('host',
               default=socket.gethostname(),
               sample_default='<current_hostname>',
               help='Name of this manager. It is the RPC server name, the '
                    'member id in the coordination group and the owner '
                    'recorded on the volumes this manager creates. It must '
                    'be unique among the managers of a cluster.'),
    cfg.StrOpt('cluster',
               help='Storage cluster this manager serves. Unset means the '
                    'single-cluster mode: one set of pools, whose volumes '
                    'carry the cluster tag "default" (a reserved name). '
                    'Changing it later leaves the volumes of the old name '
                    'to "volume-pool-manage cluster adopt" or "cluster '
                    'drain". Managers of one cluster share its pools '
                    'and only consume its requests.'),
    cfg.StrOpt('state_path',
               default='/var/lib/volume-pool',
               help='Directory for the service state, such as the default '
                    'SQLite database of a single node.'),
]


def register_opts(conf):
    conf.register_opts(default_opts)


def list_opts():
    return {'DEFAULT': default_opts}
