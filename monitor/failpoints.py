"""Failpoints: named places where a test can make the daemon crash, raise or stall.

Inert unless ``MONITOR_FAILPOINTS`` is set, e.g.
``MONITOR_FAILPOINTS="after_send_before_ack=kill,after_claim=sleep:2"``. Actions:
``kill`` (SIGKILL this process: no cleanup, like a power cut for the process),
``raise:<message>`` (a RuntimeError), ``raise:sqlite3.OperationalError('<message>')``
(that class: ``sqlite3.OperationalError``, ``sqlite3.DatabaseError`` or ``OSError``, so a
storage fault looks to the code exactly like the driver's), ``sleep:<seconds>``. ``N*``
before an action fires it the first N times only (``queue_write=3*raise:…``: three failed
writes, then the fault clears). ``MONITOR_FAILPOINTS=@<file>`` reads the same text
(comma- or line-separated) from a file at every hit, so a test can start and clear a fault
while the daemon runs. Crash-safety promises are only as good as the tests that kill the
process at the worst moment; these are those moments.

Storage points: ``queue_write`` is hit inside the transaction that publishes to a queue
(``SqliteQueue.publish_many``), ``store_write`` inside every write transaction of the
SQLite store (``SqliteStore``); an error raised there is handled as the driver's own.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import threading
import time
from collections import Counter
from functools import cache
from pathlib import Path

POINTS = ("after_claim", "after_match_before_outbox", "mid_enqueue", "after_send_before_ack",
          "queue_write", "store_write",
          # alerts published (items) or stored (alerts), the batch not yet committed
          "after_match_before_commit", "after_intake_before_commit")
ERRORS: dict[str, type[Exception]] = {
    "sqlite3.OperationalError": sqlite3.OperationalError,
    "sqlite3.DatabaseError": sqlite3.DatabaseError,
    "OSError": OSError,
}
_CALL = re.compile(r"([\w.]+)\((['\"])(.*)\2\)", re.DOTALL)
_fired: Counter[str] = Counter()
_fired_lock = threading.Lock()


def _spec() -> str:
    spec = os.environ.get("MONITOR_FAILPOINTS", "")
    if spec.startswith("@"):
        try:
            return Path(spec[1:]).read_text(encoding="utf-8")
        except OSError:
            return ""
    return spec


@cache
def _actions(spec: str) -> dict[str, str]:
    pairs = (part.split("=", 1) for part in re.split(r"[,\n]", spec) if "=" in part)
    return {name.strip(): action.strip() for name, action in pairs}


def _take(name: str, action: str) -> str | None:
    """The action to perform now: ``N*action`` fires on the first N hits, then never."""
    times, star, rest = action.partition("*")
    if not (star and times.strip().isdigit()):
        return action
    with _fired_lock:
        key = f"{name}={action}"
        if _fired[key] >= int(times):
            return None
        _fired[key] += 1
    return rest.strip()


def hit(name: str) -> None:
    spec = _spec()
    action = _actions(spec).get(name) if spec else None
    if action:
        action = _take(name, action)
    if not action:
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action.startswith("raise:"):
        text = action[6:]
        call = _CALL.fullmatch(text)
        if call and call[1] in ERRORS:
            raise ERRORS[call[1]](call[3])
        raise RuntimeError(f"failpoint {name}: {text}")
    elif action.startswith("sleep:"):
        time.sleep(float(action[6:]))
