"""config.yaml -> a typed, frozen Config. Every problem is collected and reported once.

Relative paths (queue file, SQLite store, rules folders, ``file://`` feeds) are resolved
against the folder of the config file, so ``monitor run --config /srv/x/config.yaml``
behaves the same from any working directory. Secrets (Slack token and webhook URL) are
``SecretStr``: they never show in ``repr``, logs or error messages.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, cast, get_args
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
)

from monitor.errors import ConfigError, Problem
from monitor.install import install_hint
from monitor.notify.registry import NOTIFIERS
from monitor.registry import UnknownType
from monitor.sources.registry import SOURCES
from monitor.yamlfile import (
    Interpolation,
    format_loc,
    interpolate,
    position,
    read_yaml,
    to_plain,
    validation_problems,
)

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
At = Callable[..., tuple[str, int, int]]  # a location in config.yaml -> (file, line, col)

log = logging.getLogger(__name__)

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")


def parse_duration(value: Any) -> float:
    """``5m`` / ``30s`` / ``1.5h`` / ``2d`` / ``1w`` / a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m, 1h, 7d or 2w")
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError("expected a duration such as 30s, 5m, 1h, 7d or 2w")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def parse_backfill(value: Any) -> float:
    """A first poll's backfill window: a duration, ``0`` (prime everything) or ``all``
    (alert on everything, as before priming existed), which is ``math.inf``."""
    if isinstance(value, str) and value.strip().lower() == "all":
        return math.inf
    try:
        return parse_duration(value)
    except ValueError:
        raise ValueError("expected a duration such as 1h, 0 (prime everything) or 'all' "
                         "(alert on every item)") from None


def format_backfill(seconds: float) -> str:
    """The inverse of ``parse_backfill`` for logs: ``1h``, ``90m``, ``0``, ``all``."""
    if math.isinf(seconds):
        return "all"
    for unit in ("w", "d", "h", "m"):
        if seconds >= _UNITS[unit] and seconds % _UNITS[unit] == 0:
            return f"{int(seconds // _UNITS[unit])}{unit}"
    return f"{seconds:g}s" if seconds else "0"


Duration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
Backfill = Annotated[float, BeforeValidator(parse_backfill), Field(ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfig(_Strict):
    """What every source's options have; each source type extends it with its own
    (``monitor.sources.registry``: ``type`` selects the type's options model)."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    type: str = "rss"
    url: str = Field(min_length=1)
    interval: Duration = 300.0
    jitter: Annotated[float, BeforeValidator(parse_duration), Field(ge=0)] | None = None
    enabled: bool = True
    max_items: int = Field(default=500, ge=1, le=50_000)
    title: str | None = Field(default=None, min_length=1, max_length=200)  # shown in alerts
    backfill: Backfill | None = None  # first poll: None -> first_poll.backfill

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        problem = url_problem(value, schemes=("http", "https", "file"))
        if problem:
            raise ValueError(f"the feed URL {problem}")
        return value

    @property
    def jitter_seconds(self) -> float:
        return self.jitter if self.jitter is not None else min(self.interval * 0.1, 60.0)


def url_problem(url: str, schemes: tuple[str, ...] = ("http", "https")) -> str | None:
    """Why ``url`` is not usable, or None. ``file://`` needs a path; http(s) a host."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return "is not a valid URL"
    names = [f"{s}://" for s in schemes]
    allowed = " or ".join(names) if len(names) < 3 else ", ".join(names[:-1]) + " or " + names[-1]
    if parts.scheme.lower() not in schemes or "://" not in url:
        return f"must start with {allowed}"
    if parts.scheme.lower() == "file":
        return None if parts.path else "needs a path after file://"
    if not parts.hostname:
        return "has no host name"
    return None


class FirstPollConfig(_Strict):
    """A source's first successful poll (no stored state) alerts only on items published
    within ``backfill``; older or undated items are marked seen, so a new install or a new
    source does not flood the channel with the feed's backlog."""

    backfill: Backfill = 3600.0


class LogConfig(_Strict):
    format: Literal["text", "json"] = "text"  # MONITOR_LOG_FORMAT overrides


class FetchConfig(_Strict):
    connect_timeout: Duration = 5.0
    read_timeout: Duration = 10.0
    total_deadline: Duration = 30.0
    max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_redirects: int = Field(default=5, ge=0, le=20)
    allow_private: bool = False
    # Wall time one poll's parse may take in a parser worker before it is stopped.
    parse_budget: Duration = 10.0


class QueueConfig(_Strict):
    """``sqlite``: one file at ``path``. ``kafka``: topics ``<topic_prefix>.items``,
    ``.alerts``, ``.items.retry``, ``.alerts.retry`` and ``.dead`` on ``bootstrap_servers``
    (created with ``partitions`` when missing), groups ``<topic_prefix>-match`` and
    ``-notify``."""

    backend: Literal["sqlite", "kafka"] = "sqlite"
    path: str = "data/queue.db"
    bootstrap_servers: str | None = Field(default=None, validate_default=True)  # host:port,…
    topic_prefix: str = Field(default="monitor", pattern=r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")
    partitions: int = Field(default=3, ge=1, le=1000)
    # How long a call waits for the broker before it counts as unreachable.
    timeout: Duration = 10.0
    # How long a consumer that died keeps its partitions before the group moves them.
    session_timeout: Duration = 10.0

    @field_validator("bootstrap_servers")
    @classmethod
    def _servers(cls, value: str | None, info: Any) -> str | None:  # info: ValidationInfo
        if info.data.get("backend") == "kafka" and not (value or "").strip():
            raise ValueError("backend kafka needs bootstrap_servers (host:port[,host:port])")
        return value


class StoreConfig(_Strict):
    url: str = "sqlite:///data/monitor.db"
    durability: Literal["normal", "full"] = "normal"


class RulesConfig(_Strict):
    paths: list[str] = Field(default_factory=lambda: ["rules/"])
    reload_interval: Duration = 2.0


Loc = tuple[int | str, ...]  # a location inside one config entry: ("api_url",)


class NotifierConfig(_Strict):
    """What every notifier's options have; each notifier type extends it with its own
    (``monitor.notify.registry``: ``type`` selects the type's options model).

    The hooks below have defaults that suit a notifier with no special rules; they are
    what ``monitor.notify.build`` and the config checks ask instead of switching on type.
    """

    name: str = Field(min_length=1)
    type: str

    @classmethod
    def secret_fields(cls) -> list[str]:
        """The ``SecretStr`` fields: never shown, and when they are all empty (an unset
        ``${VAR:-}``) the notifier is off instead of failing."""
        return [name for name, info in cls.model_fields.items()
                if _mentions(info.annotation, SecretStr)]

    def secret(self, name: str) -> str:
        value = getattr(self, name)
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        return "" if value is None else str(value)

    def delivers(self) -> str | None:
        """How it delivers when on (shown by ``check``), or None: off, for want of a
        secret. Default: off when it has secrets and every one is empty."""
        secrets = self.secret_fields()
        if secrets and not any(self.secret(f) for f in secrets):
            return None
        return f"type {self.type}"

    def problems(self) -> list[tuple[Loc, str]]:
        """Problems across fields, found after validation (a secret's value must never be
        echoed, which a field validator's error would do): (location in the entry,
        message)."""
        return []

    def pacing(self) -> tuple[float, int] | None:
        """(messages per second, burst) the outbox keeps to for this destination, or None
        for no pacing."""
        return None


def _console() -> NotifierConfig:
    """The notifier of a config without ``notifiers:``."""
    return cast(NotifierConfig, NOTIFIERS.validate({"name": "console", "type": "console"}))


def _mentions(annotation: Any, kind: type) -> bool:
    return annotation is kind or any(_mentions(a, kind) for a in get_args(annotation))


class DeliveryConfig(_Strict):
    backoff_initial: Duration = 2.0
    backoff_max: Duration = 600.0
    max_age: Duration = 48 * 3600.0
    lease: Duration = 60.0
    drain_timeout: Duration = 300.0  # `run --once`: how long to wait for pending deliveries


class SchedulerConfig(_Strict):
    misfire_grace_time: Duration = 60.0
    backoff_max: Duration = 3600.0
    shutdown_deadline: Duration = 20.0


class ServerConfig(_Strict):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=9108, ge=0, le=65535)
    # /readyz answers 503 when a stage loop has not turned for this long (it turns at least
    # every few seconds when idle, and after every batch or delivery when busy).
    stall_after: Duration = 120.0


class Config(_Strict):
    sources: list[Annotated[SourceConfig, SOURCES]] = Field(default_factory=list)
    first_poll: FirstPollConfig = FirstPollConfig()
    fetch: FetchConfig = FetchConfig()
    queue: QueueConfig = QueueConfig()
    store: StoreConfig = StoreConfig()
    rules: RulesConfig = RulesConfig()
    notifiers: list[Annotated[NotifierConfig, NOTIFIERS]] = Field(
        default_factory=lambda: [_console()])
    delivery: DeliveryConfig = DeliveryConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    server: ServerConfig = ServerConfig()
    log: LogConfig = LogConfig()
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    base_dir: str = "."  # filled in by load_config: the config file's folder
    # Filled in by load_config: "notifiers.1.token" -> the ${VARS} it was built from that
    # came out empty, so a switched-off notifier can name the variable to set.
    _empty_vars: dict[str, list[str]] = PrivateAttr(default_factory=dict)
    # Only with load_config(require_env=False): variables this process does not have.
    _unset_vars: dict[str, list[str]] = PrivateAttr(default_factory=dict)

    def empty_vars(self, *loc: int | str) -> list[str]:
        return self._empty_vars.get(".".join(map(str, loc)), [])

    def unset_vars(self, *loc: int | str) -> list[str]:
        return self._unset_vars.get(".".join(map(str, loc)), [])

    def resolve(self, path: str) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else Path(self.base_dir) / p

    def backfill(self, source: SourceConfig) -> float:
        """Seconds of backlog a source's first poll alerts on (``math.inf``: all)."""
        return source.backfill if source.backfill is not None else self.first_poll.backfill

    @property
    def rule_paths(self) -> list[Path]:
        return [self.resolve(p) for p in self.rules.paths]

    def sqlite_path(self, url: str) -> Path:
        return self.resolve(url.removeprefix("sqlite:///"))


def load_config(path: Path, environ: dict[str, str] | None = None, *,
                require_env: bool = True) -> Config:
    """Read, interpolate and validate config.yaml: the one judgement ``check`` and ``run``
    share. ``require_env=False`` is for commands that only read the store (``status``,
    ``backtest``, ``alerts retry``, ``db upgrade``): an operator's shell rarely holds the
    daemon's secrets, so an unset ``${VAR}`` is recorded, not an error.

    Raises:
        ConfigError: every problem, each as ``file:line:col: field: message``.
    """
    name = str(path)
    root = read_yaml(path)
    if root is None:
        root = {}
    if not isinstance(root, dict):
        raise ConfigError([Problem(name, 1, 1, "config must be a mapping of sections "
                                   "(sources:, notifiers:, …)")])
    warnings = _literal_secret_warnings(root, name)
    interp = interpolate(root, environ, name, require=require_env)
    problems = list(interp.problems)
    data = to_plain(root)
    if "base_dir" in data:  # set below from the file's folder, never by the file
        line, col = position(root, ["base_dir"])
        problems.append(Problem(name, line, col, "base_dir: unknown field"))
    data["base_dir"] = str(path.resolve().parent)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(problems + validation_problems(name, root, exc, Config)) from None
    config._empty_vars = {".".join(map(str, loc)): names for loc, names in interp.empty.items()}
    if not require_env:  # this process may not hold the daemon's environment at all
        config._unset_vars = {".".join(map(str, loc)): names
                              for loc, names in interp.absent.items()}
    problems += _cross_check(config, root, name, interp)
    for w in warnings:
        log.warning("%s", w)
    if problems:
        raise ConfigError(problems)
    return config


def _literal_secret_warnings(root: Any, name: str) -> list[Problem]:
    """A token or webhook written into the file (not ``${VAR}``) leaks through version
    control; warn loudly, naming where, never echoing the value. The secrets are the
    ``SecretStr`` fields of the notifier type's options."""
    out = []
    for i, notifier in enumerate(root.get("notifiers") or []):
        if not isinstance(notifier, dict):
            continue
        try:
            options = NOTIFIERS.options(str(notifier.get("type")))
        except UnknownType:  # reported by validation
            continue
        for key in cast(type[NotifierConfig], options).secret_fields():
            value = notifier.get(key)
            if isinstance(value, str) and value and "${" not in value:
                line, col = position(root, ["notifiers", i, key])
                examples = options.model_fields[key].examples or ["${VARIABLE}"]
                out.append(Problem(name, line, col, f"warning: notifiers[{i}].{key}: a secret "
                                   f"is written in the file; use {examples[0]} from the "
                                   "environment"))
    return out


def _cross_check(config: Config, root: Any, name: str, interp: Interpolation) -> list[Problem]:
    """Problems that span fields or need the interpolation's record."""

    def at(*loc: int | str) -> tuple[str, int, int]:
        return (name, *position(root, list(loc)))

    problems = _duplicate_names(config, at)
    for i, n in enumerate(config.notifiers):
        for loc, message in n.problems():
            problems.append(Problem(*at("notifiers", i, *loc),
                                    f"{format_loc(['notifiers', i, *loc])}: {message}"))
    problems += _store_problems(config, at)
    problems += _path_problems(config, interp, at)
    return problems


def _duplicate_names(config: Config, at: At) -> list[Problem]:
    problems = []
    named = (("sources", [s.name for s in config.sources]),
             ("notifiers", [n.name for n in config.notifiers]))
    for kind, names in named:
        seen: set[str] = set()
        for i, entry in enumerate(names):
            if entry in seen:
                problems.append(Problem(*at(kind, i, "name"),
                                        f"{kind}[{i}].name: duplicate name {entry!r}"))
            seen.add(entry)
    return problems


def _store_problems(config: Config, at: At) -> list[Problem]:
    url = config.store.url
    if url.startswith(POSTGRES_SCHEMES):
        if not _importable("psycopg"):
            return [Problem(*at("store", "url"), "store.url: a PostgreSQL store needs the "
                            f"psycopg driver, which is not installed; run: "
                            f"{install_hint('postgres')}")]
        return []
    if not url.startswith("sqlite:///"):
        return [Problem(*at("store", "url"), "store.url: expected sqlite:///PATH or "
                        "postgresql://USER@HOST/DB")]
    return []


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken or blocked install counts as missing
        return False


def _path_problems(config: Config, interp: Interpolation, at: At) -> list[Problem]:
    """An empty path, or one built from a variable that came out empty, would put the
    databases somewhere nobody meant (an unset ${DATA_DIR} gives /queue.db)."""
    paths: list[tuple[tuple[int | str, ...], str]] = [(("queue", "path"), config.queue.path)]
    if config.store.url.startswith("sqlite:///"):
        paths.append((("store", "url"), config.store.url.removeprefix("sqlite:///")))
    paths += [(("rules", "paths", i), p) for i, p in enumerate(config.rules.paths)]
    problems = []
    for loc, value in paths:
        empty = interp.empty_at(*loc)
        if not value.strip():
            why = f" ({' and '.join(empty)} {'is' if len(empty) == 1 else 'are'} empty)" \
                if empty else ""
            problems.append(Problem(*at(*loc), f"{format_loc(loc)}: the path is empty{why}"))
        elif empty:
            problems.append(Problem(*at(*loc), f"{format_loc(loc)}: the path comes out as "
                                    f"{value!r} because {' and '.join(empty)} "
                                    f"{'is' if len(empty) == 1 else 'are'} empty; set "
                                    f"{'it' if len(empty) == 1 else 'them'} or give a default "
                                    "with ${VAR:-default}"))
    return problems
