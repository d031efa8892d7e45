"""``[metrics]``: the HTTP listener for Prometheus and health probes."""

from oslo_config import cfg

metrics_group = cfg.OptGroup(
    'metrics', title='Metrics and health options',
    help='An HTTP listener serving /metrics (Prometheus text format) and '
         '/healthcheck (JSON; 200 when healthy or degraded, 503 when '
         'failed).  Off unless port is set.')

metrics_opts = [
    cfg.HostAddressOpt('host',
                       default='127.0.0.1',
                       help='Address the listener binds to. The default '
                            'serves only this machine; set 0.0.0.0 or an '
                            'interface address for a remote Prometheus.'),
    cfg.PortOpt('port',
                help='Port of the listener, for example 9641. Unset (the '
                     'default): no listener.'),
]


def register_opts(conf):
    conf.register_group(metrics_group)
    conf.register_opts(metrics_opts, group=metrics_group)


def list_opts():
    return {metrics_group: metrics_opts}
