"""config.yaml: interpolation, validation with positions, secrets kept out of repr."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import load_config, parse_duration
from monitor.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_default_config_loads_without_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("SLACK_WEBHOOK_URL", "SLACK_BOT_TOKEN", "SLACK_CHANNEL", "SLACK_API_URL"):
        monkeypatch.delenv(var, raising=False)
    config = load_config(REPO / "config.yaml")
    assert len(config.sources) >= 5
    assert all(s.url.startswith("https://") for s in config.sources)
    slack = next(n for n in config.notifiers if n.type == "slack")
    assert slack.secret("token") == "" and slack.secret("webhook_url") == ""
    assert config.rule_paths == [REPO / "rules"]


def test_env_interpolation_with_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, (
        "notifiers:\n  - name: slack\n    type: slack\n    token: ${TOK}\n"
        "    channel: ${CHAN:-#fallback}\n    api_url: ${API:-http://127.0.0.1:1/api/}\n"
    ))
    config = load_config(path, environ={"TOK": "xoxb-secret-value"})
    slack = config.notifiers[0]
    assert slack.secret("token") == "xoxb-secret-value"
    assert slack.channel == "#fallback"
    assert "xoxb-secret-value" not in repr(config)
    assert "xoxb-secret-value" not in str(config)


def test_errors_name_file_line_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, (
        "sources:\n  - name: a\n    url: https://example.org/feed\n    interval: 5x\n"
        "  - name: b\n    url: https://example.org/b\n    intervall: 5m\n"
    ))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    lines = [str(p) for p in err.value.problems]
    assert (f"{path}:4:5: sources[0].interval: expected a duration such as "
            "30s, 5m, 1h, 7d or 2w (got '5x')") in lines
    assert (f"{path}:7:5: sources[1].intervall: unknown field; did you mean 'interval'?"
            in lines)


def test_non_http_feed_url_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "sources:\n  - name: a\n    url: ftp://example.org/feed\n")
    with pytest.raises(ConfigError, match=r":3:5: sources\[0\]\.url: the feed URL must start with "
                       r"http://, https:// or file://"):
        load_config(path)


def test_literal_secret_in_file_warns_without_echoing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, (
        "notifiers:\n  - name: slack\n    type: slack\n    token: xoxb-LITERAL-CANARY\n"
        "    channel: '#c'\n"
    ))
    load_config(path)
    assert "a secret is written in the file" in caplog.text
    assert "LITERAL-CANARY" not in caplog.text


def test_relative_paths_resolve_against_config_folder(tmp_path: Path) -> None:
    path = write(tmp_path, "queue:\n  path: q/queue.db\nrules:\n  paths: [mine/]\n")
    config = load_config(path)
    assert config.resolve(config.queue.path) == tmp_path / "q" / "queue.db"
    assert config.rule_paths == [tmp_path / "mine"]


@pytest.mark.parametrize(("text", "seconds"), [("5m", 300), ("30s", 30), ("1.5h", 5400),
                                               ("2d", 172800), ("2w", 1209600), (45, 45),
                                               ("250ms", 0.25)])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)
