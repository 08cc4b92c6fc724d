"""Outbox policy (retries, Retry-After, dead letters, reconcile) with in-process notifiers.
The same behaviours against a real Slack-compatible server are in test_e2e_*.py."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from monitor.config import DeliveryConfig
from monitor.errors import NotifyError
from monitor.models import Alert
from monitor.notify.outbox import Outbox, TokenBucket, backoff
from monitor.store.sqlite import SqliteStore
from monitor.testing import RecordingNotifier, make_item

FAST = DeliveryConfig(backoff_initial=0.05, backoff_max=0.2, lease=5)


def alert(n: int, created: float | None = None) -> Alert:
    return Alert(id=f"a{n}", watchlist="w", severity="high", item=make_item(n), matches=(),
                 created_at=created if created is not None else time.time())


async def drain(outbox: Outbox, store: SqliteStore, timeout: float = 10) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        await outbox.run_due()
        if store.next_delivery_due(outbox.destinations) is None:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("outbox did not drain")


def test_retry_after_pauses_the_destination(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    slack = RecordingNotifier("slack", [NotifyError("429", retryable=True, retry_after=0.5)])
    outbox = Outbox(store, {"slack": slack}, FAST)
    for n in range(3):
        store.add_alert(alert(n), ["slack"])
    asyncio.run(drain(outbox, store))
    assert sorted(a.id for _, a in slack.sent) == ["a0", "a1", "a2"]
    assert slack.attempts[1] - slack.attempts[0] >= 0.5
    assert store.delivery_counts() == {"sent": 3}


def test_permanent_error_dead_letters_without_retry(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    slack = RecordingNotifier("slack", [NotifyError("channel_not_found", retryable=False)])
    console = RecordingNotifier("console")
    outbox = Outbox(store, {"slack": slack, "console": console}, FAST)
    store.add_alert(alert(1), ["slack", "console"])
    asyncio.run(drain(outbox, store))
    assert len(slack.attempts) == 1
    assert len(console.sent) == 1, "one destination's failure never blocks another"
    assert store.delivery_counts() == {"dead": 1, "sent": 1}


def test_ambiguous_send_is_reconciled_not_reposted(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    slack = RecordingNotifier("slack", [NotifyError("read timeout", retryable=True,
                                                    ambiguous=True)], can_reconcile=True)
    outbox = Outbox(store, {"slack": slack}, FAST)
    store.add_alert(alert(1), ["slack"])
    asyncio.run(drain(outbox, store))
    assert len(slack.sent) == 1 and len(slack.attempts) == 1
    assert outbox.stats.reconciled == 1
    assert store.deliveries("a1")[0]["reconciled"] == 1


def test_ambiguous_send_without_reconcile_counts_possible_duplicate(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    hook = RecordingNotifier("hook", [NotifyError("reset", retryable=True, ambiguous=True)])
    outbox = Outbox(store, {"hook": hook}, FAST)
    store.add_alert(alert(1), ["hook"])
    asyncio.run(drain(outbox, store))
    assert len(hook.sent) == 2
    assert outbox.stats.possible_duplicates == 1


def test_alert_older_than_max_age_goes_dead(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    slack = RecordingNotifier("slack")
    outbox = Outbox(store, {"slack": slack}, DeliveryConfig(max_age=60))
    store.add_alert(alert(1, created=time.time() - 3600), ["slack"])
    asyncio.run(drain(outbox, store))
    assert slack.attempts == []
    assert store.delivery_counts() == {"dead": 1}


def test_backoff_grows_and_is_capped() -> None:
    assert all(1 <= backoff(1, 2, 600) <= 2 for _ in range(50))
    assert all(1 <= backoff(20, 2, 600) <= 600 for _ in range(50))
    assert max(backoff(6, 2, 600) for _ in range(200)) > 32


def test_token_bucket_paces_after_burst() -> None:
    bucket = TokenBucket(rate=10, burst=2)
    waits = [bucket.wait_time() for _ in range(4)]
    assert waits[:2] == [0.0, 0.0]
    assert 0.05 < waits[2] <= 0.1 and waits[3] > waits[2]
