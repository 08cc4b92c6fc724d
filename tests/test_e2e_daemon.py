"""The long-running daemon: scheduling, backoff, no overlapping polls, hot reload, dedupe,
and the other source kinds, against real servers on 127.0.0.1."""

from __future__ import annotations

import itertools
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.harness.daemon import Daemon, base_config, run_monitor, write_config
from tests.harness.feeds import Entry, rss
from tests.harness.feedstub import FeedStub
from tests.harness.probes import free_port, health, wait_until
from tests.harness.slackstub import SlackStub

pytestmark = pytest.mark.timeout(120)


def webapi(stub: SlackStub) -> tuple[list[dict[str, Any]], dict[str, str]]:
    notifier = {"name": "slack", "type": "slack", "token": "${SLACK_BOT_TOKEN}",
                "channel": "#alerts", "api_url": "${SLACK_API_URL}"}
    return [notifier], {"SLACK_BOT_TOKEN": stub.token or "", "SLACK_API_URL": stub.api_url}


def test_failing_source_backs_off_while_healthy_one_keeps_schedule(
    tmp_path: Path, feed_stub: FeedStub
) -> None:
    healthy = feed_stub.serve("/ok.xml", rss([Entry("Weather today", "https://n.example/w")]))
    broken = feed_stub.status("/broken.xml", 500, b"<html>oops</html>")
    slow = feed_stub.slowloris("/slow.xml", interval=0.5, max_seconds=20)
    config = write_config(tmp_path / "config.yaml", base_config(
        tmp_path, [{"name": "ok", "url": healthy, "interval": "1s", "jitter": 0},
                   {"name": "broken", "url": broken, "interval": "1s", "jitter": 0},
                   {"name": "slow", "url": slow, "interval": "1s", "jitter": 0}],
        [{"name": "console", "type": "console"}],
        fetch={"total_deadline": "2.5s"}))
    daemon = Daemon(config)
    time.sleep(9)
    stopped = daemon.stop()
    assert stopped.code == 0, stopped.stderr

    ok_polls = feed_stub.requests_for("/ok.xml")
    assert len(ok_polls) >= 6, "the healthy feed kept its 1 s schedule"
    broken_times = [r.time for r in feed_stub.requests_for("/broken.xml")]
    gaps = [b - a for a, b in itertools.pairwise(broken_times)]
    assert 2 <= len(broken_times) <= 5, broken_times
    assert all(later > earlier for earlier, later in itertools.pairwise(gaps)), gaps
    slow_times = [r.time for r in feed_stub.requests_for("/slow.xml")]
    assert all(b - a >= 2.4 for a, b in itertools.pairwise(slow_times)), \
        "a poll of one source never overlaps the previous one"
    assert re.search(r"poll_failed source=broken .*retryable=yes failures=2", stopped.stderr)
    assert re.search(r"poll_failed source=slow .*reason=deadline", stopped.stderr)


def test_invalid_watchlist_edit_keeps_previous_version(
    tmp_path: Path, feed_stub: FeedStub
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    watchlist = rules / "iraq.yaml"
    watchlist.write_text("terms:\n  - name: Rutba\n    kind: place\n")
    feed = feed_stub.serve("/f.xml", rss([]))
    with SlackStub() as slack:
        notifiers, env = webapi(slack)
        data = base_config(tmp_path, [{"name": "f", "url": feed, "interval": "1s", "jitter": 0}],
                           notifiers)
        data["rules"] = {"paths": [str(rules)], "reload_interval": "0.5s"}
        data["server"] = {"port": free_port()}
        config = write_config(tmp_path / "config.yaml", data)
        base = f"http://127.0.0.1:{data['server']['port']}"
        daemon = Daemon(config, env)
        assert wait_until(lambda: feed_stub.requests_for("/f.xml"), 15)
        watchlist.write_text("terms: [unclosed\n")
        assert wait_until(lambda: rejected(base), 15), "the bad edit was seen and rejected"
        feed_stub.serve("/f.xml", rss([Entry("Convoy reaches Ar-Rutbah", "https://n.example/1")]))
        assert wait_until(lambda: len(slack.posts()) == 1, 15), "the old version still alerts"
        watchlist.write_text("terms:\n  - name: Mosul\n    kind: place\n")
        assert wait_until(lambda: rejected(base) == [], 15), "the fixed file was taken"
        feed_stub.serve("/f.xml", rss([Entry("Convoy reaches Ar-Rutbah", "https://n.example/1"),
                                       Entry("Rutba again", "https://n.example/2"),
                                       Entry("Floods in Mosul", "https://n.example/3")]))
        assert wait_until(lambda: len(slack.posts()) == 2, 15)
        polls = len(feed_stub.requests_for("/f.xml"))
        assert wait_until(lambda: len(feed_stub.requests_for("/f.xml")) > polls
                          and idle(base), 15), "a later poll, everything matched and sent"
        stopped = daemon.stop()
    assert stopped.code == 0
    assert len(slack.posts()) == 2, "Rutba again no longer alerts: the new version replaced it"
    assert "Mosul" in str(slack.posts()[1]), "the fixed file took over"
    assert re.search(rf"{re.escape(str(watchlist))}:2:1: YAML syntax", stopped.stderr)
    assert "stays in force" in stopped.stderr


def idle(base: str) -> bool:
    """Nothing queued, nothing waiting in the outbox."""
    report = health(base)
    if report is None:
        return False
    waiting = report["deliveries"].get("pending", 0) + report["deliveries"].get("sending", 0)
    return not any(report["queues"].values()) and not waiting


def rejected(base: str) -> list[Any] | None:
    """The rejected watchlist files /healthz lists, or None while it does not answer."""
    report = health(base)
    return None if report is None else list(report["watchlists"]["rejected"])


def test_same_story_with_tracking_parameters_alerts_once(
    tmp_path: Path, feed_stub: FeedStub
) -> None:
    story = Entry("Officials visit Rutba", "https://n.example/story?id=7", guid="g-1")
    again = Entry("Officials visit Rutba", "https://N.example/story?utm_source=rss&id=7#top",
                  guid="g-2")
    url = feed_stub.serve("/f.xml", rss([story]))
    other = feed_stub.serve("/g.xml", rss([again]))
    with SlackStub() as slack:
        notifiers, env = webapi(slack)
        config = write_config(tmp_path / "config.yaml", base_config(
            tmp_path, [{"name": "f", "url": url}], notifiers))
        assert run_monitor("run", "--once", "--config", str(config), env=env).code == 0
        config = write_config(tmp_path / "config.yaml", base_config(
            tmp_path, [{"name": "f", "url": url}, {"name": "g", "url": other}], notifiers))
        assert run_monitor("run", "--once", "--config", str(config), env=env).code == 0
        assert len(slack.posts()) == 1


def test_json_api_and_file_sources_from_config_alone(
    tmp_path: Path, feed_stub: FeedStub
) -> None:
    seen = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())  # GDELT's format; news, not backlog
    gdelt = {"articles": [
        {"url": "https://n.example/gdelt-1", "title": "Iraq receives Syrian officers in Rutba",
         "seendate": seen, "language": "English", "domain": "n.example"},
        {"url": "https://n.example/gdelt-2", "title": "Markets rally on rate hopes",
         "seendate": seen, "language": "English", "domain": "n.example"},
    ]}
    api = feed_stub.serve("/api", json.dumps(gdelt).encode(), "application/json")
    local = tmp_path / "local.xml"
    local.write_bytes(rss([Entry("Fuad Hussein in Anbar", "https://n.example/local")]))
    with SlackStub() as slack:
        notifiers, env = webapi(slack)
        sources = [
            {"name": "gdelt", "type": "json", "url": api, "items": "articles",
             "fields": {"id": "url", "url": "url", "title": "title", "published": "seendate",
                        "language": "language"}},
            {"name": "local", "url": local.as_uri()},
        ]
        config = write_config(tmp_path / "config.yaml", base_config(tmp_path, sources, notifiers))
        result = run_monitor("run", "--once", "--config", str(config), env=env)
        assert result.code == 0, result.stderr
        texts = sorted(str(p.get("text")) for p in slack.posts())
    assert len(texts) == 2, texts
    assert any("Rutba" in t for t in texts) and any("Fuad Hussein" in t for t in texts)


def test_locked_database_delays_but_loses_nothing(tmp_path: Path, feed_stub: FeedStub) -> None:
    """RELIABILITY.md D09(b): another process holds an exclusive lock on the queue."""
    import sqlite3

    url = feed_stub.serve("/f.xml", rss([]))
    with SlackStub() as slack:
        notifiers, env = webapi(slack)
        config = write_config(tmp_path / "config.yaml", base_config(
            tmp_path, [{"name": "f", "url": url, "interval": "1s", "jitter": 0}], notifiers))
        daemon = Daemon(config, env)
        assert wait_until(lambda: len(feed_stub.requests_for("/f.xml")) >= 2, 15)
        lock = sqlite3.connect(tmp_path / "data" / "queue.db", isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        feed_stub.serve("/f.xml", rss([Entry("Convoy reaches Rutba", "https://n.example/l")]))
        time.sleep(4)
        assert slack.posts() == [], "nothing can be queued while the lock is held"
        lock.execute("COMMIT")
        lock.close()
        assert wait_until(lambda: len(slack.posts()) == 1, 20)
        time.sleep(2)
        assert daemon.proc.poll() is None, "the daemon kept running"
        stopped = daemon.stop()
    assert stopped.code == 0
    assert len(slack.posts()) == 1


def test_dead_alert_is_resent_after_alerts_retry(tmp_path: Path, feed_stub: FeedStub) -> None:
    from tests.harness.slackstub import Reply

    url = feed_stub.serve("/f.xml", rss([Entry("Talks in Rutba", "https://n.example/r")]))
    with SlackStub() as slack:
        notifiers, env = webapi(slack)
        config = write_config(tmp_path / "config.yaml", base_config(
            tmp_path, [{"name": "f", "url": url}], notifiers))
        slack.script([Reply.error("not_in_channel")])
        first = run_monitor("run", "--once", "--config", str(config), env=env)
        assert first.code == 0 and "alert_dead" in first.stderr
        assert slack.posts() == []
        status = run_monitor("status", "--config", str(config))
        assert status.code == 1 and "dead: alert=" in status.stdout
        assert "not_in_channel" in status.stdout

        revived = run_monitor("alerts", "retry", "--config", str(config))
        assert revived.code == 0 and revived.stdout.startswith("1 dead delivery queued again")
        assert run_monitor("run", "--once", "--config", str(config), env=env).code == 0
        assert len(slack.posts()) == 1
        assert run_monitor("status", "--config", str(config)).code == 0
        assert run_monitor("db", "upgrade", "--config", str(config)).code == 0


def test_postgres_store_end_to_end(tmp_path: Path, feed_stub: FeedStub, postgres_url: str) -> None:
    url = feed_stub.serve("/f.xml", rss([Entry("Talks in Rutba", "https://n.example/pg")]))
    with SlackStub() as slack:
        notifiers, env = webapi(slack)
        config = base_config(tmp_path, [{"name": "f", "url": url}], notifiers)
        config["store"] = {"url": postgres_url}
        path = write_config(tmp_path / "config.yaml", config)
        assert run_monitor("db", "upgrade", "--config", str(path)).code == 0
        for _ in range(2):
            result = run_monitor("run", "--once", "--config", str(path), env=env)
            assert result.code == 0, result.stderr
        assert len(slack.posts()) == 1, "seen items and delivered alerts live in PostgreSQL"
        status = run_monitor("status", "--config", str(path))
    assert status.code == 0 and "sent 1" in status.stdout, status.stdout


def test_unreachable_store_exits_3(tmp_path: Path) -> None:
    config = base_config(tmp_path, [], [{"name": "console", "type": "console"}])
    config["store"] = {"url": "postgresql://postgres@127.0.0.1:1/none"}
    result = run_monitor("run", "--once", "--config",
                         str(write_config(tmp_path / "config.yaml", config)))
    assert result.code == 3
    assert "cannot open the PostgreSQL store" in result.stderr
