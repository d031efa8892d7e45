"""Simulators of the peers the service talks to (demo, tests, bench)."""
