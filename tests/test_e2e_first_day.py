"""A first day that can't go wrong, end to end: the real ``monitor`` command between a feed
server and a Slack-compatible server on 127.0.0.1.

A new install does not flood the channel with a feed's backlog; a typo in config.yaml is
a clear error from ``check`` and ``run`` alike, never a silent loss; an alert matched while
Slack is switched off waits, visibly, until ``alerts retry`` sends it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from monitor import __version__
from tests.harness.daemon import REPO, base_config, run_monitor, write_config
from tests.harness.feeds import Entry, rfc822, rss
from tests.harness.feedstub import FeedStub
from tests.harness.probes import free_port, get_json, health, wait_for
from tests.harness.slackstub import SlackStub

pytestmark = pytest.mark.timeout(180)

DAY = 86400.0


def webapi(stub: SlackStub) -> tuple[dict[str, Any], dict[str, str]]:
    notifier = {"name": "slack", "type": "slack", "token": "${SLACK_BOT_TOKEN}",
                "channel": "#osint-alerts", "api_url": "${SLACK_API_URL}"}
    return notifier, {"SLACK_BOT_TOKEN": stub.token or "", "SLACK_API_URL": stub.api_url}


def backlog(n: int, prefix: str = "old") -> list[Entry]:
    """``n`` matching stories published one to a few days ago."""
    return [Entry(f"Convoy seen near Rutba, report {i}", f"https://n.example/{prefix}/{i}",
                  "Witnesses saw trucks on the road to Rutba.", pub_date=rfc822(DAY + i * 3600))
            for i in range(n)]


def fresh(slug: str, minutes_ago: float = 5) -> Entry:
    return Entry(f"Officials meet in Rutba ({slug})", f"https://n.example/new/{slug}",
                 "Talks on the border crossing at Rutba.", pub_date=rfc822(minutes_ago * 60))


def default_config(tmp: Path, sources: list[dict[str, Any]], notifier: dict[str, Any]) -> Path:
    """The harness config with nothing about first polls: the defaults apply."""
    data = base_config(tmp, sources, [notifier])
    assert "first_poll" not in data
    return write_config(tmp / "config.yaml", data)


def once(config: Path, env: dict[str, str] | None = None) -> Any:
    result = run_monitor("run", "--once", "--config", str(config), env=env)
    assert result.code == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result


# --- 1. the first poll primes, it does not flood -----------------------------------------


def test_first_poll_alerts_only_on_recent_items_then_on_each_new_one(
    tmp_path: Path, feed_stub: FeedStub
) -> None:
    feed_stub.serve("/a.xml", rss([fresh("first"), *backlog(30)]))
    with SlackStub() as slack:
        notifier, env = webapi(slack)
        sources = [{"name": "shafaq", "url": feed_stub.url("/a.xml")}]
        config = default_config(tmp_path, sources, notifier)

        first = once(config, env)
        assert len(slack.posts()) == 1, "30 old stories primed, 1 recent one alerted"
        assert "(first)" in str(slack.posts()[0])
        assert ("source_primed source=shafaq items=31 primed=30 alerted=1 backfill=1h"
                in first.stderr)

        feed_stub.serve("/a.xml", rss([fresh("second", 1), fresh("first"), *backlog(30)]))
        second = once(config, env)
        assert len(slack.posts()) == 2, "exactly one more for the one new item"
        assert "(second)" in str(slack.posts()[1])
        assert "source_primed" not in second.stderr, "a source with state does not re-prime"

        # A source added later primes the same way, and the first one still does not.
        feed_stub.serve("/b.xml", rss([fresh("b-new"), *backlog(12, "b")]))
        sources.append({"name": "rudaw", "url": feed_stub.url("/b.xml")})
        config = default_config(tmp_path, sources, notifier)
        third = once(config, env)
        assert len(slack.posts()) == 3
        assert "(b-new)" in str(slack.posts()[2])
        assert "source_primed source=rudaw items=13 primed=12 alerted=1" in third.stderr
        assert "source_primed source=shafaq" not in third.stderr

        status = run_monitor("status", "--json", "--config", str(config))
    report = json.loads(status.stdout)
    assert report["sources"]["rudaw"]["primed"]["items"] == 13
    assert report["sources"]["rudaw"]["primed"]["alerted"] == 1
    assert report["sources"]["shafaq"]["primed"]["backfill"] == "1h"


@pytest.mark.parametrize(("backfill", "expected"), [("0", 0), ("all", 4), ("3d", 3)])
def test_per_source_backfill_overrides_the_default(
    tmp_path: Path, feed_stub: FeedStub, backfill: str, expected: int
) -> None:
    # Three stories one to three days old (DAY + 0h, 1h, 2h) and one dated this week.
    entries = [fresh("now", 1), *backlog(2), Entry("Rutba crossing closes", "https://n.example/w",
                                                    pub_date=rfc822(5 * DAY))]
    feed_stub.serve("/f.xml", rss(entries))
    with SlackStub() as slack:
        notifier, env = webapi(slack)
        config = default_config(tmp_path, [{"name": "f", "url": feed_stub.url("/f.xml"),
                                            "backfill": backfill}], notifier)
        once(config, env)
        assert len(slack.posts()) == expected


def test_undated_items_are_primed(tmp_path: Path, feed_stub: FeedStub) -> None:
    undated = Entry("Undated Rutba story", "https://n.example/undated", pub_date="")
    feed_stub.serve("/f.xml", rss([fresh("dated"), undated]))
    with SlackStub() as slack:
        notifier, env = webapi(slack)
        config = default_config(tmp_path, [{"name": "f", "url": feed_stub.url("/f.xml")}],
                                notifier)
        once(config, env)
        titles = [str(p.get("text")) for p in slack.posts()]
    assert len(titles) == 1 and "(dated)" in titles[0], titles


# --- 2. nothing marked seen that was never matched ----------------------------------------


def test_missing_rules_path_refuses_to_run_and_marks_nothing_seen(
    tmp_path: Path, feed_stub: FeedStub
) -> None:
    feed_stub.serve("/f.xml", rss([fresh("a"), fresh("b")]))
    with SlackStub() as slack:
        notifier, env = webapi(slack)
        data = base_config(tmp_path, [{"name": "f", "url": feed_stub.url("/f.xml")}], [notifier])
        data["rules"] = {"paths": [str(tmp_path / "rulez")]}
        config = write_config(tmp_path / "config.yaml", data)

        check = run_monitor("check", "--config", str(config), env=env)
        assert check.code == 1
        assert f"{config}:" in check.stdout and "does not exist" in check.stdout
        run = run_monitor("run", "--once", "--config", str(config), env=env)
        assert run.code == 1
        assert "does not exist" in run.stderr and "Traceback" not in run.stderr
        assert not feed_stub.requests_for("/f.xml"), "nothing was polled, nothing marked seen"

        data["rules"] = {"paths": [str(REPO / "rules")]}
        write_config(config, data)
        once(config, env)
        assert len(slack.posts()) == 2, "the stories alert once the path is fixed"


def test_empty_rules_folder_refuses_to_run(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    data = base_config(tmp_path, [], [{"name": "console", "type": "console"}],
                       rules=str(tmp_path / "rules"))
    config = write_config(tmp_path / "config.yaml", data)
    check = run_monitor("check", "--config", str(config))
    run = run_monitor("run", "--once", "--config", str(config))
    assert check.code == 1 and "no watchlist found" in check.stdout
    assert run.code == 1 and "no watchlist found" in run.stderr


def test_alerts_matched_while_slack_is_off_are_skipped_then_sent_by_retry(
    tmp_path: Path, feed_stub: FeedStub
) -> None:
    feed_stub.serve("/f.xml", rss([fresh(str(i)) for i in range(10)]))
    with SlackStub() as slack:
        notifier, env = webapi(slack)
        notifier["token"] = "${SLACK_BOT_TOKEN:-}"
        config = default_config(tmp_path, [{"name": "f", "url": feed_stub.url("/f.xml")}],
                                notifier)
        no_token = {"SLACK_API_URL": slack.api_url}
        check = run_monitor("check", "--config", str(config), env=no_token)
        assert check.code == 0
        assert "slack: OFF (SLACK_BOT_TOKEN is empty)" in check.stdout

        first = once(config, no_token)
        assert "notifier_off name=slack" in first.stderr
        assert slack.posts() == []
        status = run_monitor("status", "--json", "--config", str(config), env=no_token)
        report = json.loads(status.stdout)
        assert status.code == 1 and report["status"] == "degraded"
        assert report["deliveries"].get("skipped") == 10
        assert any("skipped" in r for r in report["reasons"])

        refused = run_monitor("alerts", "retry", "--notifier", "slack", "--config", str(config),
                              env={**no_token, "SLACK_BOT_TOKEN": ""})
        assert refused.code == 1 and "SLACK_BOT_TOKEN is empty" in refused.stderr

        retried = run_monitor("alerts", "retry", "--notifier", "slack", "--since", "24h",
                              "--config", str(config), env=env)
        assert retried.code == 0, retried.stderr
        assert retried.stdout.startswith("10 skipped deliveries queued again")
        once(config, env)
        ids = slack.alert_ids()
    assert len(ids) == 10 and len(set(ids)) == 10, "every skipped alert sent, once"


def test_alerts_retry_with_an_unknown_id_exits_1(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.yaml", base_config(
        tmp_path, [], [{"name": "console", "type": "console"}]))
    result = run_monitor("alerts", "retry", "a-doesnotexist", "--config", str(config))
    assert result.code == 1 and "unknown alert id(s): a-doesnotexist" in result.stderr


# --- 3. check and run judge a config the same way ------------------------------------------

BAD_CONFIGS: dict[str, tuple[str, dict[str, str], str]] = {
    # name: (config text, environment, what the message must say)
    "unset variable": (
        "notifiers:\n  - name: slack\n    type: slack\n    webhook_url: ${SLACK_WEBHOOK}\n",
        {}, "environment variable SLACK_WEBHOOK is not set"),
    "empty data path": (
        "queue:\n  path: ${DATA_DIR:-}/queue.db\n", {"DATA_DIR": ""},
        "queue.path: the path comes out as '/queue.db' because DATA_DIR is empty"),
    "webhook without scheme": (
        "notifiers:\n  - name: slack\n    type: slack\n    webhook_url: ${SLACK_WEBHOOK_URL}\n",
        {"SLACK_WEBHOOK_URL": "hooks.slack.com/services/T0/B0/CANARY-SECRET"},
        "notifiers[0].webhook_url: not a usable webhook URL"),
    "api url without scheme": (
        "notifiers:\n  - name: slack\n    type: slack\n    token: ${T}\n    channel: '#c'\n"
        "    api_url: slack.com/api\n", {"T": "xoxb-1"}, "notifiers[0].api_url: must be"),
    "source url without scheme": (
        "sources:\n  - name: a\n    url: www.example.org/feed\n", {},
        "sources[0].url: the feed URL must start with http://"),
    "misspelt key": (
        "sources:\n  - name: a\n    url: https://example.org/feed\n    intervall: 5m\n", {},
        "sources[0].intervall: unknown field; did you mean 'interval'?"),
    "tab indentation": (
        "sources:\n\t- name: a\n", {}, "tabs are not allowed in YAML; indent with spaces"),
    "not a mapping": ("sources: [5]\n", {}, "sources[0]: expected a mapping"),
    "postgres driver missing": (
        "store:\n  url: postgresql://postgres@127.0.0.1:5432/test\n", {"BLOCK_PSYCOPG": "1"},
        "install -e '.[postgres]'"),
}

_BLOCKER = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name == "psycopg" or name.startswith("psycopg."):
            raise ModuleNotFoundError("No module named 'psycopg'", name=name)
        return None
sys.meta_path.insert(0, _Block())
"""


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_fails_check_and_run_alike_with_a_position(tmp_path: Path, case: str) -> None:
    text, env, message = BAD_CONFIGS[case]
    rules = f"rules:\n  paths: [{REPO / 'rules'}]\n"
    data = f"queue:\n  path: {tmp_path}/q.db\n" if "queue:" not in text else ""
    config = tmp_path / "config.yaml"
    config.write_text(text + ("" if "rules:" in text else rules) + data, encoding="utf-8")
    if env.pop("BLOCK_PSYCOPG", None):  # this machine has psycopg: hide it from the command
        (tmp_path / "block").mkdir()
        (tmp_path / "block" / "sitecustomize.py").write_text(_BLOCKER)
        env["PYTHONPATH"] = str(tmp_path / "block")
    check = run_monitor("check", "--config", str(config), env=env)
    run = run_monitor("run", "--once", "--config", str(config), env=env)
    assert check.code == 1, check.stdout + check.stderr
    assert run.code == 1, run.stdout + run.stderr
    for result, output in ((check, check.stdout), (run, run.stderr)):
        assert message in output, output
        assert f"{config}:" in output, "file:line:col"
        assert "Traceback" not in result.stdout + result.stderr
        assert "Value error" not in output and "Config" not in output.replace(str(config), "")
        assert "CANARY-SECRET" not in result.stdout + result.stderr


def test_unknown_notifier_in_a_watchlist_fails_check_and_run(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "w.yaml").write_text("notify: [slak]\nterms: [Rutba, Anbar]\n")
    config = write_config(tmp_path / "config.yaml", base_config(
        tmp_path, [], [{"name": "console", "type": "console"},
                       {"name": "slack", "type": "slack", "webhook_url": "${HOOK:-}"}],
        rules=str(rules)))
    check = run_monitor("check", "--config", str(config))
    run = run_monitor("run", "--once", "--config", str(config))
    expected = f"{rules / 'w.yaml'}:1:10: notify[0]: unknown notifier 'slak'; did you mean 'slack'?"
    assert check.code == 1 and expected in check.stdout
    assert run.code == 1 and expected in run.stderr


def test_check_ends_with_what_will_run(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.yaml", base_config(
        tmp_path, [{"name": "a", "url": "https://example.org/a"},
                   {"name": "g", "type": "gdelt", "url": "https://example.org/g"}],
        [{"name": "console", "type": "console"},
         {"name": "slack", "type": "slack", "webhook_url": "${SLACK_WEBHOOK_URL:-}",
          "token": "${SLACK_BOT_TOKEN:-}", "channel": "#c"}]))
    result = run_monitor("check", "--config", str(config))
    assert result.code == 0, result.stdout + result.stderr
    out = result.stdout
    assert "console: ON" in out
    assert "slack: OFF (SLACK_BOT_TOKEN and SLACK_WEBHOOK_URL are empty)" in out
    assert "sources:    2 enabled (1 gdelt, 1 rss)" in out
    assert f"store:      sqlite {tmp_path / 'data' / 'monitor.db'}" in out
    assert f"queue:      sqlite {tmp_path / 'data' / 'queue.db'}" in out
    assert "watchlists: 1 (syria-iraq)" in out


def test_check_slack_asks_slack_about_the_token_and_channel(tmp_path: Path) -> None:
    with SlackStub() as slack:
        notifier, env = webapi(slack)
        slack.add_channel("osint-alerts", member=False)
        config = write_config(tmp_path / "config.yaml", base_config(tmp_path, [], [notifier]))
        result = run_monitor("check", "--slack", "--config", str(config), env=env)
        assert [r["path"] for r in slack.requests("auth.test")], "auth.test was called"
    assert result.code == 1, result.stdout
    assert "token ok" in result.stdout
    assert "/invite @monitor" in result.stdout
    assert (slack.token or "") not in result.stdout


# --- 5. the operator's view ------------------------------------------------------------


def test_status_json_holds_each_sources_next_poll_and_version_prints(
    tmp_path: Path, feed_stub: FeedStub
) -> None:
    feed_stub.serve("/f.xml", rss([fresh("a")]))
    config = write_config(tmp_path / "config.yaml", base_config(
        tmp_path, [{"name": "f", "url": feed_stub.url("/f.xml")}],
        [{"name": "console", "type": "console"}]))
    result = once(config)
    assert "next_poll" not in result.stderr, "--once has no next poll to announce"
    status = run_monitor("status", "--json", "--config", str(config))
    report = json.loads(status.stdout)
    assert status.code == 0, report
    assert "next_poll" in report["sources"]["f"] and report["sources"]["f"]["items"] == 1
    assert report["watchlists"]["in_force"][0]["name"] == "syria-iraq"
    table = run_monitor("status", "--config", str(config))
    assert table.code == 0 and "status: ok" in table.stdout and "f " in table.stdout
    version = run_monitor("--version")
    assert version.code == 0 and version.stdout.strip() == f"monitor {__version__}"
    assert run_monitor("--help").stdout.count("\n") > 3


def test_run_once_ends_within_drain_timeout_and_keeps_the_rest(
    tmp_path: Path, feed_stub: FeedStub
) -> None:
    feed_stub.serve("/f.xml", rss([fresh(str(i)) for i in range(12)]))
    with SlackStub() as slack:
        notifier, env = webapi(slack)
        notifier |= {"rate_per_second": 1, "burst": 1}
        data = base_config(tmp_path, [{"name": "f", "url": feed_stub.url("/f.xml")}], [notifier])
        data["delivery"]["drain_timeout"] = "3s"
        config = write_config(tmp_path / "config.yaml", data)
        first = run_monitor("run", "--once", "--config", str(config), env=env)
        assert first.code == 0, first.stderr
        assert first.seconds < 15, f"took {first.seconds:.1f}s with drain_timeout 3s"
        sent = len(slack.posts())
        assert 1 <= sent <= 5 and "drain_timeout pending=" in first.stderr
        data["delivery"]["drain_timeout"] = "60s"
        write_config(config, data)
        once(config, env)
        ids = slack.alert_ids()
    assert len(ids) == 12 and len(set(ids)) == 12, "the rest went on the next run, once each"


# --- 7. the Slack message an analyst acts on -------------------------------------------


def test_posted_message_names_rule_outlet_local_time_and_a_clean_link(
    tmp_path: Path, feed_stub: FeedStub
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "crossing.yaml").write_text(
        "watchlist: crossing\nterms:\n  - name: Syrian officers\n  - name: Rutba\n"
        "    kind: place\nrules:\n  - name: officers-crossing\n    all: [Syrian officers]\n"
        "    any: [Rutba]\n    within: 20\n")
    story = Entry("Syrian officers cross near Rutba",
                  "https://n.example/story?id=7&utm_source=rss&utm_medium=feed#top",
                  "Former Syrian officers were seen crossing near Rutba on Sunday.")
    feed_stub.serve("/f.xml", rss([story]))
    with SlackStub() as slack:
        notifier, env = webapi(slack)
        data = base_config(tmp_path, [{"name": "shafaq", "url": feed_stub.url("/f.xml"),
                                       "title": "Shafaq News"}], [notifier], rules=str(rules))
        once(write_config(tmp_path / "config.yaml", data), env)
        (post,) = slack.posts()
    text = json.dumps(post)
    assert "officers-crossing" in text
    assert "<!date^" in text
    assert "Shafaq News" in text
    assert "https://n.example/story?id=7" in text and "utm_" not in text and "#top" not in text
    assert "(place)" in text


# --- 4. health an orchestrator can trust -----------------------------------------------


def test_probes_live_ready_and_health_tell_an_orchestrator_the_truth(
    tmp_path: Path, feed_stub: FeedStub
) -> None:
    from tests.harness.daemon import Daemon

    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "good.yaml").write_text("terms:\n  - name: Rutba\n    kind: place\n")
    good = feed_stub.serve("/good.xml", rss([fresh("a")]))
    broken = feed_stub.status("/broken.xml", 500, b"oops")
    with SlackStub() as slack:
        notifier, env = webapi(slack)
        slack.script([(503, {}, {"ok": False, "error": "service_unavailable"})] * 50)
        port = free_port()
        data = base_config(tmp_path, [{"name": "good", "url": good, "interval": "1h"},
                                      {"name": "broken", "url": broken, "interval": "1h"}],
                           [notifier], rules=str(rules))
        data["server"] = {"port": port}
        data["rules"]["reload_interval"] = "0.2s"
        daemon = Daemon(write_config(tmp_path / "config.yaml", data), env)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: health(base))
            assert get_json(f"{base}/livez")[0] == 200
            # A failing feed and a failing destination: degraded and named, still ready.
            report = wait_for(lambda: _health_when(base, lambda h: h["destinations"]["slack"]
                                                   ["failing"] and h["sources"]["broken"]
                                                   ["failures"]))
            assert report["status"] == "degraded"
            assert any("destination slack failing" in r for r in report["reasons"])
            assert any("source broken failing" in r for r in report["reasons"])
            assert get_json(f"{base}/readyz")[0] == 200, "a broken feed must not restart a pod"

            # A watchlist edited into invalid YAML is listed with its position.
            (rules / "bad.yaml").write_text("terms: [unclosed\n")
            report = wait_for(lambda: _health_when(base, lambda h: h["watchlists"]["rejected"]))
            (rejected,) = report["watchlists"]["rejected"]
            assert rejected["file"] == str(rules / "bad.yaml")
            assert rejected["problems"][0].startswith(f"{rules / 'bad.yaml'}:2:1:")

            # The store file is made unreachable: not ready, still alive.
            store = tmp_path / "data" / "monitor.db"
            store.rename(tmp_path / "data" / "moved.db")
            status, body = wait_for(lambda: _not_ready(f"{base}/readyz"))
            assert status == 503 and any("store" in r for r in body["reasons"]), body
            assert get_json(f"{base}/livez")[0] == 200
            (tmp_path / "data" / "moved.db").rename(store)
            wait_for(lambda: get_json(f"{base}/readyz")[0] == 200)
        finally:
            stopped = daemon.stop()
    assert stopped.code == 0, stopped.stderr
    assert "Traceback" not in stopped.stderr


def _health_when(base: str, condition: Any) -> dict[str, Any] | None:
    report = health(base)
    try:
        return report if report is not None and condition(report) else None
    except (KeyError, TypeError):
        return None


def _not_ready(url: str) -> tuple[int, Any] | None:
    status, body = get_json(url)
    return (status, body) if status == 503 else None


def test_hot_reload_keeps_the_last_good_set_rather_than_none_or_a_bad_route(
    tmp_path: Path, feed_stub: FeedStub
) -> None:
    from tests.harness.daemon import Daemon

    rules = tmp_path / "rules"
    rules.mkdir()
    watchlist = rules / "iraq.yaml"
    watchlist.write_text("terms:\n  - name: Rutba\n    kind: place\n")
    feed_stub.serve("/f.xml", rss([]))
    with SlackStub() as slack:
        notifier, env = webapi(slack)
        port = free_port()
        data = base_config(tmp_path, [{"name": "f", "url": feed_stub.url("/f.xml"),
                                       "interval": "0.5s", "jitter": 0}], [notifier],
                           rules=str(rules))
        data["rules"]["reload_interval"] = "0.2s"
        data["server"] = {"port": port}
        daemon = Daemon(write_config(tmp_path / "config.yaml", data), env)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: feed_stub.requests_for("/f.xml"))
            # An edit that routes to a notifier config.yaml does not define is rejected.
            watchlist.write_text("notify: [slak]\nterms:\n  - name: Mosul\n")
            report = wait_for(lambda: _health_when(base, lambda h: h["watchlists"]["rejected"]))
            assert "unknown notifier 'slak'" in report["watchlists"]["rejected"][0]["problems"][0]
            # Every watchlist file deleted: the last good set stays in force.
            watchlist.unlink()
            wait_for(lambda: _health_when(base, lambda h: not h["watchlists"]["rejected"]))
            assert _health_when(base, lambda h: h["watchlists"]["in_force"]), "still in force"
            feed_stub.serve("/f.xml", rss([fresh("after-delete")]))
            wait_for(lambda: len(slack.posts()) == 1)
            assert "Rutba" in json.dumps(slack.posts()[0])
        finally:
            stopped = daemon.stop()
    assert stopped.code == 0
    assert "watchlists_empty" in stopped.stderr and "keeping the last good set" in stopped.stderr


def test_json_source_whose_items_expression_finds_nothing_is_named_in_health(
    tmp_path: Path, feed_stub: FeedStub
) -> None:
    api = feed_stub.serve("/api", json.dumps({"articles": []}).encode(), "application/json")
    config = write_config(tmp_path / "config.yaml", base_config(
        tmp_path, [{"name": "api", "type": "json", "url": api, "items": "results",
                    "fields": {"id": "url", "title": "title"}}],
        [{"name": "console", "type": "console"}]))
    once(config)
    status = run_monitor("status", "--json", "--config", str(config))
    report = json.loads(status.stdout)
    assert status.code == 1 and report["status"] == "degraded"
    assert report["sources"]["api"]["note"] == "items expression 'results' found nothing"
    assert "source api: items expression 'results' found nothing" in report["reasons"]
    # An API whose list comes back: the note clears on the next successful poll.
    feed_stub.serve("/api", json.dumps({"results": []}).encode(), "application/json")
    once(config)
    report = json.loads(run_monitor("status", "--json", "--config", str(config)).stdout)
    assert report["sources"]["api"]["note"] is None and report["status"] == "ok"
