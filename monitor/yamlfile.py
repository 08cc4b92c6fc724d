"""Safe YAML reading with positions, so every problem is reported as ``file:line:col``.

ruamel.yaml (YAML 1.2) rejects duplicate keys and keeps ``NO`` a string (PyYAML does
neither). A document is built by libyaml's C parser; its round-trip parser, which keeps
each node's line and column, runs only when a problem needs placing (``Located``).
Before constructing anything the event stream is screened: aliases (the "billion laughs"
of YAML) and explicit tags such as ``!!python/object/apply`` are refused outright, and
files over 1 MiB are not read.
"""

from __future__ import annotations

import difflib
import io
import os
import re
import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Protocol, Union, get_args, get_origin, runtime_checkable

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent, NodeEvent

from monitor.errors import ConfigError, Problem

MAX_YAML_BYTES = 1024 * 1024
_STANDARD_TAG = re.compile(r"^tag:yaml\.org,2002:(str|int|float|bool|null|map|seq)$")


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    return yaml


def read_yaml(path: Path, *, max_bytes: int = MAX_YAML_BYTES) -> Any:
    """Load one YAML document; raise ConfigError with a positioned Problem on any error."""
    name = str(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            message = f"file is {size} bytes; the limit is {max_bytes}"
            raise ConfigError([Problem(name, 1, 1, message)])
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([Problem(name, 1, 1, f"not UTF-8 text: {exc.reason}")]) from exc
    except OSError as exc:
        raise ConfigError([Problem(name, 1, 1, f"cannot read: {exc.strerror or exc}")]) from exc
    return parse_yaml(text, name)


class Located(dict[str, Any]):
    """A document's top-level mapping, built by the fast loader, that can still say where
    each of its nodes was written. Positions are wanted only when something is wrong, so
    the round-trip parse that knows them (pure Python: 7 s for a 10,000-term watchlist,
    against 0.3 s for libyaml) runs then, once, from the text kept here."""

    def __init__(self, data: dict[str, Any], text: str, name: str) -> None:
        super().__init__(data)
        self.text, self.name = text, name
        self._tree: Any = None

    def tree(self) -> Any:
        """The same document as round-trip nodes, which carry line and column."""
        if self._tree is None:
            self._tree = _yaml().load(self.text)
        return self._tree


def parse_yaml(text: str, name: str) -> Any:
    """The document, as plain values; its top-level mapping is ``Located``. libyaml's C
    parser builds it when ruamel.yaml.clib is installed; a document it refuses, and every
    error, go through the round-trip parser, so a problem reads the same either way."""
    try:
        _screen(_C_PARSER, text, name)
        data = _fast_loader().load(text)  # one per call: a loader holds its parse's state
    except ConfigError:
        raise
    except YAMLError:
        return _parse_round_trip(text, name)
    return Located(data, text, name) if isinstance(data, dict) else data


def _fast_loader() -> YAML:
    yaml = YAML(typ="safe", pure=False)
    yaml.allow_duplicate_keys = False
    return yaml



def _parse_round_trip(text: str, name: str) -> Any:
    yaml = _yaml()
    try:
        _screen_events(yaml, text, name)
        return yaml.load(text)
    except ConfigError:
        raise
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        tab = _tab_position(text, line, message)
        if tab is not None:
            line, col = tab
            message = "tabs are not allowed in YAML; indent with spaces"
        raise ConfigError([Problem(name, line, col, f"YAML syntax: {message}")]) from None
    except YAMLError as exc:
        raise ConfigError([Problem(name, 1, 1, f"YAML: {exc}")]) from None


def _tab_position(text: str, line: int, message: str) -> tuple[int, int] | None:
    """Where a tab caused a syntax error: the parser's own words for it ("found character
    '\\t' that cannot start any token") are cryptic, and an editor that inserts tabs is the
    usual cause. Looks at the error line and the line before it."""
    lines = text.splitlines()
    for n in (line, line - 1):
        if 1 <= n <= len(lines):
            indent = lines[n - 1][: len(lines[n - 1]) - len(lines[n - 1].lstrip(" \t"))]
            if "\t" in indent:
                return n, indent.index("\t") + 1
    if "'\\t'" in message or "\t" in message:
        return line, max(1, lines[line - 1].find("\t") + 1) if 1 <= line <= len(lines) else 1
    return None


def _screen_events(yaml: YAML, text: str, name: str) -> None:
    """Refuse anchors, aliases and non-standard tags before anything is built. The events
    come from libyaml's C parser when ruamel.yaml.clib is installed (a 10,000-term
    watchlist: 0.07 s instead of 2.4 s); a document it cannot parse is screened again by
    the round-trip parser, so a syntax error reads the same either way."""
    try:
        _screen(_C_PARSER, text, name)
    except YAMLError:
        _screen(yaml, text, name)


_C_PARSER = YAML(typ="safe", pure=False)


def _screen(yaml: YAML, text: str, name: str) -> None:
    for event in yaml.parse(io.StringIO(text)):
        mark = event.start_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        if isinstance(event, AliasEvent) or (isinstance(event, NodeEvent) and event.anchor):
            message = "YAML anchors and aliases are not allowed"
            raise ConfigError([Problem(name, line, col, message)])
        tag = getattr(event, "tag", None)
        if tag and not _STANDARD_TAG.match(str(tag)):
            raise ConfigError([Problem(name, line, col, f"YAML tag {tag!r} is not allowed")])


def to_plain(node: Any) -> Any:
    """Round-trip containers -> plain dicts and lists (pydantic validates these strictly)."""
    if isinstance(node, dict):
        return {str(k): to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    return node


def position(root: Any, loc: Sequence[int | str]) -> tuple[int, int]:
    """Line and column (1-based) of the deepest node on ``loc`` that exists in ``root``."""
    line, col = 1, 1
    node = root.tree() if isinstance(root, Located) else root
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            line, col = node.lc.key(part)
            line, col = line + 1, col + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line, col = node.lc.item(part)
            line, col = line + 1, col + 1
            node = node[part]
        else:
            if isinstance(node, CommentedMap | CommentedSeq):
                line, col = node.lc.line + 1, node.lc.col + 1
            break
    return line, col


def format_loc(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def validation_problems(
    name: str, root: Any, exc: ValidationError, model: type[BaseModel] | None = None
) -> list[Problem]:
    """One Problem per pydantic error, placed at the node it refers to, in words an analyst
    reads: no pydantic class names, no "Value error," prefixes, "did you mean" for a
    mistyped key when ``model`` (the root model) is given."""
    problems = []
    for err in exc.errors(include_url=False):
        loc, _, _ = _walk(model, err["loc"], root)
        line, col = position(root, loc)
        message = _message(err, loc, [])
        if model is not None and err["type"] == "extra_forbidden" and loc:
            _, parent, tagged = _walk(model, err["loc"][:-1], root)
            hint = tagged[0].elsewhere(tagged[1], str(loc[-1])) if tagged else None
            message = _message(err, loc, _fields_of(parent)) if hint is None \
                else f"unknown field {hint}"
        problems.append(Problem(name, line, col, f"{format_loc(loc)}: {message}"))
    return problems


# Parts pydantic adds to a location that are not in the user's YAML: validator and union
# member names such as ``function-after[...]``, ``str``, ``float``, ``list[...]``.
_INTERNAL_LOC = re.compile(r"^(function-\w+\[.*\]|[a-z_]+\[.*\]|str|int|float|bool|none|"
                           r"list|dict|tagged-union\[.*\]|lax-or-strict\[.*\]|json-or-python\[.*\])$")


@runtime_checkable
class TaggedUnion(Protocol):
    """``Annotated`` metadata of a field whose value is validated as a union tagged by a
    key (``monitor.registry.Registry``: ``type: rss``). pydantic puts the tag in an error's
    location right after the entry (``sources.0.rss.interval``), though the YAML has no
    such key: ``tag_of`` says which tag the entry ``data`` has, ``variant`` which model it
    selects (for "did you mean" among that model's own fields), ``elsewhere`` whether an
    unknown key is another tag's field (``items`` on an entry that forgot ``type: json``).
    """

    def tag_of(self, data: Any) -> str | None: ...

    def variant(self, tag: str) -> type[BaseModel] | None: ...

    def elsewhere(self, tag: str, key: str) -> str | None: ...


def _walk(model: Any, loc: Sequence[int | str], root: Any
          ) -> tuple[list[int | str], Any, tuple[TaggedUnion, str] | None]:
    """Follow pydantic's ``loc`` through ``model`` and the YAML ``root`` together: the
    location as the user wrote it (validator names and union tags dropped), the annotation
    found at its end (``Any`` where the model does not tell) and, when that is a tagged
    union's member, the union and the tag."""
    current: Any = model if model is not None else Any
    node = root
    out: list[int | str] = []
    tagged: tuple[TaggedUnion, str] | None = None
    for part in loc:
        current, union = _unwrap_tagged(current)
        if union is not None and isinstance(part, str) and part == union.tag_of(node):
            current, tagged = union.variant(part) or Any, (union, part)
            continue
        if isinstance(part, str) and _INTERNAL_LOC.match(part):
            continue
        out.append(part)
        node = _child(node, part)
        current, tagged = _step(current, part), None
    return out, current, tagged


def _child(node: Any, part: int | str) -> Any:
    if isinstance(node, dict):
        return node.get(part)
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return None


def _step(annotation: Any, part: int | str) -> Any:
    current = _unwrap(annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        info = current.model_fields.get(str(part))
        return info.annotation if info is not None else Any
    if get_origin(current) in (list, tuple, dict):
        args = get_args(current)
        return args[-1] if args else Any
    return Any


def _unwrap_tagged(annotation: Any) -> tuple[Any, TaggedUnion | None]:
    """``Annotated[X, <TaggedUnion>]`` -> (X, the union); anything else -> (it, None)."""
    if get_origin(annotation) is Annotated:
        args = get_args(annotation)
        for meta in args[1:]:
            if isinstance(meta, TaggedUnion):
                return args[0], meta
    return annotation, None


_FRIENDLY = {
    "model_type": "expected a mapping of keys to values",
    "model_attributes_type": "expected a mapping of keys to values",
    "dict_type": "expected a mapping of keys to values",
    "list_type": "expected a list",
    "missing": "required field is missing",
    "string_type": "expected text",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
}
_PREFIXES = ("Value error, ", "Assertion failed, ")
_CLASS_NAME = re.compile(r"\b(?:instance of )?[A-Z][A-Za-z]*(?:Config|Spec|Model|Options)\b")


def _message(err: Any, loc: list[int | str], known: list[str]) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown field" + _did_you_mean(loc, known)
    msg = _FRIENDLY.get(kind) or str(err["msg"])
    for prefix in _PREFIXES:
        msg = msg.removeprefix(prefix)
    msg = _CLASS_NAME.sub("a mapping", msg)
    got = err.get("input")
    if kind not in ("missing",) and isinstance(got, str | int | float) and not \
            isinstance(got, bool) and len(str(got)) <= 200:
        msg += f" (got {got!r})"
    return msg


def _did_you_mean(loc: list[int | str], known: list[str]) -> str:
    if not loc or not isinstance(loc[-1], str):
        return ""
    close = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f" (known: {', '.join(known)})" if known and len(known) <= 12 else ""


def known_fields(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """The keys the model accepts at ``loc`` (list indices and dict keys are walked
    through), or [] when ``loc`` does not lead to a model."""
    return _fields_of(_walk(model, loc, None)[1])


def _fields_of(annotation: Any) -> list[str]:
    current = _unwrap(annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    """``X | None`` -> X; ``Annotated[X, ...]`` -> X; a union of models -> the first."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            members = [a for a in get_args(annotation) if a is not type(None)]
            annotation = members[0] if members else Any
        else:
            return annotation


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass
class Interpolation:
    """What ``interpolate`` did: the problems (``${VAR}`` with VAR unset and no default)
    and, per location, the variables a value was built from, so a later message can name
    the variable an operator has to set (``SLACK_BOT_TOKEN is empty``)."""

    problems: list[Problem] = field(default_factory=list)
    refs: dict[tuple[int | str, ...], list[str]] = field(default_factory=dict)
    empty: dict[tuple[int | str, ...], list[str]] = field(default_factory=dict)
    unset: dict[tuple[int | str, ...], list[str]] = field(default_factory=dict)
    absent: dict[tuple[int | str, ...], list[str]] = field(default_factory=dict)  # not in env

    def vars_at(self, *loc: int | str) -> list[str]:
        return self.refs.get(tuple(loc), [])

    def empty_at(self, *loc: int | str) -> list[str]:
        """Variables used at ``loc`` that came out empty (unset, or set to '')."""
        return self.empty.get(tuple(loc), [])


def interpolate(
    node: Any,
    environ: os._Environ[str] | dict[str, str] | None = None,
    name: str = "",
    *,
    require: bool = True,
) -> Interpolation:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string scalar, in place on
    round-trip containers so positions survive.

    ``${VAR}`` with VAR unset is a problem at the value's ``file:line:col`` (a typo in a
    variable name must not quietly switch a notifier off); ``${VAR:-}`` is an optional
    value that may come out empty. A variable set to the empty string counts as set.
    ``require=False`` records unset variables instead (``monitor status`` run from a shell
    that does not hold the daemon's secrets).
    """
    env = os.environ if environ is None else environ
    out = Interpolation()
    _interpolate(node, env, name, (), out, None, require)
    return out


def _interpolate(node: Any, env: os._Environ[str] | dict[str, str], name: str,
                 loc: tuple[int | str, ...], out: Interpolation,
                 where: tuple[int, int] | None, require: bool) -> Any:
    if isinstance(node, CommentedMap | CommentedSeq | dict | list):
        keys = list(node.keys()) if isinstance(node, dict) else list(range(len(node)))
        for key in keys:
            at = _value_mark(node, key)
            node[key] = _interpolate(node[key], env, name, (*loc, key), out, at, require)
        return node
    if not isinstance(node, str) or "${" not in node:
        return node
    line, col = where or (1, 1)

    def sub(m: re.Match[str]) -> str:
        var, default = m.group(1), m.group(2)
        out.refs.setdefault(loc, []).append(var)
        value = env.get(var)
        if value is None:
            out.absent.setdefault(loc, []).append(var)
        if value is None and default is None:
            out.unset.setdefault(loc, []).append(var)
            if require:
                out.problems.append(Problem(name, line, col, f"{format_loc(loc)}: environment "
                                            f"variable {var} is not set (write ${{{var}:-}} "
                                            "if it is optional)"))
            value = ""
        if value is None or (value == "" and default is not None):
            value = default or ""
        if value == "":
            out.empty.setdefault(loc, []).append(var)
        return value

    return _VAR.sub(sub, node)


def _value_mark(node: Any, key: Any) -> tuple[int, int] | None:
    """1-based line and column of a mapping value or sequence item, if known."""
    try:
        if isinstance(node, CommentedMap):
            line, col = node.lc.value(key)
        elif isinstance(node, CommentedSeq):
            line, col = node.lc.item(key)
        else:
            return None
    except (KeyError, IndexError, TypeError):
        return None
    return line + 1, col + 1
