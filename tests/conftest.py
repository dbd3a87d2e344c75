"""Fixtures every tier may ask for: the local cluster of the real-cluster tier
(tests/cluster/fixtures.py). Session-scoped fixtures start only when a test needs them."""

pytest_plugins = ("tests.cluster.fixtures",)
