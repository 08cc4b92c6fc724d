"""One logging setup for monitor and the libraries it uses, configured once at start-up.

Lines are ``time level logger event key=value ...`` so an operator can grep them and a
test can assert on them. Slack secrets are redacted by a filter on every handler.
"""

from __future__ import annotations

import logging
import sys

from monitor.notify.redact import install_redaction


class _UtcFormatter(logging.Formatter):
    converter = __import__("time").gmtime

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return super().formatTime(record, "%Y-%m-%dT%H:%M:%S") + "Z"


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_UtcFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("apscheduler", "kafka", "urllib3", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # slack_sdk logs each failed request at ERROR; the outbox logs one line per failure.
    logging.getLogger("slack_sdk").setLevel(logging.CRITICAL)
    install_redaction()
