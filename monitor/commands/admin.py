"""``monitor backtest``, ``alerts retry`` and ``db upgrade``: operator commands on the store."""

from __future__ import annotations

import argparse
import logging
import sys
import time

from monitor.commands.common import EXIT_INVALID, EXIT_OK, EXIT_USAGE
from monitor.config import load_config
from monitor.errors import ConfigError

log = logging.getLogger("monitor")


# --- backtest ----------------------------------------------------------------------------
def cmd_backtest(args: argparse.Namespace) -> int:
    from monitor.backtest import backtest, render
    from monitor.config import parse_duration
    from monitor.engine.watchlist import load_watchlists
    from monitor.store import open_store

    try:
        window = parse_duration(args.since)
    except ValueError as exc:
        print(f"monitor backtest: --since: {exc}", file=sys.stderr)
        return EXIT_USAGE
    config = load_config(args.config, require_env=False)
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
    """Dead deliveries, and deliveries skipped while their notifier was off, become pending
    again for every notifier that is on now; a running daemon (or the next ``run``) sends
    them. Nothing is sent from this command itself, so it is safe beside a daemon."""
    import difflib

    from monitor.config import parse_duration
    from monitor.notify.build import plan_notifiers
    from monitor.store import open_store
    from monitor.store.base import DEAD, SKIPPED

    config = load_config(args.config, require_env=False)
    plans = {p.name: p for p in plan_notifiers(config)}
    try:
        since = time.time() - parse_duration(args.since) if args.since else None
    except ValueError as exc:
        print(f"monitor alerts retry: --since: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.notifier and args.notifier not in plans:
        close = difflib.get_close_matches(args.notifier, list(plans), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(plans)})"
        print(f"monitor alerts retry: unknown notifier {args.notifier!r}{hint}", file=sys.stderr)
        return EXIT_INVALID
    if args.notifier and not plans[args.notifier].on and plans[args.notifier].known:
        print(f"monitor alerts retry: {plans[args.notifier]}; switch it on (set the variable "
              "and restart the daemon), then retry", file=sys.stderr)
        return EXIT_INVALID
    targets = ([args.notifier] if args.notifier
               else [n for n, p in plans.items() if p.on or not p.known])
    store = open_store(config)
    try:
        unknown = sorted(set(args.ids) - store.known_alerts(args.ids))
        if unknown:
            print(f"monitor alerts retry: unknown alert id(s): {', '.join(unknown)} "
                  "(nothing was changed)", file=sys.stderr)
            return EXIT_INVALID
        dead = store.revive(args.ids, destinations=targets, since=since, states=(DEAD,))
        skipped = store.revive(args.ids, destinations=targets, since=since, states=(SKIPPED,))
    finally:
        store.close()
    if not dead and not skipped:
        print("nothing to retry: no dead or skipped deliveries match")
        return EXIT_OK
    parts = [f"{dead} dead deliver{'y' if dead == 1 else 'ies'}" if dead else "",
             f"{skipped} skipped deliver{'y' if skipped == 1 else 'ies'}" if skipped else ""]
    print(f"{' and '.join(p for p in parts if p)} queued again for {', '.join(targets)}; a "
          "running daemon sends them within seconds, or run `monitor run --once`")
    return EXIT_OK


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """The SQLite schema is created and upgraded in place when a store or queue opens;
    this command does that without starting the daemon (e.g. in a deploy step)."""
    from monitor.queue.sqlite import SqliteQueue
    from monitor.store import open_store

    config = load_config(args.config, require_env=False)
    queue_path = config.resolve(config.queue.path)
    open_store(config).close()
    SqliteQueue(queue_path).close()
    store = config.store.url.split("@")[-1] if "@" in config.store.url else config.store.url
    print(f"ok: store {store} and queue {queue_path} are at the current schema")
    return EXIT_OK
