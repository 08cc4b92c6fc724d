"""``monitor status``: the health of a deployment, read from its store and queues."""

from __future__ import annotations

import argparse
import logging

from monitor.commands.common import EXIT_INVALID, EXIT_OK
from monitor.config import load_config

log = logging.getLogger("monitor")

# --- status ------------------------------------------------------------------------------
def cmd_status(args: argparse.Namespace) -> int:
    """Read-only view of the store and queues, the same judgement as ``/healthz``: exit 0
    when healthy, 1 when a source is failing or an alert is dead (a health probe)."""
    import datetime as dt

    from monitor.health import health
    from monitor.queue.sqlite import SqliteQueue
    from monitor.store import open_store

    config = load_config(args.config)
    store = open_store(config)
    queue = SqliteQueue(config.resolve(config.queue.path))
    try:
        report = health(config, store, queue)
        dead = [d for d in store.deliveries() if d["state"] == "dead"]
    finally:
        store.close()
        queue.close()

    def when(ts: float | None) -> str:
        if ts is None:
            return "never"
        return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    print("sources:")
    for name, src in report["sources"].items():
        if not src["polled"]:
            print(f"  {name}: never polled")
            continue
        line = (f"  {name}: {'ok' if src['ok'] else 'FAILING'} "
                f"last_success={when(src['last_success'])} items={src['items']}")
        if src["failures"]:
            line += f" failures={src['failures']} last_error={src['last_error']!r}"
        print(line)
    print("queues: " + " ".join(f"{k}={v}" for k, v in report["queues"].items()))
    print("deliveries: " + " ".join(f"{k}={v}" for k, v in sorted(report["deliveries"].items())))
    for d in dead:
        print(f"  dead: alert={d['alert_id']} destination={d['destination']} "
              f"reason={d['last_error']!r}")
    return EXIT_OK if report["status"] == "ok" else EXIT_INVALID
