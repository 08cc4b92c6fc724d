"""config.yaml -> a typed, frozen Config. Every problem is collected and reported once.

Relative paths (queue file, SQLite store, rules folders, ``file://`` feeds) are resolved
against the folder of the config file, so ``monitor run --config /srv/x/config.yaml``
behaves the same from any working directory. Secrets (Slack token and webhook URL) are
``SecretStr``: they never show in ``repr``, logs or error messages.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

from monitor.errors import ConfigError, Problem
from monitor.yamlfile import interpolate, position, read_yaml, to_plain, validation_problems

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

    @model_validator(mode="after")
    def _check(self) -> SourceConfig:
        scheme = self.url.split(":", 1)[0].lower()
        if scheme not in ("http", "https", "file"):
            raise ValueError(f"url must be http://, https:// or file:// (got {scheme}:)")
        if self.type == "json" and (not self.items or not self.fields):
            raise ValueError("a json source needs 'items' (JMESPath to the list) and 'fields'")
        return self

    @property
    def jitter_seconds(self) -> float:
        return self.jitter if self.jitter is not None else min(self.interval * 0.1, 60.0)


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


def load_config(path: Path, environ: dict[str, str] | None = None) -> Config:
    """Read, interpolate and validate config.yaml.

    Raises:
        ConfigError: every problem, each as ``file:line:col: field: message``.
    """
    name = str(path)
    root = read_yaml(path)
    if root is None:
        root = {}
    if not isinstance(root, dict):
        raise ConfigError([Problem(name, 1, 1, "config must be a mapping")])
    problems = _literal_secret_warnings(root, name)
    interpolate(root, environ)
    data = to_plain(root)
    data["base_dir"] = str(path.resolve().parent)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_problems(name, root, exc)) from None
    problems += _cross_check(config, root, name)
    errors = [p for p in problems if not p.message.startswith("warning:")]
    for p in problems:
        if p not in errors:
            log.warning("%s", p)
    if errors:
        raise ConfigError(errors)
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


def _cross_check(config: Config, root: Any, name: str) -> list[Problem]:
    problems = []
    named = (("sources", [s.name for s in config.sources]),
             ("notifiers", [n.name for n in config.notifiers]))
    for kind, names in named:
        seen: set[str] = set()
        for i, entry in enumerate(names):
            if entry in seen:
                line, col = position(root, [kind, i, "name"])
                problems.append(Problem(name, line, col,
                                        f"{kind}[{i}].name: duplicate name {entry!r}"))
            seen.add(entry)
    for i, n in enumerate(config.notifiers):
        if n.type == "slack" and n.secret("token") and not n.channel:
            line, col = position(root, ["notifiers", i])
            problems.append(Problem(name, line, col,
                                    f"notifiers[{i}]: a Slack token needs a 'channel'"))
    if config.queue.backend == "kafka":
        line, col = position(root, ["queue", "backend"])
        problems.append(Problem(name, line, col, "queue.backend: 'kafka' is not available in "
                                "this version yet; use 'sqlite'"))
    if not config.store.url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        line, col = position(root, ["store", "url"])
        problems.append(Problem(name, line, col, "store.url: expected sqlite:///PATH or "
                                "postgresql://USER@HOST/DB"))
    return problems
