"""Acceptance, end to end: a real feed server and a real Slack-compatible server on
127.0.0.1, and the real ``monitor run --once`` command between them."""

from __future__ import annotations

import itertools
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.harness.daemon import Daemon, base_config, run_monitor, write_config
from tests.harness.feeds import UNRELATED, Entry, rss, seed_story
from tests.harness.feedstub import FeedStub
from tests.harness.slackstub import SlackStub

pytestmark = pytest.mark.timeout(180)

NEW_STORY = Entry(
    "Asaad al-Shaibani arrives in Baghdad for talks on the border",
    "https://news.example/shibani-baghdad",
    "Syria's foreign minister Asaad al-Shaibani met Iraqi officials on Sunday.",
)


def slack_notifier(mode: str) -> dict[str, Any]:
    if mode == "webhook":
        return {"name": "slack", "type": "slack", "webhook_url": "${SLACK_WEBHOOK_URL}"}
    return {"name": "slack", "type": "slack", "token": "${SLACK_BOT_TOKEN}",
            "channel": "#osint-alerts", "api_url": "${SLACK_API_URL}"}


def slack_env(mode: str, stub: SlackStub) -> dict[str, str]:
    if mode == "webhook":
        return {"SLACK_WEBHOOK_URL": stub.webhook_url()}
    return {"SLACK_BOT_TOKEN": stub.token or "", "SLACK_API_URL": stub.api_url}


def posted_text(post: dict[str, Any]) -> str:
    """Everything a person could see in a post: fallback text and every block's text."""
    return str(post.get("text", "")) + "\n" + str(post.get("blocks", ""))


def once(config: Path, env: dict[str, str]) -> Any:
    result = run_monitor("run", "--once", "--config", str(config), env=env)
    assert result.code == 0, result.stderr
    return result


@pytest.fixture
def slack() -> Any:
    with SlackStub() as stub:
        yield stub


@pytest.mark.parametrize("mode", ["webapi", "webhook"])
def test_seed_story_alerts_once_and_only_once(
    mode: str, tmp_path: Path, feed_stub: FeedStub, slack: SlackStub
) -> None:
    url = feed_stub.serve("/feed.xml", rss([*UNRELATED[:2], seed_story(), *UNRELATED[2:]]))
    config = write_config(tmp_path / "config.yaml", base_config(
        tmp_path, [{"name": "shafaq", "url": url, "interval": "5m"}],
        [{"name": "console", "type": "console"}, slack_notifier(mode)]))
    env = slack_env(mode, slack)

    first = once(config, env)
    posts = slack.posts()
    assert len(posts) == 1, [p.get("text") for p in posts]
    text = posted_text(posts[0])
    assert "syria-iraq" in text
    assert "Al-Sharaa" in text and "Rutba" in text
    assert "The Fate of Syrian Officers in Iraq" in text
    assert slack.alert_ids()[0], "every post carries its alert id"
    assert "The Fate of Syrian Officers in Iraq" in first.stdout, "console notifier printed it"
    assert "Central bank" not in text

    second = once(config, env)
    assert len(slack.posts()) == 1, "a second run posts nothing new"
    requests = feed_stub.requests_for("/feed.xml")
    assert len(requests) == 2
    assert requests[1].headers.get("if-none-match"), "conditional GET across restarts"
    assert requests[1].headers.get("if-modified-since")
    assert re.search(r"polled source=shafaq .*not_modified=True", second.stderr)

    feed_stub.serve("/feed.xml", rss([NEW_STORY, *UNRELATED, seed_story()]))
    once(config, env)
    posts = slack.posts()
    assert len(posts) == 2, "exactly one more alert for the one new matching item"
    assert "Shaibani" in posted_text(posts[1])
    assert len(set(slack.alert_ids())) == 2


def test_webapi_post_carries_metadata_and_no_unfurl(
    tmp_path: Path, feed_stub: FeedStub, slack: SlackStub
) -> None:
    url = feed_stub.serve("/feed.xml", rss([seed_story()]))
    config = write_config(tmp_path / "config.yaml", base_config(
        tmp_path, [{"name": "shafaq", "url": url}], [slack_notifier("webapi")]))
    once(config, slack_env("webapi", slack))
    (request,) = [r for r in slack.requests("chat.postMessage")]
    body = request["body"]
    assert body["channel"] == "#osint-alerts"
    assert str(body.get("unfurl_links")).lower() == "false"
    assert str(body.get("unfurl_media")).lower() == "false"
    assert "link_names" not in body and "parse" not in body
    assert request["headers"].get("authorization", request["headers"].get("Authorization"))


def test_feed_text_cannot_mention_or_forge_links(
    tmp_path: Path, feed_stub: FeedStub, slack: SlackStub
) -> None:
    evil = Entry(
        "<!channel> <@U123> <https://evil.example|click> Rutba border crossing reopens",
        "https://news.example/evil",
        "<!here> <!everyone> <!subteam^S1> <#C1> officials in Rutba said &lt;!here&gt;",
    )
    url = feed_stub.serve("/feed.xml", rss([evil]))
    config = write_config(tmp_path / "config.yaml", base_config(
        tmp_path, [{"name": "evil", "url": url}], [slack_notifier("webapi")]))
    once(config, slack_env("webapi", slack))
    (post,) = slack.posts()
    text = posted_text(post)
    for live in ("<!channel>", "<!here>", "<!everyone>", "<@U123>", "<!subteam^S1>", "<#C1>",
                 "<https://evil.example|click>", "<https://evil.example"):
        assert live not in text, live
    assert "&lt;!channel&gt;" in text


def test_delivery_survives_rate_limits_and_server_errors(
    tmp_path: Path, feed_stub: FeedStub, slack: SlackStub
) -> None:
    url = feed_stub.serve("/feed.xml", rss([seed_story(), NEW_STORY, *UNRELATED]))
    second = feed_stub.serve("/other.xml", rss([Entry(
        "Fuad Hussein meets envoys in Baghdad", "https://news.example/fuad",
        "Iraqi Foreign Minister Fuad Hussein discussed the border.")]))
    slack.script([(429, {"Retry-After": "2"}, {"ok": False, "error": "ratelimited"})] * 10
                 + [(500, {}, {"ok": False, "error": "internal_error"})] * 5)
    config = write_config(tmp_path / "config.yaml", base_config(
        tmp_path, [{"name": "a", "url": url}, {"name": "b", "url": second}],
        [slack_notifier("webapi")]))
    once(config, slack_env("webapi", slack))

    ids = slack.alert_ids()
    assert len(ids) == 3 and len(set(ids)) == 3, "every alert arrives exactly once"
    attempts = slack.requests("chat.postMessage")
    assert len(attempts) == 18
    for before, after in itertools.pairwise(attempts):
        if before["response"]["status"] == 429:
            gap = after["t_mono"] - before["t_mono"]
            assert gap >= 2.0 - 0.05, f"posted {gap:.2f}s after a Retry-After: 2"


def test_stopped_daemon_delivers_the_rest_on_next_start(
    tmp_path: Path, feed_stub: FeedStub, slack: SlackStub
) -> None:
    url = feed_stub.serve("/feed.xml", rss([seed_story(), NEW_STORY]))
    slack.script([(429, {"Retry-After": "30"}, {"ok": False, "error": "ratelimited"})])
    config = write_config(tmp_path / "config.yaml", base_config(
        tmp_path, [{"name": "a", "url": url, "interval": "1h"}], [slack_notifier("webapi")]))
    env = slack_env("webapi", slack)
    daemon = Daemon(config, env)
    deadline = time.monotonic() + 30
    while not slack.requests("chat.postMessage") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert slack.requests("chat.postMessage"), "the daemon tried to deliver"
    stopped = daemon.stop()
    assert stopped.code == 0, stopped.stderr
    assert stopped.seconds < 20
    assert slack.posts() == [], "nothing was delivered before the stop"

    # The Retry-After is durable: the next start waits it out, then delivers both, once.
    once(config, env)
    ids = slack.alert_ids()
    assert len(ids) == 2 and len(set(ids)) == 2


def test_check_reports_bad_watchlists_with_positions(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "syntax.yaml").write_text("terms:\n  - name: Rutba\n  - [unclosed\n")
    (rules / "unknown.yaml").write_text("terms:\n  - name: Anbar\n    treshold: 90\n")
    (rules / "good.yaml").write_text("terms:\n  - name: Mosul\n")
    config = write_config(tmp_path / "config.yaml", base_config(
        tmp_path, [], [{"name": "console", "type": "console"}], rules=str(rules)))
    result = run_monitor("check", "--config", str(config))
    assert result.code == 1
    lines = result.stdout.splitlines()
    assert any(re.match(rf"{re.escape(str(rules / 'syntax.yaml'))}:\d+:\d+: YAML syntax", ln)
               for ln in lines), lines
    assert (f"{rules / 'unknown.yaml'}:3:5: terms[0].treshold: unknown field; did you mean "
            "'threshold'?") in lines
