"""The fault tests' checker counts what it must: a missing alert is lost, a second post of
one alert is a duplicate."""

from __future__ import annotations

from collections import Counter

from tests.harness.slackstub import lost_and_duplicated


def test_checker_counts_lost_and_duplicated_alerts() -> None:
    assert lost_and_duplicated(Counter(["a", "b", "c"]), 3) == {"lost": 0, "duplicated": 0}
    assert lost_and_duplicated(Counter(["a", "b", "b", "b"]), 3) == {"lost": 1, "duplicated": 2}
