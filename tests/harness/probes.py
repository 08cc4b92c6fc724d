"""Talking to a running daemon's HTTP probes, and waiting for a condition instead of
sleeping: the helpers the end-to-end tests share."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 free at the time of asking (for ``server.port``)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return str(resp.read().decode())


def get_json(url: str) -> tuple[int, Any]:
    """(status, JSON body) of a GET, error statuses included (``/readyz`` answers 503)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read().decode())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read().decode())


def health(base: str) -> dict[str, Any] | None:
    """The ``/healthz`` document, or None while the server does not answer."""
    try:
        return dict(get_json(f"{base}/healthz")[1])
    except OSError:
        return None


def wait_until(predicate: Callable[[], Any], timeout: float) -> bool:
    """Poll ``predicate`` every 50 ms until it is true or ``timeout`` seconds pass."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def wait_for(predicate: Callable[[], T | None], timeout: float = 20.0) -> T:
    """The first true value ``predicate`` returns within ``timeout`` seconds, else fail."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def metric(base: str, series: str) -> float:
    """One series' value from the daemon's ``/metrics`` (0 when it is not there yet), e.g.
    ``monitor_queue_publish_errors_total{backend="kafka"}``."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == series:
            return float(value)
    return 0.0
