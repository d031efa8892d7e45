"""Unit test modules imported whole: their tests that use a fixture the
functional conftest makes real run here against the real services."""
