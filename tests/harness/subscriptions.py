"""Reading a queue subscription in tests: poll until enough messages came, or take what
else arrives in a moment. Shared by the queue contract and the broker-restart tests."""

from __future__ import annotations

import time

from monitor.queue.base import Message, Subscription


def take(sub: Subscription, n: int, within: float = 15.0) -> list[Message]:
    """Poll until ``n`` messages came (a Kafka subscription's first poll joins its group)."""
    got: list[Message] = []
    end = time.monotonic() + within
    while len(got) < n and time.monotonic() < end:
        got += sub.poll(n - len(got), timeout=0.5)
    assert len(got) == n, f"expected {n} messages, got {[m.key for m in got]}"
    return got


def settle(sub: Subscription, seconds: float = 0.6) -> list[Message]:
    """Whatever else comes within ``seconds`` (expected: nothing)."""
    got: list[Message] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        got += sub.poll(10, timeout=0.2)
    return got
