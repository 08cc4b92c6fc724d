"""Registries (issue 9): a notifier and a source added as one class each — defined in this
file, registered by name through the registry API or an entry point — are configured in
config.yaml, validated by ``monitor check`` (a wrong option at its ``file:line:col``) and
deliver in a run.

How each is run, and why: ``check`` runs in-process through ``monitor.cli.main`` (it only
prints). A run is in-process through ``App`` as ``monitor run --once`` drives it, not
through ``cli.main``: ``run`` installs its own root log handler, which would take pytest's
away for the rest of the session. The real command, in a subprocess, can only see a class
it can import: ``tests.test_registry`` is importable from the repository root, where the
harness runs ``python -m monitor``, so the last test gives the subprocess a real entry
point (a ``.dist-info`` folder on ``PYTHONPATH`` naming the classes below) and runs
``monitor check`` and ``monitor run --once`` exactly as an operator would after
``pip install``-ing a plugin package.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from pydantic import SecretStr

from monitor import cli
from monitor.config import Config, NotifierConfig, SourceConfig, load_config
from monitor.errors import ConfigError
from monitor.models import Alert, Delivery, Item
from monitor.notify.base import Notifier
from monitor.notify.build import build_notifiers, plan_notifiers
from monitor.notify.registry import NOTIFIERS
from monitor.preflight import preflight
from monitor.registry import UnknownType
from monitor.sources.base import Cursor, PollResult, Source
from monitor.sources.registry import SOURCES, SourceContext
from tests.harness.daemon import base_config, run_monitor, write_config

pytestmark = pytest.mark.timeout(120)


# --- the plugins: one class each, as a plugin package would ship them ---------------------

class JsonLinesNotifier(Notifier):
    """Appends one JSON line per alert to ``path``; ``label`` goes into every line."""

    class Options(NotifierConfig):
        path: str
        label: str = "alert"

        def delivers(self) -> str | None:
            return f"appends to {self.path}"

    def __init__(self, name: str, path: Path, label: str) -> None:
        self.name, self.path, self.label = name, path, label

    @classmethod
    def from_options(cls, options: Options) -> JsonLinesNotifier:
        return cls(options.name, Path(options.path), options.label)

    def send(self, alert: Alert) -> Delivery:
        line = {"label": self.label, "alert": alert.id, "watchlist": alert.watchlist,
                "title": alert.item.title, "source": alert.item.source}
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")
        return Delivery(destination=self.name)


class LinesSource(Source):
    """Items from a local file of JSON lines (``url: file:///…``), each ``{"id", "title"}``;
    ``language`` is set on every item."""

    class Options(SourceConfig):
        language: str = "en"

    def __init__(self, name: str, url: str, language: str) -> None:
        self.name, self.url, self.language = name, url, language

    @classmethod
    def from_options(cls, options: Options, context: SourceContext) -> LinesSource:
        return cls(options.name, options.url, options.language)

    async def poll(self, cursor: Cursor | None) -> PollResult:
        now = datetime.now(UTC).isoformat()
        items = []
        for line in Path(urlsplit(self.url).path).read_text(encoding="utf-8").splitlines():
            data = json.loads(line)
            items.append(Item(id=data["id"], source=self.name, title=data["title"],
                              url=f"https://lines.example/{data['id']}", published=now,
                              language=self.language, key=f"lines:{data['id']}"))
        return PollResult(items, Cursor())


@pytest.fixture
def plugins() -> Iterator[None]:
    """The two classes registered under ``jsonlines`` and ``lines``, for one test."""
    NOTIFIERS.register("jsonlines", JsonLinesNotifier)
    SOURCES.register("lines", LinesSource)
    yield
    NOTIFIERS.unregister("jsonlines")
    SOURCES.unregister("lines")


def make_config(tmp_path: Path, notifier: dict[str, Any] | None = None,
          source: dict[str, Any] | None = None) -> Path:
    """config.yaml with one ``lines`` source, one ``jsonlines`` notifier and a watchlist
    that matches the first of the source's two items; ``notifier``/``source`` are merged
    into the entries (a None value removes the key)."""
    rules = tmp_path / "rules"
    rules.mkdir(exist_ok=True)
    (rules / "iraq.yaml").write_text("terms: [Rutba]\n", encoding="utf-8")
    feed = tmp_path / "items.jsonl"
    feed.write_text(
        json.dumps({"id": "1", "title": "Border crossing at Rutba reopens"}) + "\n"
        + json.dumps({"id": "2", "title": "Central bank holds rates"}) + "\n",
        encoding="utf-8")
    return write_config(tmp_path / "config.yaml", base_config(
        tmp_path,
        [_drop_none({"name": "local", "type": "lines", "url": feed.as_uri(), "language": "en"}
                    | (source or {}))],
        [{"name": "console", "type": "console"},
         _drop_none({"name": "archive", "type": "jsonlines",
                     "path": str(tmp_path / "alerts.jsonl"), "label": "from-plugin"}
                    | (notifier or {}))],
        rules=str(rules), server={"enabled": False}))


def _drop_none(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if v is not None}


def run_once_in_process(config_path: Path) -> None:
    """What ``monitor run --once`` does after its log set-up (see the module docstring)."""
    from monitor.app import App

    found = preflight(config_path)
    assert found.ok and found.config is not None, [str(p) for p in found.problems]
    app = App(found.config, once=True)
    try:
        assert not app.load_watchlists()
        asyncio.run(app.run_once())
    finally:
        app.close()


def delivered(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "alerts.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# --- acceptance ---------------------------------------------------------------------------

def test_registered_plugins_are_configured_checked_and_deliver(
    tmp_path: Path, plugins: None, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config(tmp_path)
    assert cli.main(["check", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "1 enabled (1 lines)" in out
    assert f"archive: ON (appends to {tmp_path / 'alerts.jsonl'})" in out

    loaded = load_config(config)
    archive = loaded.notifiers[1]
    assert isinstance(archive, JsonLinesNotifier.Options)
    assert archive.type == "jsonlines" and archive.label == "from-plugin"

    run_once_in_process(config)
    (line,) = delivered(tmp_path)
    assert line["label"] == "from-plugin" and line["source"] == "local"
    assert line["title"] == "Border crossing at Rutba reopens" and line["watchlist"] == "iraq"

    run_once_in_process(config)
    assert len(delivered(tmp_path)) == 1, "delivered once, recorded like any notifier's"


def test_check_reports_a_plugins_wrong_options_at_file_line_col(
    tmp_path: Path, plugins: None, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config(tmp_path, notifier={"pth": "x", "label": ["not", "text"]},
                   source={"langage": "ar"})
    assert cli.main(["check", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    text = config.read_text(encoding="utf-8").splitlines()

    def at(key: str) -> str:
        """``file:line:col`` of the first ``key:`` in the written config."""
        line = next(i for i, t in enumerate(text, 1) if t.lstrip(" -").startswith(f"{key}:"))
        return f"{config}:{line}:{text[line - 1].index(key) + 1}"

    assert f"{at('pth')}: notifiers[1].pth: unknown field; did you mean 'path'?" in out
    assert f"{at('label')}: notifiers[1].label: expected text" in out
    assert f"{at('langage')}: sources[0].langage: unknown field; did you mean 'language'?" in out
    assert "[1].jsonlines" not in out and "[0].lines" not in out, "no union tag in a location"


def test_unknown_type_names_the_known_ones(tmp_path: Path, plugins: None) -> None:
    config = make_config(tmp_path, notifier={"type": "jsonline"}, source={"type": "line"})
    with pytest.raises(ConfigError) as err:
        load_config(config)
    messages = [p.message for p in err.value.problems]
    assert ("notifiers[1].type: unknown notifier type 'jsonline'; did you mean 'jsonlines'? "
            "(known: console, jsonlines, slack)") in messages
    assert ("sources[0].type: unknown source type 'line'; did you mean 'lines'? "
            "(known: gdelt, json, lines, rss)") in messages


class TokenNotifier(JsonLinesNotifier):
    """A notifier with a secret and no say about it: the defaults decide ON or OFF."""

    class Options(NotifierConfig):
        path: str
        token: SecretStr

    @classmethod
    def from_options(cls, options: Any) -> TokenNotifier:
        return cls(options.name, Path(options.path), "token")


def test_a_plugin_notifier_whose_secret_is_empty_is_off_with_the_reason(
    tmp_path: Path, plugins: None
) -> None:
    NOTIFIERS.register("token", TokenNotifier)
    try:
        config = make_config(tmp_path, notifier={
            "type": "token", "token": "${ARCHIVE_TOKEN:-}", "label": None})
        plans = {p.name: p for p in plan_notifiers(load_config(config, environ={}))}
        assert str(plans["archive"]) == "archive: OFF (ARCHIVE_TOKEN is empty)"
        loaded = load_config(config, environ={"ARCHIVE_TOKEN": "t"})
        assert str(plan_notifiers(loaded)[1]) == "archive: ON (type token)"
        assert "'t'" not in repr(loaded)
        notifiers, _ = build_notifiers(loaded)
        assert isinstance(notifiers["archive"], TokenNotifier)
    finally:
        NOTIFIERS.unregister("token")


def test_make_source_and_notifier_refuse_an_unregistered_type(tmp_path: Path) -> None:
    from monitor.app import make_source
    from monitor.notify.build import make_notifier
    from monitor.sources.fetch import FetchLimits

    with pytest.raises(UnknownType, match=r"unknown source type 'lines' \(known: gdelt, json, "
                                          r"rss\)"):
        make_source(SourceConfig(name="a", type="lines", url="https://example.org/"),
                    None, FetchLimits())  # type: ignore[arg-type]  # never reached
    with pytest.raises(UnknownType, match="unknown notifier type 'jsonlines'"):
        make_notifier(NotifierConfig(name="a", type="jsonlines"))


def test_register_checks_the_plugin_and_refuses_a_taken_name() -> None:
    class NoOptions:
        @classmethod
        def from_options(cls, options: Any) -> None: ...

    with pytest.raises(TypeError, match="needs an 'Options' class extending NotifierConfig"):
        NOTIFIERS.register("bad", NoOptions)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="notifier type 'slack' is already registered"):
        NOTIFIERS.register("slack", JsonLinesNotifier)
    assert "bad" not in NOTIFIERS.names()


def test_the_default_config_still_validates_every_builtin(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    for var in ("SLACK_WEBHOOK_URL", "SLACK_BOT_TOKEN", "SLACK_CHANNEL", "SLACK_API_URL"):
        monkeypatch.delenv(var, raising=False)
    config = load_config(Path(__file__).resolve().parent.parent / "config.yaml")
    assert {s.type for s in config.sources} == {"rss", "gdelt"}
    assert Config().notifiers[0].type == "console", "no notifiers: the console"


# --- entry points -------------------------------------------------------------------------

def _entry_points(extra: list[importlib.metadata.EntryPoint]) -> Any:
    real = importlib.metadata.entry_points

    def fake(**params: Any) -> Any:
        found = [ep for ep in extra if ep.group == params.get("group")]
        return found + list(real(**params))

    return fake


@pytest.fixture
def entry_points(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``monitor.notifiers`` / ``monitor.sources`` entry points naming the classes above
    (and one that cannot be imported), as an installed plugin package would declare."""
    here = __name__
    monkeypatch.setattr(importlib.metadata, "entry_points", _entry_points([
        importlib.metadata.EntryPoint("jsonlines", f"{here}:JsonLinesNotifier",
                                      "monitor.notifiers"),
        importlib.metadata.EntryPoint("lines", f"{here}:LinesSource", "monitor.sources"),
        importlib.metadata.EntryPoint("teams", "monitor_no_such_plugin:Teams",
                                      "monitor.notifiers"),
    ]))
    NOTIFIERS.scan_entry_points()
    SOURCES.scan_entry_points()
    yield
    monkeypatch.undo()
    NOTIFIERS.scan_entry_points()
    SOURCES.scan_entry_points()
    assert "lines" not in SOURCES.names() and "teams" not in NOTIFIERS.names()


def test_entry_point_plugins_are_configured_checked_and_deliver(
    tmp_path: Path, entry_points: None, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config(tmp_path)
    assert cli.main(["check", "--config", str(config)]) == 0
    assert "archive: ON" in capsys.readouterr().out
    run_once_in_process(config)
    assert [d["title"] for d in delivered(tmp_path)] == ["Border crossing at Rutba reopens"]


def test_an_entry_point_that_cannot_load_is_named_where_it_is_used(
    tmp_path: Path, entry_points: None, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config(tmp_path, notifier={"type": "teams"})
    assert cli.main(["check", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert ("notifiers[1].type: the notifier type 'teams' could not be loaded: "
            "ModuleNotFoundError: No module named 'monitor_no_such_plugin'") in out
    assert "jsonlines" in NOTIFIERS.names(), "one broken plugin does not hide the others"


@pytest.mark.slow
def test_the_real_command_finds_plugins_by_entry_point(tmp_path: Path) -> None:
    """``monitor check`` and ``monitor run --once`` in a subprocess, the plugin package
    installed as far as ``importlib.metadata`` can tell: a ``.dist-info`` folder with
    ``entry_points.txt`` on ``PYTHONPATH``."""
    site = tmp_path / "site"
    dist = site / "monitor_test_plugins-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: monitor-test-plugins\n"
                                   "Version: 0.1\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text(
        f"[monitor.notifiers]\njsonlines = {__name__}:JsonLinesNotifier\n\n"
        f"[monitor.sources]\nlines = {__name__}:LinesSource\n", encoding="utf-8")
    env = {"PYTHONPATH": str(site)}

    bad = make_config(tmp_path, notifier={"pth": "x"})
    check = run_monitor("check", "--config", str(bad), env=env)
    assert check.code == 1, check.stdout + check.stderr
    assert f"{bad}:" in check.stdout
    assert "notifiers[1].pth: unknown field; did you mean 'path'?" in check.stdout

    config = make_config(tmp_path)
    check = run_monitor("check", "--config", str(config), env=env)
    assert check.code == 0, check.stdout + check.stderr
    assert "archive: ON" in check.stdout

    run = run_monitor("run", "--once", "--config", str(config), env=env)
    assert run.code == 0, run.stderr
    assert [d["label"] for d in delivered(tmp_path)] == ["from-plugin"]
    assert "Border crossing at Rutba reopens" in run.stdout, "the console got it too"
