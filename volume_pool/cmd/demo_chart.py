"""The demo's chart (``volume-pool-demo --chart PATH``): each pool's ready
volumes over the run, against its target.

The demo polls every pool's status to print it; :class:`Timeline` keeps
each poll, so the chart shows what the demo printed.
"""

import time

from volume_pool.bench import plot


class Timeline:
    """The pools' levels as the demo saw them, in seconds from its start.
    """

    def __init__(self):
        self.started = time.monotonic()
        self.levels = {}  # pool name -> [[seconds, ready], ...]
        self.targets = {}
        self.marks = []  # [seconds, what happened]

    def _now(self):
        return round(time.monotonic() - self.started, 2)

    def add(self, status):
        """One poll of ``pool_status``."""
        now = self._now()
        for pool in status:
            self.levels.setdefault(pool['name'], []).append(
                [now, pool['ready']])
            self.targets[pool['name']] = pool['target']

    def mark(self, what):
        self.marks.append([self._now(), what])


def draw(timeline, path):
    """Write the chart of ``timeline`` as a PNG at ``path``."""
    fig, ax = plot.figure(extra='charts')
    for index, (name, trace) in enumerate(sorted(timeline.levels.items())):
        color = 'C%d' % index
        plot.steps(ax, trace, color=color, linewidth=2,
                   label='%s: ready' % name)
        ax.axhline(timeline.targets[name], color=color, linestyle=':',
                   label='%s: target' % name)
    for seconds, what in timeline.marks:
        ax.axvline(seconds, color='gray', linestyle='--', linewidth=1)
        ax.annotate(what, (seconds, 1.0), xycoords=('data', 'axes fraction'),
                    xytext=(4, -14), textcoords='offset points',
                    color='gray')
    top = max(list(timeline.targets.values()) or [1])
    ax.set_ylim(-0.2, top + 1)
    ax.set_yticks(range(top + 1))
    ax.set_xlabel('seconds since the manager started')
    ax.set_ylabel('ready volumes')
    ax.set_title('volume-pool-demo: the pools fill, serve claims, refill')
    ax.grid(True, alpha=0.3)
    fig.legend(loc='outside lower center', ncols=4)
    return plot.save(fig, path)
