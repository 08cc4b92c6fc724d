"""Command line: parse, dispatch to ``monitor.commands.<name>``, map errors to exit codes.

Exit codes: 0 success; 1 invalid config or watchlists (``check``, and ``run`` at
start-up); 2 bad command-line usage; 3 a required service (queue, store) unreachable or
unusable (damaged, not a pair), or the data directory held by another daemon.
Each command lives in its own module and is imported only when it runs, so ``monitor
--help`` and ``monitor check`` never pay for the daemon's imports.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from monitor import __version__
from monitor.commands.common import EXIT_INVALID, EXIT_SERVICE
from monitor.errors import ConfigError, ServiceUnavailable

DESCRIPTION = "monitor: poll news feeds, match watchlists of names, alert in Slack."


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code: int = _command(args.func)(args)
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


def _command(target: str) -> Callable[[argparse.Namespace], int]:
    module, _, func = target.partition(":")
    command: Callable[[argparse.Namespace], int] = getattr(
        importlib.import_module(f"monitor.commands.{module}"), func)
    return command


def _config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=Path("config.yaml"),
                        help="the config file (default: config.yaml)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="monitor", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"monitor {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the daemon", description="Run the daemon.")
    _config_arg(run)
    run.add_argument("--once", action="store_true",
                     help="poll every source once, drain the queues, deliver, exit 0")
    run.add_argument("--role", choices=["all", "poll", "match", "notify"], default=None,
                     help="which stages to run: poll (sources -> items), match (items -> "
                          "alerts), notify (alerts -> outbox -> Slack), or all (default; "
                          "or $MONITOR_ROLE); roles other than all need queue.backend: kafka "
                          "and a PostgreSQL store")
    run.set_defaults(func="run:cmd_run")

    check = sub.add_parser("check", help="validate config.yaml and every watchlist")
    _config_arg(check)
    check.add_argument("--rules", type=Path, action="append",
                       help="check these watchlist files or folders instead of config's")
    check.add_argument("--slack", action="store_true",
                       help="also ask Slack whether the token works and the bot is in the channel")
    check.add_argument("--all-warnings", action="store_true",
                       help="print every warning (default: the first few of each kind when "
                            "there are many, then a count)")
    check.set_defaults(func="check:cmd_check")

    backtest = sub.add_parser("backtest", help="replay stored items through a watchlist")
    _config_arg(backtest)
    backtest.add_argument("--rules", type=Path, action="append", required=True,
                          help="candidate watchlist file or folder (repeatable)")
    backtest.add_argument("--since", default="7d", help="how far back: 30m, 12h, 7d, 2w")
    backtest.set_defaults(func="admin:cmd_backtest")

    alerts = sub.add_parser("alerts", help="manage stored alerts")
    alerts_sub = alerts.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    retry = alerts_sub.add_parser(
        "retry", help="send dead or skipped alerts again",
        description="Make dead deliveries (and, with --notifier, deliveries skipped while "
                    "that notifier was off) pending again; the daemon sends them.")
    retry.add_argument("ids", nargs="*", help="alert ids (default: every dead alert)")
    retry.add_argument("--notifier", help="only deliveries to this notifier, skipped ones too")
    retry.add_argument("--since", help="only alerts created this recently: 30m, 24h, 7d")
    _config_arg(retry)
    retry.set_defaults(func="admin:cmd_alerts_retry")

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = db_sub.add_parser("upgrade", help="create or upgrade the store and queue schema")
    _config_arg(upgrade)
    upgrade.set_defaults(func="admin:cmd_db_upgrade")
    db_check = db_sub.add_parser(
        "check", help="integrity-check the store and queue; do they belong together?",
        description="Run PRAGMA integrity_check on each SQLite file and say whether the "
                    "store and the queue are a pair. Read-only, safe beside a running "
                    "daemon; exit 1 when something is wrong.")
    _config_arg(db_check)
    db_check.set_defaults(func="admin:cmd_db_check")
    recover = db_sub.add_parser(
        "recover", help="pair a store and a queue again after one was lost or replaced",
        description="After queue.db was deleted, damaged or replaced: queue the items seen "
                    "since the last matched one (or since --since) for matching again, and "
                    "pair the queue with the store. After the store was lost: with "
                    "--new-store, keep a new store whose sources are polled once now to mark "
                    "their feeds' current items seen. Refused while a daemon runs.")
    _config_arg(recover)
    recover.add_argument("--since", help="queue the items seen since then: 30m, 2h, 7d, or a "
                                         "time such as 2025-01-31T12:00 (UTC); 0 queues none "
                                         "(default: from the last matched item)")
    recover.add_argument("--new-store", action="store_true",
                         help="the store is lost: keep the new, empty one and prime every "
                              "source now (its current items do not alert)")
    recover.add_argument("--backfill", default="0",
                         help="with --new-store: still alert items published within this "
                              "window, e.g. 1h (default: 0, none)")
    recover.set_defaults(func="admin:cmd_db_recover")

    status = sub.add_parser("status", help="sources, queues, outbox and watchlists at a glance")
    _config_arg(status)
    status.add_argument("--json", action="store_true", help="one JSON document instead of tables")
    status.set_defaults(func="status:cmd_status")

    _watchlist_parser(sub)

    match = sub.add_parser("match", help="run the matcher offline over items, text or a feed")
    match.add_argument("--rules", type=Path, action="append", required=True,
                       help="a watchlist file or a folder of them (repeatable)")
    src = match.add_mutually_exclusive_group()
    src.add_argument("--input", default="-",
                     help="JSON Lines (or a JSON array) of items, or plain text; '-' for stdin")
    src.add_argument("--feed", help="a feed URL or file to fetch and match")
    match.add_argument("--format", choices=["text", "jsonl"], default="text")
    match.add_argument("--color", choices=["auto", "always", "never"], default="auto")
    match.add_argument("--fail-on-match", action="store_true",
                       help="exit 1 when anything matched (like grep), for scripts")
    match.set_defaults(func="match:cmd_match")
    return parser


def _watchlist_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    watchlist = sub.add_parser("watchlist", help="import a big watchlist from another list")
    actions = watchlist.add_subparsers(dest="watchlist_command", required=True, metavar="ACTION")
    imp = actions.add_parser(
        "import", help="write rules/NAME.yaml from a CSV or FollowTheMoney entities",
        description="Write a reviewable watchlist (rules/NAME.yaml) from a CSV with a header "
                    "row or from OpenSanctions/FollowTheMoney entities (JSON lines). Rows "
                    "that cannot become a term are skipped and reported, duplicates merged; "
                    "the file's header says what happened to every row.")
    imp.add_argument("source", type=Path, metavar="SOURCE",
                     help="a UTF-8 CSV with a header row, or FollowTheMoney entities, one a line")
    imp.add_argument("--name", help="the watchlist's name (default: the source file's name)")
    imp.add_argument("--out", type=Path, help="the file to write (default: rules/NAME.yaml)")
    imp.add_argument("--format", choices=["csv", "ftm"],
                     help="default: from the extension (.csv/.tsv; .json/.jsonl/.ndjson), "
                          "else from the first character")
    imp.add_argument("--force", action="store_true", help="replace the file if it exists")
    csv = imp.add_argument_group("CSV columns (by header name)")
    csv.add_argument("--name-column", help="the names (default: a column headed 'name')")
    csv.add_argument("--aliases-column", help="aliases, several to a cell (default: 'aliases')")
    csv.add_argument("--alias-separator",
                     help="what separates aliases in a cell (default: ';' or '|')")
    csv.add_argument("--kind-column",
                     help="person/place/org/topic, or words for them such as 'individual', "
                          "'company', 'city' (default: a column headed 'kind')")
    csv.add_argument("--kind", choices=["person", "place", "org", "topic"],
                     help="the kind of every row without a known kind (default: topic)")
    csv.add_argument("--id-column", help="stable term ids (default: a column headed 'id', "
                                         "else the name's slug)")
    csv.add_argument("--delimiter", help="one character, or 'tab' (default: sniffed from the "
                                         "header row)")
    ftm = imp.add_argument_group("FollowTheMoney")
    ftm.add_argument("--weak-aliases", action="store_true",
                     help="also import weakAlias names (short, common strings: review them)")
    imp.set_defaults(func="watchlist:cmd_import")


if __name__ == "__main__":
    raise SystemExit(main())
