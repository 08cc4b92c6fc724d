"""``monitor check``: validate config and watchlists exactly as ``run`` does."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from monitor.commands.common import EXIT_INVALID, EXIT_OK
from monitor.config import Config, load_config
from monitor.errors import ConfigError

log = logging.getLogger("monitor")

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
