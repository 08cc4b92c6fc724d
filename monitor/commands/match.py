"""``monitor match``: the matcher offline, over items, plain text or a feed."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from monitor.commands.common import EXIT_OK, EXIT_SERVICE, EXIT_USAGE
from monitor.errors import ConfigError, MonitorError
from monitor.models import Item

log = logging.getLogger("monitor")

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
