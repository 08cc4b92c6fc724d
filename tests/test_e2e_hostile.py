"""Acceptance: hostile sources beside good ones (RELIABILITY.md P01, P03, P05). Each bad
source ends in one clear error for that source, within the fetch deadline and without
memory growth past 100 MB, while the good feeds in the same run still alert."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.harness.daemon import base_config, run_monitor, write_config
from tests.harness.feeds import UNRELATED, rss, seed_story
from tests.harness.feedstub import FeedStub
from tests.harness.slackstub import SlackStub

pytestmark = pytest.mark.timeout(180)

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
<!ENTITY lol "lol">
<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>laughs</title><item><title>Rutba &lol9;</title>
<link>https://news.example/laughs</link></item></channel></rss>"""


def xxe(canary: Path) -> bytes:
    return (f'<?xml version="1.0"?>\n<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{canary}">]>\n'
            '<rss version="2.0"><channel><title>x</title><item><title>Rutba &xxe;</title>'
            "<link>https://news.example/xxe</link></item></channel></rss>").encode()


def test_hostile_sources_fail_alone_and_good_feeds_still_alert(
    tmp_path: Path, feed_stub: FeedStub
) -> None:
    canary = tmp_path / "canary.txt"
    canary.write_text("XXE-CANARY-SECRET")
    good = feed_stub.serve("/good.xml", rss([seed_story(), *UNRELATED]))
    hostile = {
        "bomb": feed_stub.compressed_bomb("/bomb.xml", "gzip"),
        "laughs": feed_stub.serve("/laughs.xml", BILLION_LAUGHS),
        "xxe": feed_stub.serve("/xxe.xml", xxe(canary)),
        "trickle": feed_stub.slowloris("/slow.xml", interval=1.0, max_seconds=30),
    }
    sources = [{"name": "good", "url": good}] + [
        {"name": name, "url": url} for name, url in hostile.items()]

    with SlackStub() as slack:
        env = {"SLACK_BOT_TOKEN": slack.token or "", "SLACK_API_URL": slack.api_url}
        notifiers = [{"name": "slack", "type": "slack", "token": "${SLACK_BOT_TOKEN}",
                      "channel": "#alerts", "api_url": "${SLACK_API_URL}"}]
        # Baseline: the same daemon with only the good feed, for the memory comparison.
        base_dir = tmp_path / "baseline"
        base_dir.mkdir()
        baseline = run_monitor("run", "--once", "--config", str(write_config(
            base_dir / "config.yaml", base_config(base_dir, sources[:1], notifiers))), env=env)
        assert baseline.code == 0, baseline.stderr
        slack_posts_baseline = len(slack.posts())

        config = write_config(tmp_path / "config.yaml", base_config(tmp_path, sources, notifiers))
        result = run_monitor("run", "--once", "--config", str(config), env=env)
        assert result.code == 0, result.stderr
        posts = slack.posts()[slack_posts_baseline:]

    assert len(posts) == 1 and "Rutba" in str(posts[0]), "the good feed still alerts"
    for name in hostile:
        failures = re.findall(rf"poll_failed source={name} .*", result.stderr)
        assert len(failures) == 1, f"{name}: {failures}\n{result.stderr}"
    assert re.search(r"poll_failed source=bomb .*reason=(max_bytes|encoding)", result.stderr)
    assert re.search(r"poll_failed source=laughs .*reason=xml_entities", result.stderr)
    assert re.search(r"poll_failed source=xxe .*reason=xml_entities", result.stderr)
    assert re.search(r"poll_failed source=trickle .*reason=deadline", result.stderr)
    # every fetch ended within the 5 s deadline; the whole run well within deadline + slack
    assert result.seconds < 5 + 15, result.seconds
    growth = result.peak_rss - baseline.peak_rss
    assert growth < 100 * 1024 * 1024, f"peak RSS grew by {growth / 1e6:.0f} MB"
    assert "XXE-CANARY-SECRET" not in result.stdout + result.stderr + str(posts)
    assert feed_stub.bytes_sent("/bomb.xml") < 12 * 1024 * 1024
