"""Slack notifiers: Web API (primary) and incoming webhook (quick start).

One attempt per ``send``; the outbox owns retries, backoff and Retry-After (LIBRARIES.md:
the SDK's retry handlers sleep without a cap, crash on an HTTP-date Retry-After and log the
webhook URL, so they are switched off here with ``retry_handlers=[]``).

Outcome → ``NotifyError`` (RELIABILITY.md B2, N01–N06):

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

Secrets: neither the token nor the webhook URL appears in ``repr``, in exception text (SDK
exceptions are summarised and redacted, and not chained) or in logs (the SDK is given a
logger that carries ``redact.RedactingFilter``).
"""

from __future__ import annotations

import email.utils
import http.client
import math
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC
from typing import Any
from urllib.error import URLError
from urllib.parse import urlsplit

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web import SlackResponse
from slack_sdk.webhook import WebhookClient, WebhookResponse

from monitor.errors import NotifyError
from monitor.models import Alert, Delivery
from monitor.notify.base import Notifier
from monitor.notify.format import build_slack_message
from monitor.notify.redact import redact, sdk_logger

EVENT_TYPE = "monitor_alert"
RECONCILE_MARGIN = 300.0  # seconds before alert.created_at: clock skew between us and Slack
HISTORY_PAGE = 200
HISTORY_MAX_PAGES = 10
CHANNEL_LIST_MAX_PAGES = 20

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
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{6,}")


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


def _header(headers: Mapping[str, Any] | None, name: str) -> str | None:
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
        wait = parse_retry_after(_header(headers, "Retry-After"))
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


def _api_failure(what: str, exc: SlackApiError) -> NotifyError:
    response = exc.response
    data = response.data if isinstance(response.data, dict) else {}
    return http_failure(
        what, int(response.status_code), str(data.get("error") or ""), response.headers
    )


def alert_id_of(message: Mapping[str, Any]) -> str | None:
    """The alert id a posted message carries: metadata first, else the first block's id."""
    metadata = message.get("metadata") or {}
    if isinstance(metadata, Mapping) and metadata.get("event_type") == EVENT_TYPE:
        payload = metadata.get("event_payload") or {}
        if isinstance(payload, Mapping) and payload.get("alert_id"):
            return str(payload["alert_id"])
    blocks = message.get("blocks") or []
    if blocks and isinstance(blocks[0], Mapping) and blocks[0].get("block_id"):
        return str(blocks[0]["block_id"])
    return None


class SlackWebApiNotifier(Notifier):
    """``chat.postMessage`` with the alert id in message metadata; reconciles by history.

    ``channel`` may be an id (``C0123ABCD``) or a name (``#osint-alerts``); a name is resolved
    to an id for ``conversations.history`` from the post reply or ``conversations.list``.
    The token needs ``chat:write`` and, for ``reconcile``, ``channels:history`` (and
    ``groups:history`` for private channels, ``channels:read`` to resolve a name).
    """

    def __init__(
        self,
        name: str,
        token: str,
        channel: str,
        api_url: str = "https://slack.com/api/",
        timeout: float = 10,
    ) -> None:
        self.name = name
        self.channel = channel
        self.api_url = api_url
        self.timeout = timeout
        self._channel_id: str | None = channel if _CHANNEL_ID.fullmatch(channel) else None
        self._client = WebClient(
            token=token,
            base_url=api_url,
            timeout=timeout,  # type: ignore[arg-type]  # urllib takes float seconds
            retry_handlers=[],
            logger=sdk_logger(),
        )

    def __repr__(self) -> str:
        api_url = redact(self.api_url)
        return f"SlackWebApiNotifier(name={self.name!r}, channel={self.channel!r}, {api_url=!r})"

    def send(self, alert: Alert) -> Delivery:
        message = build_slack_message(alert)
        response = self._call(
            "chat.postMessage",
            self._client.chat_postMessage,
            channel=self.channel,
            text=message["text"],
            blocks=message["blocks"],
            metadata={"event_type": EVENT_TYPE, "event_payload": {"alert_id": alert.id}},
            unfurl_links=False,
            unfurl_media=False,
        )
        channel = str(response.get("channel") or self.channel)
        if _CHANNEL_ID.fullmatch(channel):
            self._channel_id = channel
        return Delivery(
            destination=self.name, ref=str(response.get("ts") or ""), extra={"channel": channel}
        )

    def reconcile(self, alert: Alert) -> Delivery | None:
        """Find ``alert`` among recent channel messages by its metadata alert id.

        Reads newest first from ``created_at - RECONCILE_MARGIN``, at most
        ``HISTORY_MAX_PAGES`` pages. Returns None when it is not there (the outbox may
        post). Raises NotifyError when history cannot be read, so the outbox retries the
        reconcile later instead of risking a duplicate.
        """
        channel = self._resolve_channel()
        oldest = max(0.0, alert.created_at - RECONCILE_MARGIN) if alert.created_at else 0.0
        cursor: str | None = None
        for _ in range(HISTORY_MAX_PAGES):
            page = self._call(
                "conversations.history",
                self._client.conversations_history,
                channel=channel,
                oldest=f"{oldest:.6f}",
                limit=HISTORY_PAGE,
                include_all_metadata=True,
                cursor=cursor,
            )
            for message in page.get("messages") or []:
                if alert_id_of(message) == alert.id:
                    return Delivery(
                        destination=self.name,
                        ref=str(message.get("ts") or ""),
                        reconciled=True,
                        extra={"channel": channel},
                    )
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return None
        return None

    def _resolve_channel(self) -> str:
        if self._channel_id:
            return self._channel_id
        wanted = self.channel.lstrip("#")
        cursor: str | None = None
        for _ in range(CHANNEL_LIST_MAX_PAGES):
            page = self._call(
                "conversations.list",
                self._client.conversations_list,
                types="public_channel,private_channel",
                exclude_archived=True,
                limit=HISTORY_PAGE,
                cursor=cursor,
            )
            for channel in page.get("channels") or []:
                if channel.get("name") == wanted and channel.get("id"):
                    self._channel_id = str(channel["id"])
                    return self._channel_id
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
        raise NotifyError(f"conversations.list: channel {wanted!r} not found", retryable=False)

    def _call(
        self, what: str, method: Callable[..., SlackResponse], **kwargs: Any
    ) -> SlackResponse:
        try:
            return method(**kwargs)
        except SlackApiError as exc:
            raise _api_failure(what, exc) from None
        except Exception as exc:  # translated at the boundary; no chaining (may carry URLs)
            raise transport_failure(what, exc) from None


class SlackWebhookNotifier(Notifier):
    """An incoming webhook. Any non-200 reply is a failure (the SDK returns, not raises).

    Webhooks carry no metadata and no history, so ``reconcile`` cannot tell: an ambiguous
    send may be posted twice (at most once more, RELIABILITY.md B2). The first block's
    ``block_id`` carries the alert id so a checker can count such duplicates.
    """

    def __init__(self, name: str, webhook_url: str, timeout: float = 10) -> None:
        parts = urlsplit(webhook_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"notifier {name!r}: webhook_url must be an http(s) URL")
        self.name = name
        self.timeout = timeout
        self._client = WebhookClient(
            url=webhook_url,
            timeout=timeout,  # type: ignore[arg-type]  # urllib takes float seconds
            retry_handlers=[],
            logger=sdk_logger(),
        )

    def __repr__(self) -> str:
        return f"SlackWebhookNotifier(name={self.name!r})"

    def send(self, alert: Alert) -> Delivery:
        message = build_slack_message(alert)
        body = {**message, "unfurl_links": False, "unfurl_media": False}
        try:
            response: WebhookResponse = self._client.send_dict(body)
        except Exception as exc:  # translated at the boundary; no chaining (the URL is secret)
            raise transport_failure("webhook", exc) from None
        if response.status_code != 200:
            raise http_failure(
                "webhook", response.status_code, (response.body or "").strip(), response.headers
            )
        return Delivery(destination=self.name)
