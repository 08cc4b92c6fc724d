"""Command line: ``monitor run | check | match | backtest | status | alerts retry |
db upgrade``.

Exit codes: 0 success; 1 invalid config or watchlists (``check``, and ``run`` at
start-up); 2 bad command-line usage; 3 a required service (queue, store) unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from monitor.config import Config, load_config
from monitor.errors import ConfigError, MonitorError, ServiceUnavailable
from monitor.logs import setup_logging
from monitor.models import Item

log = logging.getLogger("monitor")

EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_SERVICE = 0, 1, 2, 3


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        for p in exc.problems:
            print(p, file=sys.stderr)
        return EXIT_INVALID
    except ServiceUnavailable as exc:
        print(f"monitor: {exc}", file=sys.stderr)
        return EXIT_SERVICE
    except KeyboardInterrupt:
        return 130
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="monitor", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the daemon")
    run.add_argument("--config", type=Path, default=Path("config.yaml"))
    run.add_argument("--once", action="store_true",
                     help="poll every source once, drain the queues, deliver, exit 0")
    run.add_argument("--role", choices=["all"], default="all",
                     help="which stages to run (scaled-out roles come with the Kafka backend)")
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check", help="validate config.yaml and every watchlist")
    check.add_argument("--config", type=Path, default=Path("config.yaml"))
    check.add_argument("--rules", type=Path, action="append",
                       help="check these watchlist files or folders instead of config's")
    check.set_defaults(func=cmd_check)

    backtest = sub.add_parser("backtest", help="replay stored items through a watchlist")
    backtest.add_argument("--config", type=Path, default=Path("config.yaml"))
    backtest.add_argument("--rules", type=Path, action="append", required=True,
                          help="candidate watchlist file or folder (repeatable)")
    backtest.add_argument("--since", default="7d", help="how far back: 30m, 12h, 7d, …")
    backtest.set_defaults(func=cmd_backtest)

    alerts = sub.add_parser("alerts", help="manage stored alerts")
    alerts_sub = alerts.add_subparsers(dest="alerts_command", required=True)
    retry = alerts_sub.add_parser("retry", help="re-send dead-lettered alerts")
    retry.add_argument("ids", nargs="*", help="alert ids (default: every dead alert)")
    retry.add_argument("--config", type=Path, default=Path("config.yaml"))
    retry.set_defaults(func=cmd_alerts_retry)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser("upgrade", help="create or upgrade the store and queue schema")
    upgrade.add_argument("--config", type=Path, default=Path("config.yaml"))
    upgrade.set_defaults(func=cmd_db_upgrade)

    status = sub.add_parser("status", help="sources' health, queue depths, dead letters")
    status.add_argument("--config", type=Path, default=Path("config.yaml"))
    status.set_defaults(func=cmd_status)

    match = sub.add_parser("match", help="run the matcher offline over items or a feed")
    match.add_argument("--rules", type=Path, action="append", required=True,
                       help="a watchlist file or a folder of them (repeatable)")
    src = match.add_mutually_exclusive_group()
    src.add_argument("--input", default="-",
                     help="JSON Lines (or a JSON array) of items; '-' for stdin")
    src.add_argument("--feed", help="a feed URL or file to fetch and match")
    match.add_argument("--format", choices=["text", "jsonl"], default="text")
    match.add_argument("--color", choices=["auto", "always", "never"], default="auto")
    match.set_defaults(func=cmd_match)
    return parser


# --- run ---------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    setup_logging(config.log_level)
    from monitor.app import App  # heavy imports only for the daemon

    app = App(config)
    try:
        problems = app.load_watchlists()
        if problems:
            for p in problems:
                print(p, file=sys.stderr)
            return EXIT_INVALID
        if args.once:
            asyncio.run(_with_signals(app, app.run_once()))
        else:
            asyncio.run(_with_signals(app, app.run_forever()))
    finally:
        app.close()
    log.info("stopped")
    return EXIT_OK


async def _with_signals(app: Any, work: Any) -> None:
    """SIGTERM/SIGINT stop the daemon cleanly; a second signal exits at once."""
    loop = asyncio.get_running_loop()
    hits = {"n": 0}

    def on_signal(signum: int) -> None:
        hits["n"] += 1
        if hits["n"] > 1:
            log.warning("second signal: exiting now; leased work returns after its lease")
            os._exit(130)
        log.info("signal %s: stopping (finishing in-flight work)", signal.Signals(signum).name)
        app.stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    main_task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(app.stop.wait())
    done, _ = await asyncio.wait({main_task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if main_task not in done:  # --once interrupted: give in-flight sends their deadline
        try:
            await asyncio.wait_for(main_task, timeout=app.config.scheduler.shutdown_deadline)
        except (TimeoutError, asyncio.CancelledError):
            log.warning("shutdown deadline passed; leaving the rest queued")
    stopper.cancel()
    if main_task.done() and not main_task.cancelled() and main_task.exception():
        raise main_task.exception()


# --- check -------------------------------------------------------------------------------
def cmd_check(args: argparse.Namespace) -> int:
    from monitor.engine.watchlist import load_watchlists
    from monitor.lint import lint

    problems = []
    config: Config | None = None
    if args.rules:
        paths = list(args.rules)
    else:
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            problems.extend(exc.problems)
        paths = config.rule_paths if config else []
    watchlists, wl_problems = load_watchlists(paths)
    problems.extend(wl_problems)
    if config is not None:
        problems.extend(_check_notify_names(config, watchlists))
    for p in problems:
        print(p)
    warnings = lint(watchlists)
    for w in warnings:
        print(w)
    terms = sum(len(w.terms) for w in watchlists)
    if problems:
        print(f"{len(problems)} problem(s); {len(watchlists)} watchlist(s) valid", file=sys.stderr)
        return EXIT_INVALID
    print(f"ok: {len(watchlists)} watchlist(s), {terms} term(s), {len(warnings)} warning(s)")
    return EXIT_OK


def _check_notify_names(config: Config, watchlists: list[Any]) -> list[Any]:
    import difflib

    from monitor.errors import Problem

    known = [n.name for n in config.notifiers]
    out = []
    for wl in watchlists:
        for name in wl.notify:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f" (known: {known})"
                out.append(Problem(wl.path, 1, 1, f"notify: unknown notifier {name!r}{hint}"))
    return out


# --- backtest ----------------------------------------------------------------------------
def cmd_backtest(args: argparse.Namespace) -> int:
    import time

    from monitor.backtest import backtest, render
    from monitor.config import parse_duration
    from monitor.engine.watchlist import load_watchlists
    from monitor.store import open_store

    try:
        window = parse_duration(args.since)
    except ValueError as exc:
        print(f"monitor backtest: --since: {exc}", file=sys.stderr)
        return EXIT_USAGE
    config = load_config(args.config)
    candidate, problems = load_watchlists(args.rules)
    if problems:
        raise ConfigError(problems)
    current, _ = load_watchlists(config.rule_paths)
    store = open_store(config)
    try:
        items = store.items_since(time.time() - window)
    finally:
        store.close()
    print(render(backtest(candidate, current, items), args.since))
    return EXIT_OK


# --- alerts retry / db upgrade ----------------------------------------------------------
def cmd_alerts_retry(args: argparse.Namespace) -> int:
    """Dead deliveries become pending again; a running daemon (or the next ``run``)
    sends them. Nothing is sent from this command itself."""
    from monitor.store import open_store

    config = load_config(args.config)
    store = open_store(config)
    try:
        n = store.revive(args.ids)
    finally:
        store.close()
    print(f"{n} dead deliver{'y' if n == 1 else 'ies'} queued again; a running daemon sends "
          "them within seconds, or run `monitor run --once`")
    return EXIT_OK


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """The SQLite schema is created and upgraded in place when a store or queue opens;
    this command does that without starting the daemon (e.g. in a deploy step)."""
    from monitor.queue.sqlite import SqliteQueue
    from monitor.store import open_store

    config = load_config(args.config)
    queue_path = config.resolve(config.queue.path)
    open_store(config).close()
    SqliteQueue(queue_path).close()
    store = config.store.url.split("@")[-1] if "@" in config.store.url else config.store.url
    print(f"ok: store {store} and queue {queue_path} are at the current schema")
    return EXIT_OK


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


# --- match -------------------------------------------------------------------------------
def cmd_match(args: argparse.Namespace) -> int:
    from monitor.engine.explain import render_text
    from monitor.engine.matcher import compile_watchlists
    from monitor.engine.watchlist import load_watchlists

    watchlists, problems = load_watchlists(args.rules)
    if problems:
        raise ConfigError(problems)
    if not watchlists:
        print(f"monitor: no watchlist found in {[str(p) for p in args.rules]}", file=sys.stderr)
        return EXIT_USAGE
    matcher = compile_watchlists(watchlists)
    items = _feed_items(args.feed) if args.feed else _read_items(args.input)
    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
    out = sys.stdout
    for item in items:
        hits = matcher.match(item)
        if args.format == "jsonl":
            for hit in hits:
                for m in hit.matches:
                    out.write(json.dumps(m.to_json(item.id), ensure_ascii=False) + "\n")
        elif hits:
            matches = [m for hit in hits for m in hit.matches]
            out.write(render_text(item, matches, color) + "\n")
    out.flush()
    return EXIT_OK


def _read_items(name: str) -> Iterator[Item]:
    stream: TextIO = sys.stdin if name == "-" else open(name, encoding="utf-8")  # noqa: SIM115
    with stream:
        text = stream.read()
    stripped = text.lstrip()
    if stripped.startswith("["):
        rows = json.loads(stripped)
    else:
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    for n, row in enumerate(rows, 1):
        if not isinstance(row, dict) or not row.get("id"):
            print(f"{name}:{n}: skipped: an item needs an 'id'", file=sys.stderr)
            continue
        yield Item.from_dict(row)


def _feed_items(feed: str) -> list[Item]:
    from monitor.sources.fetch import Fetcher
    from monitor.sources.rss import RssSource

    url = feed if "://" in feed else Path(feed).resolve().as_uri()

    async def fetch() -> list[Item]:
        async with Fetcher() as fetcher:
            return (await RssSource("cli", url, fetcher).poll(None)).items

    try:
        return asyncio.run(fetch())
    except MonitorError as exc:
        print(f"monitor: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_SERVICE) from None


if __name__ == "__main__":
    raise SystemExit(main())
