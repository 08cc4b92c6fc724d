"""Observability: /healthz and /metrics of a running daemon tell its state, no secrets."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tests.harness.daemon import Daemon, base_config, write_config
from tests.harness.feeds import Entry, rss
from tests.harness.feedstub import FeedStub
from tests.harness.probes import free_port, get_text
from tests.harness.slackstub import Reply, SlackStub

pytestmark = pytest.mark.timeout(90)


def test_health_and_metrics_report_failures_without_secrets(
    tmp_path: Path, feed_stub: FeedStub
) -> None:
    good = feed_stub.serve("/good.xml", rss([Entry("Talks in Rutba", "https://n.example/1")]))
    broken = feed_stub.status("/broken.xml", 404, b"not here")
    port = free_port()
    with SlackStub(token="xoxb-CANARY-TOKEN") as slack:
        slack.script([Reply.error("channel_not_found")])
        config = base_config(
            tmp_path, [{"name": "good", "url": good, "interval": "1h"},
                       {"name": "broken", "url": broken, "interval": "1h"}],
            [{"name": "slack", "type": "slack", "token": "${SLACK_BOT_TOKEN}",
              "channel": "#alerts", "api_url": "${SLACK_API_URL}"}])
        config["server"] = {"port": port}
        config["log_level"] = "DEBUG"
        path = write_config(tmp_path / "config.yaml", config)
        daemon = Daemon(path, {"SLACK_BOT_TOKEN": "xoxb-CANARY-TOKEN",
                               "SLACK_API_URL": slack.api_url})
        health: dict[str, object] = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                health = json.loads(get_text(f"http://127.0.0.1:{port}/healthz"))
            except OSError:
                health = {}
            polled = health.get("sources", {}).get("broken", {}).get("failures", 0)
            if health.get("deliveries") == {"dead": 1} and polled:
                break
            time.sleep(0.2)
        page = get_text(f"http://127.0.0.1:{port}/metrics")
        stopped = daemon.stop()
    assert health["status"] == "degraded", health
    sources = health["sources"]
    assert isinstance(sources, dict)
    assert sources["good"]["ok"] is True and sources["broken"]["ok"] is False
    assert re.search(r'monitor_polls_total\{outcome="failed",source="broken"\} 1\.0', page)
    assert re.search(r'monitor_alerts_total\{watchlist="syria-iraq"\} 1\.0', page)
    assert re.search(r'monitor_deliveries_total\{destination="slack",outcome="dead"\} 1\.0',
                     page)
    assert "_created" not in page
    everything = json.dumps(health) + page + stopped.stdout + stopped.stderr
    assert "CANARY-TOKEN" not in everything
    assert stopped.code == 0
