"""The probe server when what it asks does not answer (a partitioned broker or store: every
request waits out its timeout). Found with a FaultProxy blackholing Kafka: ``/healthz``
stopped answering, and each request a dashboard made left one more thread blocked in the
pool the stages use. Now each answer is bounded by ``PROBE_TIMEOUT``, requests that arrive
while a computation runs share it, and ``/livez`` and ``/metrics`` do not wait for them.

A real aiohttp server on 127.0.0.1, run on an event loop in a thread of the test's own.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from monitor.config import ServerConfig
from monitor.server import PROBE_TIMEOUT, Probes, start
from tests.harness.probes import free_port, wait_until

pytestmark = pytest.mark.timeout(60)


class Stuck:
    """Probes whose health and readiness block until ``release`` is set, counting calls."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.health_calls = 0
        self.status = "failing"

    def health(self) -> dict[str, Any]:
        self.health_calls += 1
        self.release.wait(30)
        return {"status": self.status, "reasons": ["queue: Kafka 127.0.0.1:1: unreachable"]}

    def ready(self) -> tuple[bool, list[str]]:
        self.release.wait(30)
        return True, []

    def refresh_metrics(self) -> None:
        raise RuntimeError("lag of monitor-match: KafkaTimeoutError")

    def probes(self) -> Probes:
        return Probes(health=self.health, ready=self.ready, live=lambda: (True, []),
                      refresh_metrics=self.refresh_metrics)


@pytest.fixture
def served() -> Iterator[tuple[str, Stuck]]:
    stuck = Stuck()
    port = free_port()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runner = asyncio.run_coroutine_threadsafe(
        start(ServerConfig(port=port), stuck.probes()), loop).result(10)
    assert runner is not None
    try:
        yield f"http://127.0.0.1:{port}", stuck
    finally:
        stuck.release.set()
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def get(url: str) -> tuple[int, float, bytes]:
    """Status, seconds taken, body."""
    began = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=20) as reply:
            return reply.status, time.monotonic() - began, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, time.monotonic() - began, exc.read()


def test_a_health_check_that_does_not_answer_is_failing_within_the_bound_and_computed_once(
    served: tuple[str, Stuck],
) -> None:
    base, stuck = served
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda _: get(f"{base}/healthz"), range(12)))
    assert stuck.health_calls == 1, "requests that came meanwhile share one computation"
    for status, took, body in answers:
        doc = json.loads(body)
        assert status == 200 and doc["status"] == "failing", doc
        assert doc["reasons"] == [f"health not computed within {PROBE_TIMEOUT:g}s: the store "
                                  "or the queue is not answering"], doc
        assert PROBE_TIMEOUT - 0.5 < took < PROBE_TIMEOUT + 2, took

    status, took, body = get(f"{base}/livez")
    assert status == 200 and took < 1, "liveness never waits for the store or the queue"
    status, took, body = get(f"{base}/metrics")
    assert status == 200 and b"# HELP" in body and took < 1, "a failed refresh serves what is known"
    status, took, body = get(f"{base}/readyz")
    assert status == 503 and took < PROBE_TIMEOUT + 2
    assert "readiness not computed within" in json.loads(body)["reasons"][0]

    stuck.release.set()
    assert wait_until(lambda: json.loads(get(f"{base}/healthz")[2])["reasons"] == [
        "queue: Kafka 127.0.0.1:1: unreachable"], 10)
    assert get(f"{base}/readyz")[0] == 200

    # Stuck again: a late answer says what the last computed one found.
    stuck.release.clear()
    stuck.health_calls = 0
    status, _, body = get(f"{base}/healthz")
    reasons = json.loads(body)["reasons"]
    assert reasons[0].startswith("health not computed within"), reasons
    assert reasons[1].endswith("s ago: queue: Kafka 127.0.0.1:1: unreachable"), reasons
