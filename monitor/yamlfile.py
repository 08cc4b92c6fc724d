"""Safe YAML reading with positions, so every problem is reported as ``file:line:col``.

ruamel.yaml's round-trip loader keeps each node's line and column, rejects duplicate keys
and keeps ``NO`` a string (PyYAML does neither). Before constructing anything the event
stream is screened: aliases (the "billion laughs" of YAML) and explicit tags such as
``!!python/object/apply`` are refused outright, and files over 1 MiB are not read.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
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


def parse_yaml(text: str, name: str) -> Any:
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
        raise ConfigError([Problem(name, line, col, f"YAML syntax: {message}")]) from None
    except YAMLError as exc:
        raise ConfigError([Problem(name, 1, 1, f"YAML: {exc}")]) from None


def _screen_events(yaml: YAML, text: str, name: str) -> None:
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
    node = root
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


def validation_problems(name: str, root: Any, exc: ValidationError) -> list[Problem]:
    """One Problem per pydantic error, placed at the node it refers to."""
    problems = []
    for err in exc.errors(include_url=False):
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        line, col = position(root, loc)
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif err["type"] == "missing":
            msg = "required field is missing"
        got = err.get("input")
        detail = ""
        if err["type"] not in ("missing", "extra_forbidden") and isinstance(got, str | int | float):
            detail = f" (got {got!r})"
        problems.append(Problem(name, line, col, f"{format_loc(loc)}: {msg}{detail}"))
    return problems


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate(node: Any, environ: os._Environ[str] | dict[str, str] | None = None) -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string scalar, in place on
    round-trip containers so positions survive. A missing ``${VAR}`` without default
    becomes the empty string (a notifier with an empty secret is switched off)."""
    env = os.environ if environ is None else environ

    def sub(text: str) -> str:
        return _VAR.sub(lambda m: env.get(m.group(1)) or (m.group(2) or ""), text)

    if isinstance(node, dict):
        for key in list(node.keys()):
            node[key] = interpolate(node[key], env)
        return node
    if isinstance(node, list):
        for i, value in enumerate(node):
            node[i] = interpolate(value, env)
        return node
    if isinstance(node, str):
        return sub(node) if "${" in node else node
    return node
