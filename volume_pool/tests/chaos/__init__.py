"""The chaos soak: real managers, a real Cinder behind a fault proxy, and
faults at random while keyed claims run; then the exactly-once invariant
is checked against Cinder and the database ("tox -e chaos")."""
