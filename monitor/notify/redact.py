"""Keep Slack secrets out of every log line (RELIABILITY.md B8, X04).

slack_sdk logs the full webhook URL at DEBUG (and, when its retry handlers run, at INFO),
and any library may format an exception that carries a URL or a token. Rather than trust
each call site, a ``logging.Filter`` rewrites records before any handler formats them:

* ``xoxb-…``-style tokens (``xox[abposre]-``, ``xapp-``) become ``xoxb-[REDACTED]``;
* webhook paths ``/services/T…/B…/secret`` (and ``/workflows/…``) become
  ``/services/[REDACTED]``;
* ``Bearer <anything>`` becomes ``Bearer [REDACTED]``.

``install_redaction()`` puts the filter on the slack_sdk loggers, on the logger our Slack
clients are given (``SDK_LOGGER_NAME``) and on the root logger's current handlers. A filter on
a *logger* only sees records created through that logger, which is why the notifiers hand the
SDK a logger of their own that carries the filter from birth.
"""

from __future__ import annotations

import logging
import re

SDK_LOGGER_NAME = "monitor.notify.slack.sdk"

_TOKEN = re.compile(r"\b(xox[abposre]|xapp)-[A-Za-z0-9._-]+")
_HOOK_PATH = re.compile(r"/(services|workflows)/[^\s\"'<>|,;)\]}]+")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[^\s\"',)]+")

# Every slack_sdk module that logs on its own logger (see `grep getLogger slack_sdk`).
_SDK_LOGGERS = (
    "slack_sdk",
    "slack_sdk.web.base_client",
    "slack_sdk.web.slack_response",
    "slack_sdk.web.legacy_base_client",
    "slack_sdk.webhook.client",
    "slack_sdk.proxy_env_variable_loader",
    "slack_sdk.http_retry.builtin_handlers",
    "slack_sdk.http_retry.handler",
    SDK_LOGGER_NAME,
)


def redact(text: str) -> str:
    """Return ``text`` with Slack tokens, webhook paths and bearer credentials masked."""
    text = _TOKEN.sub(lambda m: f"{m.group(1)}-[REDACTED]", text)
    text = _HOOK_PATH.sub(lambda m: f"/{m.group(1)}/[REDACTED]", text)
    return _BEARER.sub(lambda m: f"{m.group(1)} [REDACTED]", text)


class RedactingFilter(logging.Filter):
    """Rewrites a record's message, exception text and stack text in place; never drops it.

    The message is formatted here (``getMessage``) so a secret hidden in ``args`` is caught
    too; the exception text is pre-rendered into ``exc_text``, which standard formatters use
    instead of formatting ``exc_info`` again.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the record
            message = f"{record.msg!r} {record.args!r}"
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FILTER = RedactingFilter()


def _add_once(target: logging.Logger | logging.Handler) -> None:
    if not any(isinstance(f, RedactingFilter) for f in target.filters):
        target.addFilter(_FILTER)


def sdk_logger() -> logging.Logger:
    """The logger handed to slack_sdk clients, with the redaction filter already on it."""
    logger = logging.getLogger(SDK_LOGGER_NAME)
    _add_once(logger)
    return logger


def install_redaction() -> None:
    """Put the redaction filter on the slack_sdk loggers and on the root handlers.

    Idempotent. Call it at start-up after logging is configured; handlers added later
    (for example by a test's log capture) are still safe for records coming from the
    slack_sdk loggers, which carry the filter themselves.
    """
    for name in _SDK_LOGGERS:
        _add_once(logging.getLogger(name))
    for handler in logging.getLogger().handlers:
        _add_once(handler)
