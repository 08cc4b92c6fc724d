"""``monitor run``: the daemon, or one pass with ``--once``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from typing import Any

from monitor.commands.common import EXIT_INVALID, EXIT_OK, EXIT_SERVICE, EXIT_USAGE
from monitor.config import POSTGRES_SCHEMES, Config
from monitor.logs import setup_logging
from monitor.preflight import preflight

log = logging.getLogger("monitor")

#: ``monitor run --role``: which stages this process runs (monitor.app.App).
ROLES = ("all", "poll", "match", "notify")


def cmd_run(args: argparse.Namespace) -> int:
    """Refuses to start (exit 1) on anything ``monitor check`` would refuse, so nothing is
    polled, and marked seen, without a watchlist to match it; and (exit 3) while another
    daemon holds the data directory, or when the store and the queue are not a pair
    (``monitor.datadir``); (exit 2) a role other than ``all`` without Kafka and
    PostgreSQL."""
    role = args.role or os.environ.get("MONITOR_ROLE", "").strip().lower() or "all"
    if role not in ROLES:
        _refuse([f"monitor: not started: MONITOR_ROLE={role!r}: expected one of "
                 f"{', '.join(ROLES)}"])
        return EXIT_USAGE
    found = preflight(args.config)
    if not found.ok or found.config is None:
        _refuse([str(p) for p in found.problems] + [
            "monitor: not started; fix the problems above (`monitor check` lists them)"])
        return EXIT_INVALID
    config = found.config
    refused = role_refusal(role, config, once=args.once)
    if refused:
        _refuse([f"monitor: not started: {refused}"])
        return EXIT_USAGE
    setup_logging(config.log_level, config.log.format)
    from monitor.app import App  # heavy imports only for the daemon
    from monitor.datadir import StartRefused

    try:
        app = App(config, once=args.once, role=role)
    except StartRefused as exc:  # another daemon, or files that are not a pair: exit 3
        _refuse([f"monitor: not started: {exc}"])
        return EXIT_SERVICE
    try:
        problems = app.load_watchlists()
        if problems or not app.watchlists.watchlists:
            _refuse([*map(str, problems), "monitor: not started: no valid watchlist in force"])
            return EXIT_INVALID
        if args.once:
            asyncio.run(_with_signals(app, app.run_once()))
        else:
            asyncio.run(_with_signals(app, app.run_forever()))
    finally:
        app.close()
    log.info("stopped")
    return EXIT_OK


def role_refusal(role: str, config: Config, *, once: bool) -> str | None:
    """Why ``role`` cannot run with this config (None: it can). Roles other than ``all``
    share the queue and the store between processes: the SQLite queue is a file in one
    data directory that one daemon locks, so they need Kafka and PostgreSQL."""
    if role == "all":
        return None
    if config.queue.backend != "kafka" or not config.store.url.startswith(POSTGRES_SCHEMES):
        return (f"--role {role} needs queue.backend: kafka and a PostgreSQL store "
                "(store.url: postgresql://…); with the embedded SQLite queue run --role all")
    if once:
        return f"--once runs every stage: it cannot be combined with --role {role}"
    return None


def _refuse(lines: list[str]) -> None:
    """Why the daemon will not start: plain ``file:line:col: message`` lines for a person,
    or, when ``MONITOR_LOG_FORMAT=json`` asks for machine-read logs, one JSON record each."""
    if os.environ.get("MONITOR_LOG_FORMAT", "").strip().lower() == "json":
        setup_logging("INFO", "json")
        for line in lines:
            log.error("start_refused %s", line)
        return
    for line in lines:
        print(line, file=sys.stderr)


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
