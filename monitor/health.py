"""One answer to "is monitor healthy?", shared by ``/healthz`` and ``monitor status``."""

from __future__ import annotations

import time
from typing import Any

from monitor.config import Config
from monitor.queue.base import ALERTS, ITEMS, Queue
from monitor.store.base import Store


def queue_depths(queue: Queue) -> dict[str, int]:
    return {ITEMS: queue.depth(ITEMS), ALERTS: queue.depth(ALERTS)}


def health(config: Config, store: Store, queue: Queue) -> dict[str, Any]:
    """``ok`` unless an enabled source's last poll failed or a delivery is dead; then
    ``degraded``. A source not polled yet is not a failure. Never contains a secret:
    names, counts, times and error texts (which are redacted where they are made)."""
    sources: dict[str, dict[str, Any]] = {}
    degraded = False
    for sc in config.sources:
        if not sc.enabled:
            continue
        st = store.source_state(sc.name)
        failing = st is not None and st.failures > 0
        degraded |= failing
        sources[sc.name] = {
            "ok": st is not None and not failing, "polled": st is not None,
            "failures": st.failures if st else 0,
            "last_success": st.last_success if st else None,
            "last_error": st.last_error if st else None,
            "items": st.items_total if st else 0,
        }
    counts = store.delivery_counts()
    degraded |= counts.get("dead", 0) > 0
    return {"status": "degraded" if degraded else "ok", "time": time.time(),
            "sources": sources, "queues": queue_depths(queue), "deliveries": counts}
