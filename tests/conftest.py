"""Shared fixtures. Each harness module is a pytest plugin with its own fixtures."""

from __future__ import annotations

pytest_plugins = [
    "tests.harness.feed_fixtures",
    "tests.harness.slack_fixtures",
    "tests.harness.pg_fixtures",
    "tests.harness.kafka",
]
