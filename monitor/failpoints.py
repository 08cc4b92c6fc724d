"""Failpoints: named places where a test can make the daemon crash, raise or stall.

Inert unless ``MONITOR_FAILPOINTS`` is set, e.g.
``MONITOR_FAILPOINTS="after_send_before_ack=kill,after_claim=sleep:2"``. Actions:
``kill`` (SIGKILL this process: no cleanup, like a power cut for the process),
``raise:<message>`` (a RuntimeError), ``sleep:<seconds>``. Crash-safety promises are only
as good as the tests that kill the process at the worst moment; these are those moments.
"""

from __future__ import annotations

import os
import signal
import time
from functools import cache

POINTS = ("after_claim", "after_match_before_outbox", "mid_enqueue", "after_send_before_ack")


@cache
def _actions() -> dict[str, str]:
    spec = os.environ.get("MONITOR_FAILPOINTS", "")
    pairs = (part.split("=", 1) for part in spec.split(",") if "=" in part)
    return {name.strip(): action.strip() for name, action in pairs}


def hit(name: str) -> None:
    action = _actions().get(name)
    if not action:
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action.startswith("raise:"):
        raise RuntimeError(f"failpoint {name}: {action[6:]}")
    elif action.startswith("sleep:"):
        time.sleep(float(action[6:]))
