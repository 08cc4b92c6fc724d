"""Logging: text or JSON lines on stderr for ours and the libraries', no Slack secret in
either, one line per failed Slack send (monitor/logs.py, monitor/notify/redact.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest

from monitor.config import DeliveryConfig
from monitor.logs import FORMAT_ENV, choose_format, parse_message, setup_logging
from monitor.notify.outbox import Outbox
from monitor.notify.redact import SDK_LOGGER_NAME, redact, sdk_logger
from monitor.notify.slack import SlackWebApiNotifier
from monitor.store.sqlite import SqliteStore
from tests.harness.daemon import base_config, run_monitor, write_config
from tests.harness.feeds import Entry, rss
from tests.harness.feedstub import FeedStub
from tests.harness.slack_fixtures import make_alert
from tests.harness.slackstub import Reply, SlackStub, closed_port

CANARY_TOKEN = "xoxb-CANARY-TOKEN"
CANARY_HOOK_URL = "https://hooks.slack.com/services/T0/B0/CANARY-WEBHOOK-SECRET"
CANARIES = ("CANARY-TOKEN", "CANARY-WEBHOOK-SECRET")
CORE_KEYS = ("time", "level", "logger", "event", "message")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$")
WARNING_OR_ABOVE = ("WARNING", "ERROR", "CRITICAL")
# Loggers setup_logging sets a level on; restored after each test so the rest of the suite
# (which captures with caplog at the root) sees the logging it expects.
TOUCHED = ("apscheduler", "kafka", "urllib3", "asyncio", "slack_sdk", SDK_LOGGER_NAME)
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")


class Stderr:
    """Everything written to sys.stderr during the test, where setup_logging's handler
    writes (pytest swaps sys.stderr per test phase, so it is read through capsys)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys, self._seen = capsys, ""

    def getvalue(self) -> str:
        self._seen += self._capsys.readouterr().err
        return self._seen


@pytest.fixture
def stderr(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Stderr]:
    """The test's stderr; the global logging state setup_logging changes is put back after."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, {n: logging.getLogger(n).level for n in TOUCHED})
    hook = sys.excepthook
    monkeypatch.delenv(FORMAT_ENV, raising=False)
    for var in _PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    yield Stderr(capsys)
    logging.captureWarnings(False)
    sys.excepthook = hook
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every non-empty line, each of which must be one JSON object with the core keys."""
    objects = []
    for line in text.splitlines():
        if not line.strip():
            continue
        obj = json.loads(line)
        assert isinstance(obj, dict), line
        assert all(key in obj for key in CORE_KEYS), line
        assert TIME.match(obj["time"]), line
        objects.append(obj)
    return objects


def raise_and_log(logger: logging.Logger, text: str) -> None:
    try:
        raise RuntimeError(text)
    except RuntimeError:
        logger.error("send_failed destination=slack: see the traceback", exc_info=True)


# -- formats ---------------------------------------------------------------------------------


def test_text_format_stays_time_level_logger_message(stderr: Stderr) -> None:
    setup_logging("INFO", "text")
    logging.getLogger("monitor.notify").info("alert_sent alert_id=%s title=%r", "a1", "Rutba")
    logging.getLogger("aiohttp.client").warning("Unclosed client session")

    lines = stderr.getvalue().splitlines()
    assert len(lines) == 2
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ INFO monitor.notify alert_sent alert_id=a1 "
        r"title='Rutba'", lines[0]), lines[0]
    assert lines[1].endswith(" WARNING aiohttp.client Unclosed client session")


def test_json_format_gives_one_object_per_line_for_ours_and_libraries(
    stderr: Stderr,
) -> None:
    setup_logging("DEBUG", "json")
    logging.getLogger("monitor.notify").warning(
        "alert_retry alert_id=%s destination=%s attempt=%d error=%r retry_in=%.1fs",
        "a1", "slack", 2, "chat.postMessage failed: HTTP 500 error=it's \"bad\"", 0.4)
    logging.getLogger("monitor").info("poll_failed source=%s error=%r retryable=%s: %s",
                                      "shafaq", "timeout", "yes", "will retry x=1")
    for name in ("aiohttp.client", "apscheduler.scheduler", "kafka.conn", "asyncio"):
        logging.getLogger(name).warning("%s said something\nover two lines", name)
    logging.getLogger("slack_sdk.web.base_client").critical("never shown")

    objects = json_lines(stderr.getvalue())

    assert [o["logger"] for o in objects] == [
        "monitor.notify", "monitor", "aiohttp.client", "apscheduler.scheduler", "kafka.conn",
        "asyncio"]
    retry, poll, *libraries = objects
    assert retry["level"] == "WARNING" and retry["event"] == "alert_retry"
    assert retry["message"].startswith("alert_retry alert_id=a1 destination=slack attempt=2")
    assert retry["fields"] == {
        "alert_id": "a1", "destination": "slack", "attempt": "2",
        "error": "chat.postMessage failed: HTTP 500 error=it's \"bad\"", "retry_in": "0.4s"}
    assert poll["event"] == "poll_failed"
    assert poll["fields"] == {"source": "shafaq", "error": "timeout", "retryable": "yes"}
    for obj in libraries:
        assert obj["event"] is None and "fields" not in obj
        assert obj["message"] == f"{obj['logger']} said something\nover two lines"


def test_json_exception_is_one_field_not_a_second_line(stderr: Stderr) -> None:
    setup_logging("INFO", "json")
    raise_and_log(logging.getLogger("monitor.notify"), "boom")

    (obj,) = json_lines(stderr.getvalue())
    assert obj["level"] == "ERROR" and obj["event"] == "send_failed"
    assert obj["fields"] == {"destination": "slack"}
    assert isinstance(obj["exception"], str)
    assert obj["exception"].startswith("Traceback") and "RuntimeError: boom" in obj["exception"]


def test_json_mode_turns_warnings_and_crashes_into_records(stderr: Stderr) -> None:
    setup_logging("INFO", "json")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("old API", UserWarning, stacklevel=1)
    try:
        raise ValueError("unhandled")
    except ValueError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)

    warned, crashed = json_lines(stderr.getvalue())
    assert warned["logger"] == "py.warnings" and "old API" in warned["message"]
    assert crashed["level"] == "CRITICAL" and crashed["event"] == "crashed"
    assert "ValueError: unhandled" in crashed["exception"]


@pytest.mark.parametrize(
    ("configured", "env", "expected"),
    [("text", "json", "json"), ("json", "text", "text"), ("json", " JSON ", "json"),
     ("json", "", "json"), ("text", "xml", "text")],
)
def test_environment_wins_over_the_file_when_it_names_a_format(
    configured: str, env: str, expected: str
) -> None:
    assert choose_format(configured, {FORMAT_ENV: env}) == expected


def test_environment_variable_switches_setup_to_json(
    stderr: Stderr, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FORMAT_ENV, "json")
    setup_logging("INFO", "text")
    logging.getLogger("monitor").info("started sources=%d", 1)

    (obj,) = json_lines(stderr.getvalue())
    assert obj["event"] == "started" and obj["fields"] == {"sources": "1"}


def test_unknown_environment_format_is_reported_and_the_file_used(
    stderr: Stderr, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FORMAT_ENV, "xml")
    setup_logging("INFO", "json")

    (obj,) = json_lines(stderr.getvalue())
    assert obj["level"] == "WARNING" and obj["event"] == "log_format_ignored"
    assert obj["fields"] == {FORMAT_ENV: "xml"}


@pytest.mark.parametrize(
    ("message", "event", "fields"),
    [
        ("poll_failed source=shafaq error='timeout' retryable=yes", "poll_failed",
         {"source": "shafaq", "error": "timeout", "retryable": "yes"}),
        ("alert_dead alert_id=a1 reason=\"it's gone\" (kept as dead; x=1)", "alert_dead",
         {"alert_id": "a1", "reason": "it's gone"}),
        ("alert_possible_duplicate alert_id=a1 destination=hook: an earlier try=1",
         "alert_possible_duplicate", {"alert_id": "a1", "destination": "hook"}),
        ("alert_sent title='Talks in \\u200fRutba\\'s \\\\ edge' attempts=1", "alert_sent",
         {"title": "Talks in \u200fRutba's \\ edge", "attempts": "1"}),
        ("watchlists_loaded count=2 names=['a', 'b c']", "watchlists_loaded",
         {"count": "2", "names": "['a', 'b c']"}),
        ("drain_timeout queued={'items': 0}: left for the next run", "drain_timeout",
         {"queued": "{'items': 0}"}),
        ("server_started url=http://127.0.0.1:9/?a=b (healthz)", "server_started",
         {"url": "http://127.0.0.1:9/?a=b"}),
        ("signal SIGTERM: stopping", "signal", {}),
        ("stopped", "stopped", {}),
        ("config_reload: key=value after the colon is free text", "config_reload", {}),
        ("broken quote='never closed rest=1", "broken", {"quote": "'never"}),
        ("", "", {}),
    ],
)
def test_message_convention_parses_into_event_and_string_fields(
    message: str, event: str, fields: dict[str, str]
) -> None:
    assert parse_message(message) == (event, fields)


# -- secrets ---------------------------------------------------------------------------------


def test_redacting_twice_changes_nothing_more() -> None:
    text = (f"{CANARY_HOOK_URL} {CANARY_TOKEN} Authorization: Bearer abc "
            "http://user:pw@proxy.example:3128/")
    once = redact(text)

    assert redact(once) == once
    assert once == ("https://hooks.slack.com/services/[REDACTED] xoxb-[REDACTED] "
                    "Authorization: Bearer [REDACTED] http://[REDACTED]@proxy.example:3128/")


class _Holder:
    def __str__(self) -> str:
        return f"holder of {CANARY_TOKEN}"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_no_secret_in_either_format(stderr: Stderr, fmt: str) -> None:
    setup_logging("DEBUG", fmt)
    ours = logging.getLogger("monitor.notify")
    ours.warning("notifier_off token=%s url=%s", CANARY_TOKEN, CANARY_HOOK_URL)
    raise_and_log(ours, f"bad token {CANARY_TOKEN} for {CANARY_HOOK_URL}")
    ours.info("sending detail=%s", "x", extra={"hook": CANARY_HOOK_URL, "holder": _Holder()},
              stack_info=True)
    raise_and_log(logging.getLogger("aiohttp.client"), f"POST {CANARY_HOOK_URL} failed")
    logging.getLogger("aiohttp.client").warning("Authorization: Bearer %s", CANARY_TOKEN)
    sdk = sdk_logger()
    sdk.debug("Sending a request - url: %s, token: %s", CANARY_HOOK_URL, CANARY_TOKEN)
    sdk.error(f"Failed to send a request to Slack API server: {CANARY_HOOK_URL}")
    logging.getLogger("slack_sdk.web.base_client").error("token %s", CANARY_TOKEN)
    sdk.debug("HTTP proxy URL has been loaded from an env variable: %s",
              "http://user:CANARY-TOKEN@proxy.example:3128")

    out = stderr.getvalue()
    for canary in CANARIES:
        assert canary not in out
    assert out.count("[REDACTED]") >= 8
    assert "Failed to send a request" in out and "proxy.example:3128" in out
    if fmt == "json":
        objects = json_lines(out)
        assert len(objects) == 8
        hook_line = next(o for o in objects if o["event"] == "sending")
        assert hook_line["hook"] == "https://hooks.slack.com/services/[REDACTED]"
        assert hook_line["holder"] == "holder of xoxb-[REDACTED]"
        assert "stack" in hook_line


# -- one line per Slack failure --------------------------------------------------------------


def _notifier_for(stub: SlackStub, refused: bool) -> SlackWebApiNotifier:
    api_url = f"http://127.0.0.1:{closed_port()}/api/" if refused else stub.api_url
    return SlackWebApiNotifier("slack", CANARY_TOKEN, "#alerts", api_url=api_url, timeout=5)


FAILURES: dict[str, tuple[Callable[[SlackStub], None], bool, str]] = {
    "http_500_html": (lambda s: s.script([(500, {}, "<html>oops</html>")]), False, "alert_retry"),
    "http_500_json": (lambda s: s.script([Reply(status=500)]), False, "alert_retry"),
    "channel_not_found": (lambda s: s.script([Reply.error("channel_not_found")]), False,
                          "alert_dead"),
    "connection_refused": (lambda s: None, True, "alert_retry"),
}


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
@pytest.mark.parametrize("failure", list(FAILURES))
def test_slack_failure_logs_one_line(
    stderr: Stderr, tmp_path: Path, failure: str, level: str
) -> None:
    script, refused, expected = FAILURES[failure]
    setup_logging(level, "json")
    store = SqliteStore(tmp_path / "monitor.db")
    config = DeliveryConfig(backoff_initial=30, backoff_max=60, lease=5)
    with SlackStub(token=CANARY_TOKEN) as stub:
        script(stub)
        outbox = Outbox(store, {"slack": _notifier_for(stub, refused)}, config)
        store.add_alert(make_alert(), ["slack"])
        sent = asyncio.run(outbox.run_due())
        outbox.close()

    objects = json_lines(stderr.getvalue())
    loud = [o for o in objects if o["level"] in WARNING_OR_ABOVE]
    assert sent == 0
    assert [(o["logger"], o["event"]) for o in loud] == [("monitor.notify", expected)], loud
    sdk_lines = [o for o in objects if o["logger"] == SDK_LOGGER_NAME]
    if level == "DEBUG":  # the SDK's chatter is kept, as DEBUG, for diagnosis
        assert sdk_lines and all(o["level"] == "DEBUG" for o in sdk_lines)
        if failure in ("http_500_html", "connection_refused"):
            assert any(o.get("sdk_level") == "ERROR" for o in sdk_lines)
    else:
        assert sdk_lines == []
    assert not any(canary in stderr.getvalue() for canary in CANARIES)


# -- the real command ------------------------------------------------------------------------


def _run_once(tmp: Path, feed_url: str, fmt: str) -> tuple[str, str, list[dict[str, Any]]]:
    """``monitor run --once`` on a fresh data folder against a Slack that fails once."""
    tmp.mkdir()
    with SlackStub(token=CANARY_TOKEN) as slack:
        slack.script([(500, {}, "<html>oops</html>")])
        config = base_config(
            tmp, [{"name": "feed", "url": feed_url, "interval": "1h"}],
            [{"name": "slack", "type": "slack", "token": "${SLACK_BOT_TOKEN}",
              "channel": "#alerts", "api_url": "${SLACK_API_URL}"}])
        path = write_config(tmp / "config.yaml", config)
        result = run_monitor(
            "run", "--once", "--config", str(path), timeout=90,
            env={FORMAT_ENV: fmt, "SLACK_BOT_TOKEN": CANARY_TOKEN,
                 "SLACK_API_URL": slack.api_url, **dict.fromkeys(_PROXY_VARS, "")})
        posts = slack.posts()  # the process has exited: every post it made is recorded
    assert result.code == 0, result.stderr
    return result.stdout, result.stderr, posts


@pytest.mark.timeout(120)
def test_run_once_logs_json_lines_without_secrets(tmp_path: Path, feed_stub: FeedStub) -> None:
    url = feed_stub.serve("/feed.xml", rss([
        Entry("Officers cross at Rutba", "https://news.example/rutba",
              pub_date=formatdate(usegmt=True))]))

    out, err, posts = _run_once(tmp_path / "json", url, "json")

    objects = json_lines(err)
    assert len(posts) == 1
    events = [o["event"] for o in objects]
    assert "alert_sent" in events and "alert_retry" in events
    sent = next(o for o in objects if o["event"] == "alert_sent")
    assert sent["fields"]["destination"] == "slack"
    assert sent["fields"]["title"] == "Officers cross at Rutba"
    loud = [o for o in objects if o["level"] in WARNING_OR_ABOVE]
    assert [o["event"] for o in loud if o["logger"].startswith("monitor.notify")] == [
        "alert_retry"]
    for canary in CANARIES:
        assert canary not in out + err

    out, err, posts = _run_once(tmp_path / "text", url, "text")

    assert len(posts) == 1 and " alert_sent " in err
    assert not err.lstrip().startswith("{")
    for canary in CANARIES:
        assert canary not in out + err
