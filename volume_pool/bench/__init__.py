"""volume-pool-bench: how fast a claim is, how cheap a sync is, and how
close both are to their physical floor, measured side by side in one run.

One module per measure (claim, sync, refill, hit rate, footprint); ``cli``
runs them, ``report`` prints the table, checks the targets and writes JSON,
``charts`` draws the figures as PNG charts (with ``plot``, which the demo's
chart shares).
"""
