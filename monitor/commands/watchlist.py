"""``monitor watchlist import``: a reviewable rules/NAME.yaml from a CSV or from
OpenSanctions / FollowTheMoney entities.

The readers (``monitor/importers.py``) decide what becomes a term; this module writes the
file an analyst reviews before it goes live:

* a header comment that says where the list came from, when, and what happened to every
  row (read, imported, merged, skipped and why), because a 10,000-name file is reviewed by
  reading its summary, not its terms;
* YAML written by ruamel.yaml, with every string that a YAML reader could take for
  something else quoted — ``NO``, ``yes`` and ``on`` are booleans to YAML 1.1 readers
  (PyYAML, many editors' tools), though not to monitor's own loader — so the file means the
  same to every tool that reads it;
* only a file that loads back through ``load_watchlist`` to exactly the imported terms, that
  is under the size the loader reads, and that replaces an existing file only with
  ``--force``. It is written to a hidden temporary file first and renamed into place: the
  daemon reloads rules/ within seconds and must never see half a file.

Exit status: 0 written; 1 the source cannot be read or holds no usable row, or the output
exists (without ``--force``) or could not be written; 2 bad usage (a flag that does not fit
the source, a column that does not exist).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.representer import RoundTripRepresenter
from ruamel.yaml.resolver import VersionedResolver

from monitor.commands.common import EXIT_INVALID, EXIT_OK, EXIT_USAGE
from monitor.errors import ConfigError
from monitor.importers import (
    Candidate,
    CsvOptions,
    ImportedTerm,
    ImportReport,
    ImportUsageError,
    SourceUnreadable,
    collect,
    default_id,
    read_csv,
    read_ftm,
)
from monitor.yamlfile import MAX_YAML_BYTES

CSV_SUFFIXES = (".csv", ".tsv", ".txt")
FTM_SUFFIXES = (".json", ".jsonl", ".ndjson", ".ftm")
_CSV_FLAGS = ("name_column", "aliases_column", "kind_column", "id_column", "kind",
              "delimiter", "alias_separator")
_STR_TAG = "tag:yaml.org,2002:str"
_YAML11 = VersionedResolver(version=(1, 1))
_YAML12 = VersionedResolver(version=(1, 2))


class UsageProblem(Exception):
    """A command-line mistake found after parsing: exit 2."""


class NotLoadable(Exception):
    """The rendered file does not load back to the imported terms (a bug in the importer,
    never the source's fault): nothing is written."""


def cmd_import(args: argparse.Namespace) -> int:
    try:
        return _import(args)
    except (UsageProblem, ImportUsageError) as exc:
        print(f"monitor watchlist import: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SourceUnreadable as exc:
        print(f"monitor watchlist import: {exc}", file=sys.stderr)
        return EXIT_INVALID


def _import(args: argparse.Namespace) -> int:
    source: Path = args.source
    fmt = args.format or guess_format(source)
    _check_flags(args, fmt)
    name = args.name if args.name is not None else default_name(source)
    _check_name(name)
    out: Path = args.out or Path("rules") / f"{name}.yaml"
    if out.exists() and not args.force:
        print(f"monitor watchlist import: {out} exists; nothing written (--force replaces it)",
              file=sys.stderr)
        return EXIT_INVALID
    candidates: list[Candidate]
    if fmt == "csv":
        candidates, report = read_csv(source, _csv_options(args))
    else:
        candidates, report = read_ftm(source, weak_aliases=args.weak_aliases)
    terms = collect(candidates, report)
    lines = report.lines()
    if not terms:
        for line in lines:
            print(line, file=sys.stderr)
        print(f"monitor watchlist import: {source}: no usable {report.unit} "
              f"({report.read:,} read); nothing written", file=sys.stderr)
        return EXIT_INVALID
    text = render(name, terms, report, out, datetime.now(UTC))
    size = len(text.encode("utf-8"))
    if size > MAX_YAML_BYTES:
        print(f"monitor watchlist import: the watchlist would be {size:,} bytes and monitor "
              f"reads watchlists of at most {MAX_YAML_BYTES:,}; nothing written. Import a part "
              f"of {source} at a time (for example one kind or one dataset per watchlist)",
              file=sys.stderr)
        return EXIT_INVALID
    try:
        write_checked(out, text, terms, force=args.force)
    except FileExistsError:
        print(f"monitor watchlist import: {out} exists; nothing written (--force replaces it)",
              file=sys.stderr)
        return EXIT_INVALID
    except OSError as exc:
        print(f"monitor watchlist import: cannot write {out}: {exc.strerror or exc}",
              file=sys.stderr)
        return EXIT_INVALID
    except NotLoadable as exc:
        print(f"monitor watchlist import: nothing written: {exc}", file=sys.stderr)
        return EXIT_INVALID
    for line in lines:
        print(line)
    print(f"wrote {out}: watchlist {name!r}, {len(terms):,} term(s). Review it, then "
          f"`monitor check --rules {out}`")
    return EXIT_OK


# ---------------------------------------------------------------- usage

def guess_format(source: Path) -> str:
    """From the extension, else from the first non-blank character (``{`` opens an entity)."""
    suffix = source.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in FTM_SUFFIXES:
        return "ftm"
    try:
        with source.open("rb") as fh:
            head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    except OSError:
        return "csv"  # the reader reports the file
    return "ftm" if head.startswith(b"{") else "csv"


def default_name(source: Path) -> str:
    from monitor.engine.watchlist import slug

    return slug(source.stem)


def _check_name(name: str) -> None:
    if not name.strip() or "/" in name or "\\" in name or name.startswith("."):
        raise UsageProblem(f"--name {name!r}: a watchlist name is also its file's name: "
                           "letters, digits and dashes, not starting with '.'")


def _check_flags(args: argparse.Namespace, fmt: str) -> None:
    if fmt == "ftm":
        given = [f"--{f.replace('_', '-')}" for f in _CSV_FLAGS if getattr(args, f) is not None]
        if given:
            raise UsageProblem(f"{', '.join(given)}: only for a CSV; FollowTheMoney entities "
                               "name their own kind (schema) and names")
    elif args.weak_aliases:
        raise UsageProblem("--weak-aliases: only for FollowTheMoney entities")
    if args.delimiter is not None and len(_delimiter(args.delimiter)) != 1:
        raise UsageProblem(f"--delimiter {args.delimiter!r}: one character (or 'tab')")
    if args.alias_separator is not None and not args.alias_separator:
        raise UsageProblem("--alias-separator: must not be empty")


def _delimiter(value: str) -> str:
    return "\t" if value in ("tab", "\\t") else value


def _csv_options(args: argparse.Namespace) -> CsvOptions:
    options = CsvOptions(name_column=args.name_column, aliases_column=args.aliases_column,
                         kind_column=args.kind_column, id_column=args.id_column,
                         kind=args.kind)
    if args.delimiter is not None:
        options.delimiter = _delimiter(args.delimiter)
    if args.alias_separator is not None:
        options.alias_separators = (args.alias_separator,)
    return options


# ---------------------------------------------------------------- the file

class _Representer(RoundTripRepresenter):
    """Quotes a string whenever a YAML 1.1 or 1.2 reader would resolve it as anything but a
    string (``NO``, ``yes``, ``on``, ``~``, ``1e3``, ``12:30``); ruamel.yaml itself quotes
    indicators (``*``, ``&``, ``#``, ``: ``) and what YAML 1.2 would mis-read."""

    def represent_str(self, data: str) -> Any:
        if any(r.resolve(ScalarNode, data, (True, False)) != _STR_TAG
               for r in (_YAML11, _YAML12)):
            return self.represent_scalar(_STR_TAG, data, style="'")
        return super().represent_str(data)


_Representer.add_representer(str, _Representer.represent_str)


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.Representer = _Representer
    yaml.width = 4096  # never fold a long name across lines
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.allow_unicode = True
    return yaml


def render(name: str, terms: list[ImportedTerm], report: ImportReport, out: Path,
           when: datetime) -> str:
    """The watchlist file: the header comment, then the watchlist (see DESIGN.md)."""
    header = [
        f"Imported by `monitor watchlist import` from {report.source}",
        f"on {when.strftime('%Y-%m-%d %H:%M:%S')} UTC.",
        *report.lines(),
        "Terms are sorted by name; an id that is not the name's slug comes from the source.",
        f"Review before it goes live: `monitor check --rules {out}`.",
    ]
    root = CommentedMap()
    root["watchlist"] = name
    root["description"] = f"Imported from {Path(report.source).name}"
    root["severity"] = "medium"
    seq = CommentedSeq()
    for term in terms:
        entry = CommentedMap()
        if term.id != default_id(term.name):
            entry["id"] = term.id
        entry["name"] = term.name
        if term.aliases:
            entry["aliases"] = CommentedSeq(term.aliases)
        entry["kind"] = term.kind
        seq.append(entry)
    root["terms"] = seq
    buf = io.StringIO()
    _yaml().dump(root, buf)
    return "".join(f"# {_comment_safe(line)}\n" for line in header) + buf.getvalue()


def _comment_safe(text: str) -> str:
    """A header line can carry text from the source (a kind value, a schema, a path): no
    character in it may end the comment and start YAML."""
    return "".join(" " if c in "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029" or ord(c) < 32
                   else c for c in text)


def write_checked(out: Path, text: str, terms: list[ImportedTerm], *, force: bool) -> None:
    """Write ``text`` to ``out`` only if it loads back to ``terms``.

    Raises:
        FileExistsError: ``out`` appeared meanwhile and ``force`` is off.
        OSError: the file cannot be written.
        NotLoadable: the text does not load back to ``terms``.
    """
    from monitor.engine.watchlist import load_watchlist

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.import-{os.getpid()}")  # ignored by the rules loader
    try:
        tmp.write_text(text, encoding="utf-8")
        try:
            loaded = load_watchlist(tmp)
        except ConfigError as exc:
            raise NotLoadable("the watchlist does not load back (please report this):\n"
                              + "\n".join(map(str, exc.problems))) from None
        got = [(t.id, t.name, list(t.aliases), t.kind) for t in loaded.terms]
        want = [(t.id, t.name, t.aliases, t.kind) for t in terms]
        if got != want:
            raise NotLoadable("the watchlist loads back to other terms than were imported "
                              "(please report this)")
        if force:
            os.replace(tmp, out)
        else:
            _link(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def _link(tmp: Path, out: Path) -> None:
    """Put ``tmp`` in place only if ``out`` does not exist, even if it appeared meanwhile."""
    try:
        os.link(tmp, out)  # atomic, and fails if the file exists
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links
        if out.exists():
            raise FileExistsError(str(out)) from None
        os.replace(tmp, out)
