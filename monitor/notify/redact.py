"""Keep Slack secrets out of every log line (RELIABILITY.md B8, X04).

slack_sdk logs the full webhook URL at DEBUG (and, when its retry handlers run, at INFO),
and any library may format an exception that carries a URL or a token. Rather than trust
each call site, a ``logging.Filter`` rewrites records before any handler formats them:

* ``xoxb-…``-style tokens (``xox[abposre]-``, ``xapp-``) become ``xoxb-[REDACTED]``;
* webhook paths ``/services/T…/B…/secret`` (and ``/workflows/…``) become
  ``/services/[REDACTED]``;
* ``Bearer <anything>`` becomes ``Bearer [REDACTED]``;
* credentials in a URL (``http://user:password@proxy``) become ``http://[REDACTED]@proxy``:
  the SDK logs the proxy URL it took from ``HTTPS_PROXY`` at DEBUG.

``install_redaction()`` puts the filter on the slack_sdk loggers, on the logger our Slack
clients are given (``SDK_LOGGER_NAME``) and on the root logger's current handlers. A filter on
a *logger* only sees records created through that logger, which is why the notifiers hand the
SDK a logger of their own that carries the filter from birth.

The same loggers also carry ``SdkDemotingFilter``: a failed send is reported once, by the
outbox (``alert_retry`` / ``alert_dead``), so the SDK's own ERROR line about the same failure
("Failed to send a request…", "Failed to decode Slack API response…") is demoted to DEBUG,
where it is still there for whoever runs with ``log_level: DEBUG``.
"""

from __future__ import annotations

import logging
import re

SDK_LOGGER_NAME = "monitor.notify.slack.sdk"

_TOKEN = re.compile(r"\b(xox[abposre]|xapp)-[A-Za-z0-9._-]+")
_HOOK_PATH = re.compile(r"/(services|workflows)/(?!\[REDACTED\])[^\s\"'<>|,;)\]}]+")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[^\s\"',)]+")
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/?#@\"'<>]+@")

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

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def redact(text: str) -> str:
    """Return ``text`` with Slack tokens, webhook paths and bearer credentials masked.

    Idempotent (redacting twice gives the same text), since a record may pass both the
    filter and the JSON formatter's own pass.
    """
    text = _TOKEN.sub(lambda m: f"{m.group(1)}-[REDACTED]", text)
    text = _HOOK_PATH.sub(lambda m: f"/{m.group(1)}/[REDACTED]", text)
    text = _URL_USERINFO.sub(lambda m: f"{m.group(1)}[REDACTED]@", text)
    return _BEARER.sub(lambda m: f"{m.group(1)} [REDACTED]", text)


class RedactingFilter(logging.Filter):
    """Rewrites a record's message, exception text, stack text and ``extra=`` attributes in
    place; never drops it.

    The message is formatted here (``getMessage``) so a secret hidden in ``args`` is caught
    too; the exception text is pre-rendered into ``exc_text``, which standard formatters use
    instead of formatting ``exc_info`` again. Extra attributes are covered because a JSON
    formatter writes them out as fields.
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
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRS:
                text = value if isinstance(value, str) else _safe_str(value)
                cleaned = redact(text)
                if cleaned != text or isinstance(value, str):
                    setattr(record, key, cleaned)
        return True


def _safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception:  # an extra whose __str__ fails must not lose the record
        return f"<unprintable {type(value).__name__}>"


class SdkDemotingFilter(logging.Filter):
    """Turns a slack_sdk record of any level into a DEBUG record (its level kept in
    ``sdk_level``), and lets it through only where that logger has DEBUG enabled.

    The outbox owns the one line an operator sees per failed send (with the alert id and
    what happens next); the SDK's own WARNING/ERROR about the same request would be a
    second line for one failure. The level check is repeated here because the logger
    checked the original level before the filter ran, and handlers usually have no level
    of their own.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.DEBUG:
            record.sdk_level = record.levelname
            record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


_FILTER = RedactingFilter()
_DEMOTE = SdkDemotingFilter()


def _add_once(target: logging.Logger | logging.Handler, new: logging.Filter) -> None:
    if not any(type(f) is type(new) for f in target.filters):
        target.addFilter(new)


def sdk_logger() -> logging.Logger:
    """The logger handed to slack_sdk clients, redacting and demoting from birth."""
    logger = logging.getLogger(SDK_LOGGER_NAME)
    _add_once(logger, _FILTER)
    _add_once(logger, _DEMOTE)
    return logger


def install_redaction() -> None:
    """Put the redaction filter on the slack_sdk loggers and on the root handlers, and the
    demoting filter on the slack_sdk loggers.

    Idempotent. Call it at start-up after logging is configured; handlers added later
    (for example by a test's log capture) are still safe for records coming from the
    slack_sdk loggers, which carry the filter themselves.
    """
    for name in _SDK_LOGGERS:
        _add_once(logging.getLogger(name), _FILTER)
        _add_once(logging.getLogger(name), _DEMOTE)
    for handler in logging.getLogger().handlers:
        _add_once(handler, _FILTER)
