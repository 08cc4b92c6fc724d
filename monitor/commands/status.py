"""``monitor status``: a deployment's health read from its store and queues, as tables for
an operator or (``--json``) one JSON document for a script. The judgement is
``monitor.health``'s, the same ``/healthz`` makes: exit 0 when ``ok``, 1 otherwise, so the
command also serves as a health probe."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from monitor.commands.common import EXIT_INVALID, EXIT_OK
from monitor.config import Config, load_config
from monitor.engine.watchlist import load_each, watchlist_files
from monitor.queue.base import QueueAdmin


def cmd_status(args: argparse.Namespace) -> int:
    from monitor.health import health
    from monitor.notify.build import plan_notifiers
    from monitor.queue import open_queue
    from monitor.store import open_store

    config = load_config(args.config, require_env=False)
    store = open_store(config)
    try:
        queue = open_queue(config, create=False)
        try:
            report = health(config, store, queue.admin, plan_notifiers(config),
                            watchlist_view(config))
            report["dead"] = [d for d in store.deliveries() if d["state"] == "dead"][:20]
            report["queue_dead"] = dead_letters(queue.admin)
        finally:
            queue.close()
    finally:
        store.close()
    if args.json:
        json.dump(report, sys.stdout, indent=2, ensure_ascii=False, sort_keys=True)
        print()
    else:
        render(report, Console(width=None if sys.stdout.isatty() else 160, soft_wrap=False))
    return EXIT_OK if report["status"] == "ok" else EXIT_INVALID


def dead_letters(admin: QueueAdmin, limit: int = 20) -> dict[str, Any]:
    """The queue's dead letters per topic (messages that failed every attempt), newest
    ``limit`` with their reason; the text of why it could not be read if it could not."""
    from monitor.errors import ServiceUnavailable
    from monitor.queue.base import TOPICS

    out: dict[str, Any] = {}
    for topic in TOPICS:
        try:
            dead = admin.dead(topic)
        except ServiceUnavailable as exc:
            return {"error": str(exc)}
        if dead:
            out[topic] = [{"key": key, "reason": reason} for key, reason in dead[-limit:]]
    return out


def watchlist_view(config: Config) -> dict[str, Any]:
    """The watchlist files as the daemon would judge them now: valid ones in force, the
    others rejected with their ``file:line:col`` problems (a running daemon keeps the last
    good version of a rejected file; ``/healthz`` says which)."""
    names = [n.name for n in config.notifiers]
    in_force, rejected = [], []
    missing = [str(p) for p in config.rule_paths if not Path(p).exists()]
    for path, wl, problems in load_each(watchlist_files(config.rule_paths), names):
        if wl is not None:
            in_force.append({"name": wl.name, "file": str(path), "terms": len(wl.terms)})
        else:
            rejected.append({"file": str(path), "problems": [str(p) for p in problems],
                             "keeps": None})
    rejected += [{"file": m, "problems": [f"{m}: rules path does not exist"], "keeps": None}
                 for m in missing]
    return {"in_force": in_force, "rejected": rejected}


def _when(ts: float | None, now: float) -> str:
    if ts is None:
        return "—"
    stamp = dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    delta = ts - now
    ago = abs(delta)
    span = (f"{ago:.0f}s" if ago < 120 else f"{ago / 60:.0f}m" if ago < 7200
            else f"{ago / 3600:.1f}h" if ago < 172800 else f"{ago / 86400:.0f}d")
    return f"{stamp} ({'in ' + span if delta > 0 else span + ' ago'})"


def _clip(text: str | None, limit: int = 70) -> str:
    if not text:
        return ""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render(report: dict[str, Any], console: Console) -> None:
    now = time.time()
    console.print(f"[bold]status: {report['status']}[/bold]", highlight=False)
    for reason in report.get("reasons", []):
        console.print(f"  - {_clip(reason, 150)}", highlight=False, markup=False)
    sources = Table(title="sources", title_justify="left")
    for column in ("source", "state", "last success", "last error", "failures", "items",
                   "next poll"):
        sources.add_column(column)
    for name, src in report["sources"].items():
        state = src["state"]
        if src.get("primed") and state == "ok":
            state = f"ok (primed {src['primed']['items'] - src['primed']['alerted']})"
        sources.add_row(name, state, _when(src["last_success"], now), _clip(src["last_error"]
                        or src.get("note")), str(src["failures"]), str(src["items"]),
                        _when(src["next_poll"], now))
    console.print(sources)
    queues = " ".join(f"{k}={v}" for k, v in report["queues"].items()) or "unknown"
    counts = report["deliveries"]
    outbox = ", ".join(f"{state} {counts.get(state, 0)}"
                       for state in ("pending", "sending", "sent", "dead", "skipped"))
    console.print(f"queues: {queues}", highlight=False)
    for topic, dead in report.get("queue_dead", {}).items():
        if topic == "error":
            console.print(f"  queue dead letters unknown: {_clip(dead, 120)}", highlight=False,
                          markup=False)
            continue
        for d in dead:
            console.print(f"  dead in {topic}: key={d['key']} reason={_clip(d['reason'], 100)!r}",
                          highlight=False, markup=False)
    console.print(f"outbox: {outbox}", highlight=False)
    destinations = Table(title="notifiers", title_justify="left")
    for column in ("notifier", "on", "why", "failures in a row", "last error"):
        destinations.add_column(column)
    for name, d in report["destinations"].items():
        state = "ON" if d["on"] else ("OFF" if d["known"] else "?")
        destinations.add_row(name, state, _clip(d["why"], 50), str(d["failures"]),
                             _clip(d["last_error"]))
    console.print(destinations)
    for dead in report.get("dead", []):
        console.print(f"  dead: alert={dead['alert_id']} destination={dead['destination']} "
                      f"reason={_clip(dead['last_error'], 100)!r}", highlight=False, markup=False)
    wl = report["watchlists"]
    force = ", ".join(f"{w['name']} ({w['terms']} terms)" for w in wl.get("in_force", []))
    console.print(f"watchlists in force: {force or 'none'}", highlight=False, markup=False)
    for rejected in wl.get("rejected", []):
        console.print(f"watchlist rejected: {rejected['file']}", highlight=False, markup=False)
        for problem in rejected["problems"][:5]:
            console.print(f"    {problem}", highlight=False, markup=False)
