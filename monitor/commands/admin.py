"""``monitor backtest``, ``alerts retry`` and ``db upgrade``: operator commands on the store."""

from __future__ import annotations

import argparse
import logging
import sys

from monitor.commands.common import EXIT_OK, EXIT_USAGE
from monitor.config import load_config
from monitor.errors import ConfigError

log = logging.getLogger("monitor")

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
