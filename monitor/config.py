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
from typing import Annotated, Any, Literal
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
    model_validator,
)

from monitor.errors import ConfigError, Problem
from monitor.install import install_hint
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
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    type: Literal["rss", "json", "gdelt"] = "rss"
    url: str = Field(min_length=1)
    interval: Duration = 300.0
    jitter: Annotated[float, BeforeValidator(parse_duration), Field(ge=0)] | None = None
    enabled: bool = True
    max_items: int = Field(default=500, ge=1, le=50_000)
    items: str | None = None  # json: JMESPath to the list of items (gdelt: preset)
    fields: dict[str, str] | None = None  # json: Item field -> JMESPath
    title: str | None = Field(default=None, min_length=1, max_length=200)  # shown in alerts
    backfill: Backfill | None = None  # first poll: None -> first_poll.backfill

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        problem = url_problem(value, schemes=("http", "https", "file"))
        if problem:
            raise ValueError(f"the feed URL {problem}")
        return value

    @model_validator(mode="after")
    def _check(self) -> SourceConfig:
        if self.type == "json" and (not self.items or not self.fields):
            raise ValueError("a json source needs 'items' (JMESPath to the list) and 'fields'")
        return self

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
    backend: Literal["sqlite", "kafka"] = "sqlite"
    path: str = "data/queue.db"
    bootstrap_servers: str | None = None
    topic_prefix: str = "monitor"


class StoreConfig(_Strict):
    url: str = "sqlite:///data/monitor.db"
    durability: Literal["normal", "full"] = "normal"


class RulesConfig(_Strict):
    paths: list[str] = Field(default_factory=lambda: ["rules/"])
    reload_interval: Duration = 2.0


class NotifierConfig(_Strict):
    name: str = Field(min_length=1)
    type: Literal["console", "slack"]
    webhook_url: SecretStr | None = None
    token: SecretStr | None = None
    channel: str | None = None
    api_url: str = "https://slack.com/api/"
    timeout: Duration = 10.0
    rate_per_second: float = Field(default=1.0, gt=0)
    burst: int = Field(default=3, ge=1)

    def secret(self, name: str) -> str:
        value = getattr(self, name)
        return value.get_secret_value() if value is not None else ""


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
    sources: list[SourceConfig] = Field(default_factory=list)
    first_poll: FirstPollConfig = FirstPollConfig()
    fetch: FetchConfig = FetchConfig()
    queue: QueueConfig = QueueConfig()
    store: StoreConfig = StoreConfig()
    rules: RulesConfig = RulesConfig()
    notifiers: list[NotifierConfig] = Field(
        default_factory=lambda: [NotifierConfig(name="console", type="console")]
    )
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
    control; warn loudly, naming where, never echoing the value."""
    out = []
    for i, notifier in enumerate(root.get("notifiers") or []):
        if not isinstance(notifier, dict):
            continue
        for key in ("token", "webhook_url"):
            value = notifier.get(key)
            if isinstance(value, str) and value and "${" not in value:
                line, col = position(root, ["notifiers", i, key])
                out.append(Problem(name, line, col, f"warning: notifiers[{i}].{key}: a secret "
                                   "is written in the file; use ${SLACK_BOT_TOKEN} or "
                                   "${SLACK_WEBHOOK_URL} from the environment"))
    return out


def _cross_check(config: Config, root: Any, name: str, interp: Interpolation) -> list[Problem]:
    """Problems that span fields or need the interpolation's record."""

    def at(*loc: int | str) -> tuple[str, int, int]:
        return (name, *position(root, list(loc)))

    problems = _duplicate_names(config, at)
    for i, n in enumerate(config.notifiers):
        if n.type != "slack":
            continue
        if n.secret("token") and not n.channel:
            problems.append(Problem(*at("notifiers", i), f"notifiers[{i}]: a Slack token "
                                    "needs a 'channel'"))
        if n.secret("token") and url_problem(n.api_url):
            problems.append(Problem(*at("notifiers", i, "api_url"), f"notifiers[{i}].api_url: "
                                    f"must be the Slack API's http(s) URL: it "
                                    f"{url_problem(n.api_url)} (got {n.api_url!r})"))
        hook = n.secret("webhook_url")
        if hook and url_problem(hook):
            problems.append(Problem(*at("notifiers", i, "webhook_url"),
                                    f"notifiers[{i}].webhook_url: not a usable webhook URL: it "
                                    f"{url_problem(hook)} (the value is secret and not shown)"))
    if config.queue.backend == "kafka":
        problems.append(Problem(*at("queue", "backend"), "queue.backend: 'kafka' is not "
                                "available in this version yet; use 'sqlite'"))
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
