"""``monitor match``: the matcher offline, over items, plain text or a feed.

Input (``--input FILE``, or ``-`` for stdin, the default) is read whole as UTF-8 (a BOM is
dropped; undecodable bytes become U+FFFD with a note on stderr) and its kind is decided by its
first non-blank character:

* ``{`` — items as JSON: the whole text as one JSON object (``jq``'s pretty-printed output),
  else JSON Lines, one object a line. A line that is not JSON is reported as
  ``NAME:LINE: not JSON: …`` on stderr and the other lines are still matched.
* ``[`` — a JSON array of items, when the text parses as one, or when it opens like one
  (``[`` then ``{`` or ``]``: a broken array is reported as ``NAME:LINE: not JSON: …`` and
  the command exits 2, since nothing in it can be trusted). Anything else that starts with
  ``[`` is prose ("[Reuters] Damascus —") and read as plain text.
* anything else — plain text: the whole text, unchanged, is one item whose ``content`` it is,
  so ``--format jsonl`` offsets index exactly the text that was read (no newline translation).
  Its id is ``stdin``, or the file's name (without its folder) for ``--input FILE``.

Why the first character and not "does the first line parse": a JSON Lines file whose first
line is broken must be reported, not silently matched as one big text item; and prose almost
never opens with ``{``.

An item without an ``id`` (missing, null or empty) gets the 1-based line of the input where it
starts as its id ("3"), so a hand-made file needs no ids and a match still points at its line.
An entry that is not a JSON object is reported (``NAME:LINE: skipped: …``) and skipped.

Exit status: 0; with ``--fail-on-match``, 1 when anything matched and 0 when nothing did (as
``grep``, so a script can ``if monitor match --fail-on-match …``); 2 for unreadable input.
Invalid watchlists exit 1 as in every command, so a script using ``--fail-on-match`` should
run ``monitor check`` first (or read stderr) to tell the two apart.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from monitor.commands.common import EXIT_OK, EXIT_SERVICE, EXIT_USAGE
from monitor.errors import ConfigError, MonitorError
from monitor.models import Item

log = logging.getLogger("monitor")

EXIT_MATCHED = 1  # --fail-on-match: something matched
STDIN_ID = "stdin"
_ARRAY_START = re.compile(r"\[\s*[{\]]")
_JSON_WS = " \t\n\r"


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
    # Parsed in full before the first match is printed, so an input error never leaves a
    # half-written output behind.
    items = _feed_items(args.feed) if args.feed else _read_items(args.input)
    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
    out = sys.stdout
    matched = False
    for item in items:
        hits = matcher.match(item)
        matches = [m for hit in hits for m in hit.matches]
        matched = matched or bool(matches)
        if args.format == "jsonl":
            for m in matches:
                out.write(json.dumps(m.to_json(item.id), ensure_ascii=False) + "\n")
        elif matches:
            out.write(render_text(item, matches, color) + "\n")
    out.flush()
    return EXIT_MATCHED if matched and args.fail_on_match else EXIT_OK


def _read_items(name: str) -> list[Item]:
    """The items of ``--input NAME`` (``-``: stdin); see the module docstring."""
    label = STDIN_ID if name == "-" else name
    plain_id = STDIN_ID if name == "-" else Path(name).name
    return list(parse_input(_read_text(name, label), label, plain_id))


def _read_text(name: str, label: str) -> str:
    """The input as text, bytes untranslated (offsets must index what was given)."""
    try:
        if name == "-":
            buffer = getattr(sys.stdin, "buffer", None)
            data = buffer.read() if buffer is not None else sys.stdin.read().encode()
        else:
            data = Path(name).read_bytes()
    except OSError as exc:
        print(f"monitor: cannot read {label}: {exc.strerror or exc}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        print(f"{label}: not UTF-8 at byte {exc.start}; undecodable bytes read as U+FFFD",
              file=sys.stderr)
        return data.decode("utf-8-sig", errors="replace")


def parse_input(text: str, label: str, plain_id: str) -> Iterator[Item]:
    """Items from ``text``: JSON (array, one object or JSON Lines) or plain text.

    ``label`` names the input in messages on stderr; ``plain_id`` is the id of the single
    item plain text becomes. Raises SystemExit(2) for a broken JSON array.
    """
    stripped = text.lstrip()
    if not stripped:
        return
    first = stripped[0]
    if first not in "{[":
        yield Item.from_dict({"id": plain_id, "content": text})
        return
    try:
        whole: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        if first == "{":
            rows = _json_lines(text, label)
        elif _ARRAY_START.match(stripped):
            print(f"{label}:{exc.lineno}: not JSON: {exc.msg} at column {exc.colno}",
                  file=sys.stderr)
            raise SystemExit(EXIT_USAGE) from None
        else:
            yield Item.from_dict({"id": plain_id, "content": text})
            return
    else:
        start = len(text) - len(stripped)
        rows = _array_rows(text, start) if isinstance(whole, list) else iter(
            [(_line_of(text, start), whole)])
    for line, row in rows:
        if not isinstance(row, dict):
            print(f"{label}:{line}: skipped: an item must be a JSON object", file=sys.stderr)
            continue
        if row.get("id") is None or str(row["id"]) == "":
            row = {**row, "id": str(line)}
        yield Item.from_dict(row)


def _json_lines(text: str, label: str) -> Iterator[tuple[int, Any]]:
    """(line, value) of each non-blank line; broken lines reported and skipped. Split on
    "\\n" only: JSON strings may hold U+2028 and other characters ``splitlines`` breaks on."""
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            yield n, json.loads(line)
        except json.JSONDecodeError as exc:
            print(f"{label}:{n}: not JSON: {exc.msg} at column {exc.colno}", file=sys.stderr)


def _array_rows(text: str, start: int) -> Iterator[tuple[int, Any]]:
    """(line where it starts, value) of each element of the JSON array at ``text[start]``.
    ``text`` is known to be valid JSON, so this walk only records positions."""
    decoder = json.JSONDecoder()
    pos = _skip_ws(text, start + 1)
    if text[pos] == "]":
        return
    while True:
        value, end = decoder.raw_decode(text, pos)
        yield _line_of(text, pos), value
        pos = _skip_ws(text, end)
        if text[pos] != ",":
            return
        pos = _skip_ws(text, pos + 1)


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _JSON_WS:
        pos += 1
    return pos


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


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
