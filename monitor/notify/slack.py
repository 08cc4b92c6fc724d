"""Slack notifiers: Web API (primary) and incoming webhook (quick start).

One attempt per ``send``; the outbox owns retries, backoff and Retry-After (as measured on
slack-sdk 3.48, the SDK's retry handlers sleep without a cap, crash on an HTTP-date
Retry-After and log the webhook URL, so they are switched off here with
``retry_handlers=[]``). What each Slack
outcome means for a retry (``NotifyError``: retryable, ambiguous) is ``slack_errors``'s
table (RELIABILITY.md B2, N01–N06); the message itself is ``slack_blocks``'s.

Secrets: neither the token nor the webhook URL appears in ``repr``, in exception text (SDK
exceptions are summarised and redacted, and not chained) or in logs (the SDK is given a
logger that carries ``redact.RedactingFilter``).

Preflight (``monitor check --slack``): each notifier's ``verify()`` asks Slack, without
posting, whether it could post, and returns ``SlackFinding``s for a person to read; the
checks live in ``slack_check``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse
from slack_sdk.webhook import WebhookClient, WebhookResponse

from monitor.errors import NotifyError
from monitor.models import Alert, Delivery
from monitor.notify.base import Notifier
from monitor.notify.redact import redact, sdk_logger
from monitor.notify.slack_blocks import build_slack_message
from monitor.notify.slack_channels import CHANNEL_ID, find_channel
from monitor.notify.slack_check import SlackFinding, verify_web_api, webhook_findings
from monitor.notify.slack_errors import api_failure, http_failure, transport_failure

# SlackFinding is re-exported: callers of ``verify()`` name it from here.
__all__ = [
    "EVENT_TYPE",
    "HISTORY_MAX_PAGES",
    "HISTORY_PAGE",
    "RECONCILE_MARGIN",
    "SlackFinding",
    "SlackWebApiNotifier",
    "SlackWebhookNotifier",
    "alert_id_of",
]

EVENT_TYPE = "monitor_alert"
RECONCILE_MARGIN = 300.0  # seconds before alert.created_at: clock skew between us and Slack
HISTORY_PAGE = 200
HISTORY_MAX_PAGES = 10


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
        self._channel_id: str | None = channel if CHANNEL_ID.fullmatch(channel) else None
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
        if CHANNEL_ID.fullmatch(channel):
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
        found, _ = find_channel(self._client, wanted, self._call, exclude_archived=True)
        if found is None:
            raise NotifyError(f"conversations.list: channel {wanted!r} not found", retryable=False)
        self._channel_id = str(found["id"])
        return self._channel_id

    # -- preflight (monitor check --slack): slack_check

    def verify(self) -> list[SlackFinding]:
        """Ask Slack, without posting, whether the token works and the bot can post here
        (``slack_check.verify_web_api``); problems come back as findings, never raised."""
        return verify_web_api(
            self._client, self.channel, api_url=self.api_url, timeout=self.timeout
        )

    def _call(
        self, what: str, method: Callable[..., SlackResponse], **kwargs: Any
    ) -> SlackResponse:
        try:
            return method(**kwargs)
        except SlackApiError as exc:
            raise api_failure(what, exc) from None
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
        self._host = parts.hostname
        self._client = WebhookClient(
            url=webhook_url,
            timeout=timeout,  # type: ignore[arg-type]  # urllib takes float seconds
            retry_handlers=[],
            logger=sdk_logger(),
        )

    def __repr__(self) -> str:
        return f"SlackWebhookNotifier(name={self.name!r})"

    def verify(self) -> list[SlackFinding]:
        """A webhook cannot be checked without posting: one ok finding says so."""
        return webhook_findings(self._host)

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
