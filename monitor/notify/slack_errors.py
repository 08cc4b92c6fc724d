"""What a Slack reply or exception means for retrying (RELIABILITY.md B2, N01–N06).

The notifiers make one attempt per call and the outbox owns retries, backoff and
Retry-After, so every outcome becomes a ``NotifyError`` here, once, for the Web API, the
webhook and the preflight alike:

=====================================  =========  ===========  ==========================
outcome                                retryable  ambiguous    notes
=====================================  =========  ===========  ==========================
429 / ``ratelimited``                  yes        no           ``retry_after`` from header
5xx (500, 502, 503, 504, …)            yes        no
connect failed (refused, DNS, TLS)     yes        no           request never sent
read timeout / reset after sending     yes        **yes**      Web API: ``reconcile``
``internal_error`` and friends         yes        no
any other 4xx / ``ok: false``          no         no           a person has to act
=====================================  =========  ===========  ==========================

Exception text is summarised and redacted (``redact``) and never chained, so neither the
token nor the webhook URL reaches a log through an error.
"""

from __future__ import annotations

import email.utils
import http.client
import math
import time
from collections.abc import Mapping
from datetime import UTC
from typing import Any
from urllib.error import URLError

from slack_sdk.errors import SlackApiError, SlackClientError

from monitor.errors import NotifyError
from monitor.notify.redact import redact

TRANSIENT_ERRORS = frozenset(
    {
        "ratelimited",
        "rate_limited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
    }
)
#: Documented permanent errors; any other ``ok: false`` error is treated as permanent too.
PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "invalid_auth",
        "account_inactive",
        "token_revoked",
        "is_archived",
        "msg_too_long",
        "invalid_blocks",
        "not_authed",
        "missing_scope",
        "no_text",
        "invalid_metadata_format",
        "invalid_metadata_schema",
        "restricted_action",
        "invalid_payload",
        "no_service",
        "channel_is_archived",
        "action_prohibited",
    }
)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date.

    Missing, unparsable, negative, non-finite values and dates in the past give None (the
    caller falls back to its backoff). Never raises. No cap here: the outbox caps.
    """
    if value is None:
        return None
    value = value.strip()
    seconds: float | None
    try:
        seconds = float(value)
    except ValueError:
        seconds = _seconds_until(value, time.time() if now is None else now)
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def _seconds_until(http_date: str, now: float) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; be lenient with ones that omit it
        when = when.replace(tzinfo=UTC)
    try:
        return when.timestamp() - now
    except (OverflowError, OSError, ValueError):
        return None


def header_value(headers: Mapping[str, Any] | None, name: str) -> str | None:
    """Header ``name`` (any case) from a reply's headers, the first value if a list."""
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return str(value[0] if isinstance(value, list) and value else value)
    return None


def http_failure(
    what: str, status: int, error: str, headers: Mapping[str, Any] | None
) -> NotifyError:
    """A NotifyError for a reply that said no (status and Slack error code)."""
    summary = f"{what} failed: HTTP {status} error={redact(error or 'unknown')[:100]}"
    if status == 429 or error in ("ratelimited", "rate_limited"):
        wait = parse_retry_after(header_value(headers, "Retry-After"))
        return NotifyError(summary, retryable=True, retry_after=wait)
    if status >= 500 or error in TRANSIENT_ERRORS:
        return NotifyError(summary, retryable=True)
    return NotifyError(summary, retryable=False)


def transport_failure(what: str, exc: BaseException) -> NotifyError:
    """A NotifyError for an exception raised while talking to Slack.

    urllib wraps errors raised while connecting or sending in ``URLError``: the request was
    not delivered, so retrying is safe. Errors raised while waiting for the reply (timeout,
    reset, a truncated or garbled response) come through raw: Slack may have posted it.
    """
    detail = redact(f"{type(exc).__name__}: {exc}")[:200]
    if isinstance(exc, URLError):
        reason = exc.reason
        kind = type(reason).__name__ if isinstance(reason, BaseException) else "URLError"
        return NotifyError(
            f"{what}: could not connect ({kind}: {redact(str(reason))[:150]})", retryable=True
        )
    if isinstance(exc, (OSError, http.client.HTTPException)):
        return NotifyError(
            f"{what}: no reply after sending ({detail}); the message may have been posted",
            retryable=True,
            ambiguous=True,
        )
    if isinstance(exc, SlackClientError):
        return NotifyError(f"{what}: {detail}", retryable=False)
    return NotifyError(f"{what}: unexpected {detail}", retryable=True, ambiguous=True)


def api_failure(what: str, exc: SlackApiError) -> NotifyError:
    """``http_failure`` for the Web API's ``SlackApiError`` (it carries the reply)."""
    response = exc.response
    data = response.data if isinstance(response.data, dict) else {}
    return http_failure(
        what, int(response.status_code), str(data.get("error") or ""), response.headers
    )
