"""One answer to "is monitor healthy?", shared by ``/healthz`` and ``monitor status``.

Three words, chosen for what an orchestrator and an operator should do about them:

* ``ok``: nothing to do.
* ``degraded``: a person should look (a feed failing or gone quiet in a way that looks
  broken, a destination failing again and again, alerts dead or skipped because a notifier
  is off, a watchlist file rejected), but restarting the process would not help, so
  ``/readyz`` stays 200: a broken feed must never get a pod restarted.
* ``failing``: the store or the queue cannot be reached or written (a file gone or
  replaced, a full disk, an I/O error, a Kafka broker that does not answer: any
  ``StoreError`` until a write succeeds again, or the broker answers); nothing can be
  recorded, so ``/readyz`` is 503.

Never contains a secret: names, counts, times and error texts (redacted where made).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from monitor.config import Config
from monitor.errors import MonitorError
from monitor.notify.build import NotifierPlan
from monitor.queue.base import TOPICS, QueueAdmin
from monitor.store.base import DEAD, SKIPPED, SourceState, Store

#: Consecutive failed attempts (rate limits excluded) after which a destination is named
#: in health as failing.
DESTINATION_FAILING_AFTER = 3


def queue_depths(queue: QueueAdmin) -> dict[str, int]:
    """Messages waiting per topic (Kafka: the lag of the topic's group). Any thread."""
    return {topic: queue.depth(topic) for topic in TOPICS}


def source_view(st: SourceState | None) -> dict[str, Any]:
    failing = st is not None and st.failures > 0
    state = "new" if st is None or st.last_poll is None else ("failing" if failing else "ok")
    if state == "ok" and st is not None and st.note:
        state = "warning"
    return {
        "state": state,
        "ok": st is not None and st.last_poll is not None and not failing,
        "polled": st is not None and st.last_poll is not None,
        "failures": st.failures if st else 0,
        "last_poll": st.last_poll if st else None,
        "last_success": st.last_success if st else None,
        "last_error": st.last_error if st and failing else None,
        "items": st.items_last if st else 0,
        "items_total": st.items_total if st else 0,
        "next_poll": st.next_poll if st else None,
        "note": st.note if st else None,
        "primed": None if st is None or st.primed_at is None else {
            "at": st.primed_at, "items": st.primed_items, "alerted": st.primed_alerted,
            "backfill": st.primed_backfill},
    }


def health(config: Config, store: Store, queue: QueueAdmin, plans: Sequence[NotifierPlan],
           watchlists: dict[str, Any]) -> dict[str, Any]:
    """The health document (see the module docstring). ``watchlists`` is the view of the
    set in force (``WatchlistSet.view()``), from the daemon or loaded by ``status``."""
    down = unreachable(store, queue)
    try:
        # A queue that did not answer its ping is not asked for its depths: each question
        # would wait out the same timeout (a partitioned broker answers nothing).
        queue_down = any(reason.startswith("queue:") for reason in down)
        report = _report(config, store, None if queue_down else queue, plans, watchlists)
    except Exception as exc:  # the store or queue itself is what is broken
        return {"status": "failing", "time": time.time(),
                "reasons": down or [f"store or queue unreachable: {exc}"],
                "sources": {}, "queues": {}, "deliveries": {}, "destinations": {},
                "watchlists": watchlists}
    reasons = _reasons(report)
    report["status"] = "failing" if down else "degraded" if reasons else "ok"
    report["reasons"] = down + reasons
    return report


def unreachable(store: Store, queue: QueueAdmin) -> list[str]:
    """Why the store or the queue cannot be used now: their ``ping`` (which also raises
    while a storage fault lasts, see ``monitor.storefault``), or nothing."""
    reasons = []
    for name, ping in (("store", store.ping), ("queue", queue.ping)):
        try:
            ping()
        except Exception as exc:  # whatever the driver raises, the answer is "failing"
            text = str(exc) if isinstance(exc, MonitorError) else f"{type(exc).__name__}: {exc}"
            reasons.append(f"{name}: {text}")
    return reasons


def _report(config: Config, store: Store, queue: QueueAdmin | None,
            plans: Sequence[NotifierPlan], watchlists: dict[str, Any]) -> dict[str, Any]:
    sources = {sc.name: source_view(store.source_state(sc.name))
               for sc in config.sources if sc.enabled}
    known = {d.destination: d for d in store.destination_states()}
    destinations = {}
    for plan in plans:
        d = known.get(plan.name)
        failures = d.failures if d else 0
        destinations[plan.name] = {
            "on": plan.on, "known": plan.known, "why": plan.why, "failures": failures,
            "failing": failures >= DESTINATION_FAILING_AFTER,
            "last_error": d.last_error if d and failures else None,
            "last_failure": d.last_failure if d else None,
            "last_success": d.last_success if d else None,
        }
    queues = queue_depths(queue) if queue is not None else {}
    return {"time": time.time(), "sources": sources, "queues": queues,
            "deliveries": store.delivery_counts(), "destinations": destinations,
            "watchlists": watchlists}


def _reasons(report: dict[str, Any]) -> list[str]:
    reasons = []
    for name, src in report["sources"].items():
        if src["state"] == "failing":
            reasons.append(f"source {name} failing ({src['failures']} in a row): "
                           f"{src['last_error']}")
        elif src["note"]:
            reasons.append(f"source {name}: {src['note']}")
    for name, dest in report["destinations"].items():
        if dest["failing"]:
            reasons.append(f"destination {name} failing ({dest['failures']} attempts in a "
                           f"row): {dest['last_error']}")
    counts = report["deliveries"]
    if counts.get(DEAD):
        reasons.append(f"{counts[DEAD]} deliveries dead (`monitor alerts retry` sends them)")
    if counts.get(SKIPPED):
        reasons.append(f"{counts[SKIPPED]} deliveries skipped because a notifier was off "
                       "(`monitor alerts retry --notifier NAME` once it is on)")
    for rejected in report["watchlists"].get("rejected", []):
        reasons.append(f"watchlist file {rejected['file']} rejected: "
                       f"{'; '.join(rejected['problems'][:3])}")
    return reasons
