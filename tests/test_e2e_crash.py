"""Crash safety (RELIABILITY.md D01, D02): SIGKILL at the worst moments, then restart.

The daemon is killed by a failpoint (``MONITOR_FAILPOINTS``), restarted without it, and
the Slack-compatible server's record is checked: lost = 0, and duplicates within the
documented bound (0 on the Web API path, at most 1 and counted on the webhook path).
"""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.harness.daemon import base_config, run_monitor, write_config
from tests.harness.feeds import Entry, rss
from tests.harness.feedstub import FeedStub
from tests.harness.slackstub import SlackStub, lost_and_duplicated

pytestmark = pytest.mark.timeout(120)

STORIES = [Entry(f"Convoy {n} reaches Ar-Rutbah", f"https://n.example/{n}") for n in range(5)]


def setup(tmp_path: Path, feed_stub: FeedStub, slack: SlackStub, mode: str,
          entries: list[Entry]) -> tuple[Path, dict[str, str]]:
    url = feed_stub.serve("/f.xml", rss(entries))
    if mode == "webhook":
        notifier: dict[str, Any] = {"name": "slack", "type": "slack",
                                    "webhook_url": "${SLACK_WEBHOOK_URL}"}
        env = {"SLACK_WEBHOOK_URL": slack.webhook_url()}
    else:
        notifier = {"name": "slack", "type": "slack", "token": "${SLACK_BOT_TOKEN}",
                    "channel": "#alerts", "api_url": "${SLACK_API_URL}"}
        env = {"SLACK_BOT_TOKEN": slack.token or "", "SLACK_API_URL": slack.api_url}
    config = base_config(tmp_path, [{"name": "f", "url": url}], [notifier])
    config["delivery"]["lease"] = "1s"  # a dead worker's lease expires quickly in tests
    return write_config(tmp_path / "config.yaml", config), env


def run_once(config: Path, env: dict[str, str], failpoint: str | None = None) -> Any:
    extra = {"MONITOR_FAILPOINTS": failpoint} if failpoint else {}
    return run_monitor("run", "--once", "--config", str(config), env=env | extra)


@pytest.mark.parametrize("failpoint", ["after_claim=kill", "after_match_before_outbox=kill",
                                       "mid_enqueue=kill"])
def test_kill_between_stages_loses_nothing_and_duplicates_nothing(
    failpoint: str, tmp_path: Path, feed_stub: FeedStub
) -> None:
    with SlackStub() as slack:
        config, env = setup(tmp_path, feed_stub, slack, "webapi", STORIES)
        crashed = run_once(config, env, failpoint)
        assert crashed.code == -signal.SIGKILL, crashed.stderr
        assert slack.posts() == []
        restarted = run_once(config, env)
        assert restarted.code == 0, restarted.stderr
        counts = Counter(slack.alert_ids())
    assert lost_and_duplicated(counts, len(STORIES)) == {"lost": 0, "duplicated": 0}


def test_kill_after_send_web_api_reconciles_without_reposting(
    tmp_path: Path, feed_stub: FeedStub
) -> None:
    with SlackStub() as slack:
        config, env = setup(tmp_path, feed_stub, slack, "webapi", STORIES[:1])
        crashed = run_once(config, env, "after_send_before_ack=kill")
        assert crashed.code == -signal.SIGKILL
        assert len(slack.posts()) == 1, "Slack accepted the post before the crash"
        restarted = run_once(config, env)
        assert restarted.code == 0, restarted.stderr
        assert len(slack.posts()) == 1, "0 duplicates: found through message metadata"
        assert "alert_reconciled" in restarted.stderr
        assert slack.requests("conversations.history")


def test_kill_after_send_webhook_duplicates_at_most_once_and_says_so(
    tmp_path: Path, feed_stub: FeedStub
) -> None:
    with SlackStub() as slack:
        config, env = setup(tmp_path, feed_stub, slack, "webhook", STORIES[:1])
        assert run_once(config, env, "after_send_before_ack=kill").code == -signal.SIGKILL
        restarted = run_once(config, env)
        assert restarted.code == 0, restarted.stderr
        ids = slack.alert_ids()
    assert len(ids) == 2 and len(set(ids)) == 1, "at most one duplicate"
    assert "alert_possible_duplicate" in restarted.stderr
