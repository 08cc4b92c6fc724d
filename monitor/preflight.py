"""The one judgement ``monitor check`` and ``monitor run`` make before anything runs.

``check`` prints what this finds; ``run`` refuses to start (exit 1) on any problem. Both go
through here so that a config ``check`` passes is a config ``run`` starts with, and the
other way round. Beyond config.yaml's own validation this adds what needs the disk and the
watchlists: every rules path exists, every watchlist is valid and routes only to notifiers
config.yaml defines, and at least one watchlist is in force (polling with none would mark
every item seen without ever matching it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from monitor.config import Config, format_backfill, load_config
from monitor.engine import native
from monitor.engine.watchlist import WATCHLIST_SUFFIXES, load_watchlists
from monitor.errors import ConfigError, Problem
from monitor.models import Watchlist
from monitor.notify.build import NotifierPlan, plan_notifiers
from monitor.yamlfile import position, read_yaml


@dataclass
class Preflight:
    config: Config | None
    watchlists: list[Watchlist] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.config is not None


def preflight(config_path: Path, rules: Sequence[Path] | None = None) -> Preflight:
    """Validate config.yaml and the watchlists it points to (or ``rules`` instead; then a
    config file that does not exist is no problem: an analyst checking one watchlist)."""
    if rules is not None and not config_path.exists():
        watchlists, found = load_watchlists(rules)
        problems = _missing_paths(rules, None) + found
        if not watchlists and not problems:
            problems.append(_no_watchlists(rules, None))
        return Preflight(None, watchlists, problems)
    try:
        config: Config | None = load_config(config_path)
    except ConfigError as exc:
        if rules is None:
            return Preflight(None, problems=list(exc.problems))
        config, config_problems = None, list(exc.problems)
    else:
        config_problems = []
    if rules is not None:
        paths, where = list(rules), None
    else:
        assert config is not None
        paths, where = config.rule_paths, config_path
    missing = _missing_paths(paths, where)
    problems = config_problems + missing
    names = [n.name for n in config.notifiers] if config is not None else None
    watchlists, found = load_watchlists(paths, names)
    problems += found
    if not watchlists and not found and not missing:
        problems.append(_no_watchlists(paths, where))
    return Preflight(config, watchlists, problems)


def _rules_position(config_path: Path, index: int | None) -> tuple[int, int]:
    try:
        root = read_yaml(config_path)
    except ConfigError:
        return 1, 1
    loc: list[int | str] = ["rules", "paths"] + ([index] if index is not None else [])
    return position(root, loc)


def _missing_paths(paths: Sequence[Path], config_path: Path | None) -> list[Problem]:
    out = []
    for i, path in enumerate(paths):
        if path.exists():
            continue
        if config_path is None:
            out.append(Problem(str(path), 1, 1, "watchlist path does not exist"))
        else:
            line, col = _rules_position(config_path, i)
            out.append(Problem(str(config_path), line, col, f"rules.paths[{i}]: {str(path)!r} "
                               "does not exist"))
    return out


def _no_watchlists(paths: Sequence[Path], config_path: Path | None) -> Problem:
    suffixes = " or ".join(f"*{s}" for s in WATCHLIST_SUFFIXES)
    message = (f"no watchlist found in {', '.join(map(str, paths))} (looked for {suffixes}); "
               "monitor does not run with nothing to match")
    if config_path is None:
        return Problem(str(paths[0]) if paths else "rules", 1, 1, message)
    line, col = _rules_position(config_path, None)
    return Problem(str(config_path), line, col, f"rules.paths: {message}")


def _store_text(config: Config) -> str:
    url = config.store.url
    if url.startswith("sqlite:///"):
        return f"sqlite {config.sqlite_path(url)} (durability {config.store.durability})"
    _, _, rest = url.partition("://")
    host = rest.rpartition("@")[2]  # never show a password
    return f"postgresql {host}"


def _queue_text(config: Config) -> str:
    q = config.queue
    if q.backend == "kafka":
        return (f"kafka {q.bootstrap_servers}, topics {q.topic_prefix}.*, {q.partitions} "
                f"partition{'s' * (q.partitions != 1)} for new topics")
    return f"sqlite {config.resolve(q.path)}"


def summary(config: Config, watchlists: Sequence[Watchlist],
            plans: Sequence[NotifierPlan] | None = None) -> list[str]:
    """What will run, in lines for ``check``: sources, watchlists, the matching engine
    (compiled or not, and why not), store, queue and each notifier ON or OFF with the
    reason."""
    plans = plan_notifiers(config) if plans is None else plans
    enabled = [s for s in config.sources if s.enabled]
    kinds: dict[str, int] = {}
    for s in enabled:
        kinds[s.type] = kinds.get(s.type, 0) + 1
    by_kind = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    terms = sum(len(w.terms) for w in watchlists)
    lines = [
        f"  sources:    {len(enabled)} enabled ({by_kind or 'none'}); a new source's first "
        f"poll alerts on items from the last {format_backfill(config.first_poll.backfill)}",
        f"  watchlists: {len(watchlists)} ({', '.join(w.name for w in watchlists)}), "
        f"{terms} terms",
        f"  matching:   {native.active()}",
        f"  store:      {_store_text(config)}",
        f"  queue:      {_queue_text(config)}",
        "  notifiers:",
    ]
    lines += [f"    {plan}" for plan in plans]
    return lines
