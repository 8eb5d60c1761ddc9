"""Shared test configuration."""

# The `standins` fixture: stand-in kubectl and helm with a fresh stand-in cluster
# (tests/standins/harness.py).
pytest_plugins = ["tests.standins.harness"]
