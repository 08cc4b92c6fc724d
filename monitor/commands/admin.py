"""``monitor backtest``, ``alerts retry`` and ``db upgrade|check|recover``: operator commands
on the store and the queue."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import TYPE_CHECKING

from monitor.commands.common import EXIT_INVALID, EXIT_OK, EXIT_USAGE
from monitor.config import load_config
from monitor.errors import ConfigError

if TYPE_CHECKING:
    from monitor.config import Config
    from monitor.queue.base import Queue
    from monitor.sources.fetch import FetchLimits
    from monitor.store.base import Store

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
    """Bring the store's schema to this release's version (Alembic revisions shipped in
    the package), and create the queue's tables. Safe to run from several instances at
    once: they take turns on the migration lock, and the later ones find nothing to do.
    A database made before versioned migrations is adopted as revision 0001 first. Stop
    the daemons of the old release first: a daemon refuses to start on a schema it does
    not know, but one already running is not told (exit 3 for a schema newer than this
    release knows)."""
    from monitor.queue import open_queue
    from monitor.queue.sqlite import SqliteQueue
    from monitor.store import upgrade_store

    config = load_config(args.config, require_env=False)
    where, done = upgrade_store(config)
    if done.steps or done.before != done.after:
        print(f"ok: store {where} upgraded from schema {done.before} to {done.after} "
              f"({', '.join(done.steps) or 'adopted'}; {done.seconds:.2f}s)")
    else:
        print(f"ok: store {where} is at schema {done.after}, the current version")
    q = config.queue
    if q.backend == "kafka":  # the topics, made if missing (another instance may race: fine)
        open_queue(config, create=True).close()
        print(f"ok: queue kafka {q.bootstrap_servers}: topics {q.topic_prefix}.items, "
              f".alerts, .items.retry, .alerts.retry and .dead exist")
        return EXIT_OK
    queue_path = config.resolve(q.path)
    SqliteQueue(queue_path).close()
    print(f"ok: queue {queue_path} is at the current schema")
    return EXIT_OK


# --- db check / db recover ----------------------------------------------------------------
def cmd_db_check(args: argparse.Namespace) -> int:
    """``PRAGMA integrity_check`` of each SQLite file, and whether the store and the queue
    belong together. Read-only: no lock, safe beside a running daemon; exit 1 on a problem."""
    from monitor.datadir import check_report

    healthy, lines = check_report(load_config(args.config, require_env=False))
    for line in lines:
        print(line)
    return EXIT_OK if healthy else EXIT_INVALID


def cmd_db_recover(args: argparse.Namespace) -> int:
    """Make the store and the queue a pair again after one was lost, emptied, damaged or
    replaced; refuses (exit 3) while a daemon holds the data directory."""
    from monitor.config import parse_backfill
    from monitor.datadir import DataDir, parse_since, recover

    config = load_config(args.config, require_env=False)
    try:
        since = parse_since(args.since) if args.since else None
        backfill = parse_backfill(args.backfill)
    except ValueError as exc:
        print(f"monitor db recover: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.backfill != "0" and not args.new_store:
        print("monitor db recover: --backfill goes with --new-store", file=sys.stderr)
        return EXIT_USAGE
    if config.queue.backend == "kafka":
        print("monitor db recover: pairs a store with its SQLite queue file; with "
              "queue.backend: kafka the broker keeps the queue and there is nothing to pair "
              "(`monitor db check` says whether the broker and the store answer)",
              file=sys.stderr)
        return EXIT_USAGE
    data = DataDir(config)
    data.lock("recover")
    try:
        done = recover(config, data, since=since, new_store=args.new_store,
                       prime=lambda store, queue: _prime(config, store, queue, backfill))
    finally:
        data.release()
    if done.refused:
        print(f"monitor db recover: {done.refused}", file=sys.stderr)
        return EXIT_INVALID
    for path in done.moved or []:
        print(f"moved the damaged {path.name.split('.damaged-')[0]} aside: {path}")
    for line in done.primed or []:
        print(line)
    if done.pair is None:
        print("nothing to recover: the store and the queue belong together (give --since to "
              "queue items for matching again)")
        return EXIT_OK
    if done.since is not None:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(done.since))
        print(f"queued {done.requeued} item{'' if done.requeued == 1 else 's'} seen since "
              f"{when} for matching again (alerts already stored are not sent again)")
    print(f"ok: store and queue paired (pair {done.pair[:8]}); start the daemon")
    return EXIT_OK


def _prime(config: Config, store: Store, queue: Queue, backfill: float) -> list[str]:
    """Poll every enabled source once into a new store, as its first poll: items published
    within ``backfill`` are queued, the rest only marked seen. One line per source."""
    import asyncio

    from monitor.app import make_source
    from monitor.poller import Poller
    from monitor.sources.fetch import Fetcher

    sources = [sc.model_copy(update={"backfill": backfill})
               for sc in config.sources if sc.enabled]
    poller = Poller(config, store, queue, once=True)
    limits = _fetch_limits(config)

    async def poll_all() -> list[bool]:
        async with Fetcher() as fetcher:
            outcomes = await asyncio.gather(*(poller.poll(make_source(sc, fetcher, limits), sc)
                                              for sc in sources))
        return [o.ok for o in outcomes]

    lines = []
    for sc, ok in zip(sources, asyncio.run(poll_all()), strict=True):
        state = store.source_state(sc.name)
        if ok and state is not None:
            n = state.primed_items
            lines.append(f"source {sc.name}: {n} item{'' if n == 1 else 's'} marked seen, "
                         f"{state.primed_alerted} queued (published within the backfill)")
        else:
            lines.append(f"source {sc.name}: not reached ({state.last_error if state else ''}); "
                         "the daemon's first poll of it alerts what is within "
                         "first_poll.backfill")
    return lines


def _fetch_limits(config: Config) -> FetchLimits:
    from monitor.sources.fetch import FetchLimits

    f = config.fetch
    return FetchLimits(connect_timeout=f.connect_timeout, read_timeout=f.read_timeout,
                       total_deadline=f.total_deadline, max_wire_bytes=f.max_bytes,
                       max_decoded_bytes=f.max_bytes, max_redirects=f.max_redirects,
                       allow_private=f.allow_private)
