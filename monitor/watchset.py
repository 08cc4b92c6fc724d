"""The watchlists in force in a running daemon, and the ones rejected.

A file that becomes invalid keeps its last good version (its problems are logged and shown
in health); a deleted file stops (deletion is intent). A reload that would leave no
watchlist at all keeps the last good set instead: polling with nothing to match would mark
every new item seen without ever matching it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from monitor.engine.base import Matcher
from monitor.engine.matcher import compile_watchlists
from monitor.engine.watchlist import load_each, watchlist_files
from monitor.errors import Problem
from monitor.models import Watchlist

log = logging.getLogger("monitor")


class WatchlistSet:
    def __init__(self, paths: Sequence[Path], notifiers: Sequence[str] | None = None) -> None:
        self.paths = list(paths)
        self.notifiers = None if notifiers is None else list(notifiers)
        self.by_file: dict[str, Watchlist] = {}
        self.rejected: dict[str, list[Problem]] = {}
        self.fingerprint: tuple[tuple[str, int, int], ...] = ()
        self.matcher: Matcher = compile_watchlists([])

    def scan(self) -> tuple[tuple[str, int, int], ...]:
        out = []
        for f in watchlist_files(self.paths):
            try:
                st = f.stat()
            except OSError:
                continue
            out.append((str(f), st.st_mtime_ns, st.st_size))
        return tuple(out)

    def load(self) -> list[Problem]:
        """(Re)load every file; returns the problems of files that were rejected."""
        self.fingerprint = self.scan()
        problems: list[Problem] = []
        rejected: dict[str, list[Problem]] = {}
        fresh: dict[str, Watchlist] = {}
        files = [Path(f) for f, _, _ in self.fingerprint]
        for path, wl, found in load_each(files, self.notifiers):
            file = str(path)
            if wl is not None:
                fresh[file] = wl
                continue
            problems.extend(found)
            rejected[file] = found
            if file in self.by_file:
                fresh[file] = self.by_file[file]
                log.error("watchlist_rejected file=%s: the previous version of %r stays "
                          "in force until this file is fixed", file, self.by_file[file].name)
        self.rejected = rejected
        if not fresh and self.by_file:
            problem = Problem(", ".join(map(str, self.paths)), 1, 1, "no watchlist would be "
                              "left in force; the last good set stays until one is valid")
            log.error("watchlists_empty paths=%s: keeping the last good set of %d",
                      [str(p) for p in self.paths], len(self.by_file))
            return [*problems, problem]
        for gone in set(self.by_file) - set(fresh):
            log.warning("watchlist_removed file=%s name=%s: its rules stop", gone,
                        self.by_file[gone].name)
        self.by_file = fresh
        self.matcher = compile_watchlists(list(fresh.values()))
        return problems

    @property
    def watchlists(self) -> list[Watchlist]:
        return list(self.by_file.values())

    def view(self) -> dict[str, Any]:
        """What health shows: the watchlists in force and the files rejected, with their
        ``file:line:col`` problems."""
        return {
            "in_force": [{"name": w.name, "file": f, "terms": len(w.terms)}
                         for f, w in sorted(self.by_file.items())],
            "rejected": [{"file": f, "problems": [str(p) for p in found],
                          "keeps": self.by_file[f].name if f in self.by_file else None}
                         for f, found in sorted(self.rejected.items())],
        }
