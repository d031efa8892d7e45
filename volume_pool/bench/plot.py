"""matplotlib for the charts of the benchmark and the demo.

matplotlib is an optional extra: the service never imports it, and the
tools that draw import it here, only when a chart is drawn.  Figures use
the Agg canvas directly, so no global backend (and no display) is needed.

It lives beside the benchmark's charts, its main user; the demo's chart
(``volume-pool-demo --chart``) draws with it too, with only the
``charts`` extra installed, so it imports nothing else of the benchmark.
"""

import importlib.util
import os

WIDTH, HEIGHT, DPI = 8, 4.5, 100


class Unavailable(RuntimeError):
    """matplotlib is not installed; the message says how to get it."""


def missing(extra='bench'):
    return ("charts need matplotlib: pip install 'volume-pool[%s]'"
            % extra)


def available():
    """Whether matplotlib can be imported, without importing it."""
    try:
        return importlib.util.find_spec('matplotlib') is not None
    except ValueError:  # in sys.modules as None: imports of it fail
        return False


def figure(extra='bench'):
    """A new figure (8 x 4.5 in) and its axes, on the Agg canvas."""
    try:
        from matplotlib import figure as mpl_figure
        from matplotlib.backends import backend_agg
    except ImportError:
        raise Unavailable(missing(extra)) from None
    fig = mpl_figure.Figure(figsize=(WIDTH, HEIGHT), layout='constrained')
    backend_agg.FigureCanvasAgg(fig)
    return fig, fig.subplots()


def save(fig, path):
    """Write ``fig`` as a PNG at ``path`` (its directory made)."""
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    fig.savefig(path, dpi=DPI, format='png')
    return path


def steps(ax, trace, **style):
    """A level over time, ``[[seconds, level], ...]``, drawn as steps."""
    if trace:
        ax.step([t for t, _ in trace], [level for _, level in trace],
                where='post', **style)
