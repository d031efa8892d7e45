"""The benchmark's figures as PNG charts, drawn from the results dict.

Pictures a reader would rather look at than read off a table: claim
latency against its floor as callers grow, the refill against its ideal,
the hit rate against the pool's target, and (the scale part) a sync's
statements and requests by pool count, cluster-wide and per pool.  A part
that did not run has no chart.  matplotlib is imported (through
:mod:`volume_pool.bench.plot`) only here, when a chart is drawn.
``python -m volume_pool.bench.charts JSON`` draws them again from a run's
JSON (the docs' figures come from that).
"""

import argparse
import json
import math
import os
import sys

from volume_pool.bench import plot


def draw(results, directory):
    """Write the chart of every part in ``results``; returns the paths."""
    paths = []
    for name, chart in CHARTS + EXTRA_CHARTS:
        fig = chart(results)
        if fig is not None:
            paths.append(plot.save(fig, os.path.join(directory, name)))
    return paths


def directory_beside(json_path):
    """The charts' default place: beside the JSON, named after it."""
    return os.path.splitext(json_path)[0] + '-charts'


def claim_latency(results):
    """p50 and p99 of a claim beside its floor, by callers, per backend."""
    backends = results.get('claim')
    if not backends:
        return None
    fig, ax = plot.figure()  # first: says so if matplotlib is missing
    from matplotlib import lines
    from matplotlib import ticker

    callers = sorted({lv['callers'] for b in backends for lv in b['levels']})
    for index, backend in enumerate(backends):
        levels = backend['levels']
        x = [lv['callers'] for lv in levels]
        color = 'C%d' % index
        ax.plot(x, [lv['claim']['p50_ms'] for lv in levels], color=color,
                marker='o', label=backend['label'])
        ax.plot(x, [lv['claim']['p99_ms'] for lv in levels], color=color,
                marker='^', linestyle='--')
        ax.plot(x, [lv['floor_ms'] for lv in levels], color=color,
                linestyle=':')
    ax.set_xscale('log', base=2)
    ax.set_yscale('log')
    ax.set_xticks(callers, labels=[str(c) for c in callers])
    ax.set_xticks([], minor=True)
    ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter('{x:g}')
    ax.set_xlabel('concurrent callers')
    ax.set_ylabel('milliseconds (log scale)')
    ax.set_title('Claim latency against its floor (empty RPC p50 + '
                 'rename p50)')
    ax.grid(True, alpha=0.3)
    by_backend = ax.legend(loc='upper left', title='backend')
    ax.add_artist(by_backend)
    ax.legend(handles=[
        lines.Line2D([], [], color='gray', marker='o', label='claim p50'),
        lines.Line2D([], [], color='gray', marker='^', linestyle='--',
                     label='claim p99'),
        lines.Line2D([], [], color='gray', linestyle=':', label='floor')],
        loc='lower right')
    return fig


def refill(results):
    """The pool's level while it refills from empty, against the ideal;
    the bare times when the run recorded no level."""
    figures = results.get('refill')
    if not figures:
        return None
    if not figures.get('level_trace'):
        return _refill_times(figures)
    fig, ax = plot.figure()
    size, delay = figures['size'], figures['creation_delay_s']
    runs = [('concurrency %d' % figures['concurrency'],
             figures['level_trace'], figures['concurrency'], 'C0')]
    if figures.get('serial_level_trace'):
        runs.append(('serial', figures['serial_level_trace'], 1, 'C1'))
    for label, trace, workers, color in runs:
        plot.steps(ax, trace, color=color, label=label)
        plot.steps(ax, _ideal(size, workers, delay), color=color,
                   linestyle='--', alpha=0.6, label=label + ', ideal')
    ax.axhline(size, color='gray', linewidth=0.8)
    ax.set_xlabel('seconds since the pool started')
    ax.set_ylabel('ready volumes')
    ax.set_title(_refill_title(figures))
    ax.grid(True, alpha=0.3)
    ax.legend(loc='lower right')
    return fig


def _ideal(size, workers, delay):
    """ceil(size / workers) rounds of ``workers`` creates, L each."""
    rounds = math.ceil(size / workers)
    return [[k * delay, min(size, k * workers)] for k in range(rounds + 1)]


def _refill_title(figures):
    return ('Refill of %d from empty, L = %g s: %.1f s, ideal %.1f s '
            '(%.2fx)' % (figures['size'], figures['creation_delay_s'],
                         figures['wall_s'], figures['ideal_s'],
                         figures['over_ideal']))


def _refill_times(figures):
    fig, ax = plot.figure()
    bars = [('concurrency %d' % figures['concurrency'], figures['wall_s'],
             'C0'),
            ('ideal, ceil(%d / %d) x L' % (figures['size'],
                                           figures['concurrency']),
             figures['ideal_s'], 'C0')]
    if figures.get('serial_wall_s'):
        bars += [('serial', figures['serial_wall_s'], 'C1'),
                 ('serial ideal, %d x L' % figures['size'],
                  figures.get('serial_ideal_s'),
                  'C1')]
    bars = [bar for bar in bars if bar[1] is not None]
    labels = [label for label, _, _ in bars]
    drawn = ax.barh(labels, [value for _, value, _ in bars],
                    color=[color for _, _, color in bars])
    for bar, (label, _, _) in zip(drawn, bars, strict=True):
        if 'ideal' in label:
            bar.set_alpha(0.5)
            bar.set_hatch('//')
    ax.bar_label(drawn, fmt='%.1f s', padding=3)
    ax.invert_yaxis()
    ax.margins(x=0.12)
    ax.set_xlabel('seconds from empty to full')
    ax.set_title(_refill_title(figures))
    return fig


def hit_rate(results):
    """The share of claims served from the pool, by the pool's target."""
    rows = results.get('hit_rate')
    if not rows:
        return None
    fig, ax = plot.figure()
    labels = [str(row['target']) for row in rows]
    drawn = ax.bar(labels, [100.0 * row['hit_rate'] for row in rows],
                   color='C2', width=0.6)
    ax.bar_label(drawn, labels=['%.0f%%, %.1f ready on average'
                                % (100.0 * row['hit_rate'],
                                   row['avg_ready']) for row in rows],
                 padding=3)
    ax.set_ylim(0, 112)
    ax.set_xlabel('pool target (ready volumes kept)')
    ax.set_ylabel('claims served from the pool (%)')
    first = rows[0]
    ax.set_title('Hit rate on a bursty trace: %d bursts of %d claims, '
                 '%g s idle after each'
                 % (first['bursts'], first['burst'], first['gap_s']))
    ax.grid(True, axis='y', alpha=0.3)
    return fig


def scale_sync(results):
    """DB statements and Cinder requests of one sync by pool count: the
    cluster-wide Sync.run beside one Sync.sync_pool per pool (one
    cluster, one manager, the first backend of the run)."""
    grid = (results.get('scale') or {}).get('grid')
    points = [p for p in grid or () if p['clusters'] == 1 and
              p['managers_per_cluster'] == 1 and p.get('per_pool')]
    if not points:
        return None
    backend = points[0]['backend']
    points = sorted((p for p in points if p['backend'] == backend),
                    key=lambda p: p['pools'])
    fig, ax = plot.figure()
    pools = [p['pools'] for p in points]
    for field, label, color in (('db_statements', 'DB statements', 'C0'),
                                ('cinder_requests', 'Cinder requests',
                                 'C1')):
        ax.plot(pools, [max(1, p['worst']['sync_run'][field])
                        for p in points],
                color=color, marker='o', label=label + ', cluster-wide')
        ax.plot(pools, [max(1, p['per_pool'][field]) for p in points],
                color=color, marker='s', linestyle='--',
                label=label + ', per pool')
    ax.set_xscale('log')
    ax.set_yscale('log')
    ax.set_xticks(pools, labels=[str(n) for n in pools])
    ax.set_xticks([], minor=True)
    ax.yaxis.set_major_formatter('{x:g}')
    ax.set_xlabel('pools in the cluster (%d volumes in all)'
                  % points[0]['volumes'])
    ax.set_ylabel('per sync (log scale)')
    ax.set_title('Sync of every pool, %s: Sync.run beside one '
                 'Sync.sync_pool per pool' % points[0]['label'])
    ax.grid(True, alpha=0.3)
    ax.legend(loc='upper left')
    return fig


CHARTS = (('claim-latency.png', claim_latency), ('refill.png', refill),
          ('hit-rate.png', hit_rate))
# Charts of the parts run only when named (--only scale).
EXTRA_CHARTS = (('scale-sync.png', scale_sync),)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m volume_pool.bench.charts',
        description='Draw the charts of a volume-pool-bench JSON again.')
    parser.add_argument('json', help='The JSON a run wrote.')
    parser.add_argument('directory', nargs='?',
                        help='Where the PNGs go [default: beside the '
                             'JSON, in <its name>-charts/].')
    args = parser.parse_args(argv)
    with open(args.json) as results:
        results = json.load(results)
    try:
        paths = draw(results, args.directory or directory_beside(args.json))
    except plot.Unavailable as exc:
        parser.exit(1, '%s\n' % exc)
    for path in paths:
        print(path)
    return 0


if __name__ == '__main__':
    sys.exit(main())
