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

Preflight (``monitor check --slack``): ``verify()`` asks Slack, without posting, whether the
token works and the bot can post in the channel, and returns ``SlackFinding``s for a person
to read. It reports every Slack or transport failure as a finding instead of raising, and
stops at the first failure the next call depends on (a bad token makes every later answer
``invalid_auth`` too).
"""

from __future__ import annotations

import email.utils
import http.client
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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
#: ``ok: false`` errors that mean the token itself is unusable, and what to do about each.
AUTH_ERRORS: Mapping[str, str] = {
    "invalid_auth": "Slack does not recognise it (mistyped, from another workspace, or "
    "rotated): copy the Bot User OAuth Token (xoxb-…) from the app's OAuth & Permissions "
    "page into SLACK_BOT_TOKEN",
    "not_authed": "no token reached Slack: set SLACK_BOT_TOKEN to the app's Bot User OAuth "
    "Token (xoxb-…)",
    "token_revoked": "it was revoked (the app was uninstalled or the token rotated): "
    "reinstall the app to the workspace and put its new Bot User OAuth Token in "
    "SLACK_BOT_TOKEN",
    "account_inactive": "the bot user or the app's installer was deactivated: reinstall the "
    "app from an active account and update SLACK_BOT_TOKEN",
}
#: Scopes that let a token post (``chat:write:bot`` is the classic apps' spelling).
POST_SCOPES = frozenset({"chat:write", "chat:write:bot"})
_LISTED = "not among the scopes Slack lists for the token"
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


@dataclass(frozen=True)
class SlackFinding:
    """One result of a Slack preflight check, for a person: ``ok`` False means act on it.

    ``text`` is a complete sentence naming what was checked and, when not ok, what to do;
    it never carries the token or the webhook URL.
    """

    ok: bool
    text: str


class _CheckStopped(Exception):
    """Ends ``verify`` early: later calls depend on the one that failed."""

    def __init__(self, finding: SlackFinding, error: str = "") -> None:
        self.finding = finding
        self.error = error  # Slack's error code, when Slack answered
        super().__init__(finding.text)


def _data(response: SlackResponse) -> Mapping[str, Any]:
    """The reply's JSON object, or {} for a body that was not one (HTML 5xx pages)."""
    return response.data if isinstance(response.data, dict) else {}


def _granted_scopes(response: SlackResponse) -> frozenset[str] | None:
    """The token's scopes from Slack's ``X-OAuth-Scopes`` header; None when it is absent."""
    header = _header(response.headers, "X-OAuth-Scopes")
    if header is None:
        return None
    return frozenset(s.strip() for s in header.split(",") if s.strip())


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
        found, _ = self._find_channel(wanted, self._call, exclude_archived=True)
        if found is None:
            raise NotifyError(f"conversations.list: channel {wanted!r} not found", retryable=False)
        self._channel_id = str(found["id"])
        return self._channel_id

    def _find_channel(
        self, wanted: str, call: Callable[..., SlackResponse], *, exclude_archived: bool
    ) -> tuple[Mapping[str, Any] | None, int]:
        """The channel named ``wanted`` in conversations.list, and how many were seen.

        ``call`` is ``_call`` (raises NotifyError) or ``_ask`` (raises ``_CheckStopped``), so
        the send path and the preflight share one pagination. Gives up after
        ``CHANNEL_LIST_MAX_PAGES`` pages.
        """
        seen = 0
        cursor: str | None = None
        for _ in range(CHANNEL_LIST_MAX_PAGES):
            page = call(
                "conversations.list",
                self._client.conversations_list,
                types="public_channel,private_channel",
                exclude_archived=exclude_archived,
                limit=HISTORY_PAGE,
                cursor=cursor,
            )
            for channel in page.get("channels") or []:
                seen += 1
                if not isinstance(channel, Mapping):
                    continue
                if channel.get("name") == wanted and channel.get("id"):
                    return channel, seen
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
        return None, seen

    # -- preflight (monitor check --slack)

    def verify(self) -> list[SlackFinding]:
        """Ask Slack, without posting, whether the token works and the bot can post here.

        Calls ``auth.test``, then (for a channel name) ``conversations.list`` and
        ``conversations.info``. One finding a question: the token, the scopes Slack lists
        for it (only when its reply carries ``X-OAuth-Scopes``), the channel. A Slack or
        transport failure becomes a failing finding, never an exception, and ends the check
        when later calls depend on it. Like ``send``, one attempt a call: the SDK's retries
        are off, so a Slack outage costs one timeout, not a minute of backoff.
        """
        findings: list[SlackFinding] = []
        try:
            auth = self._ask("auth.test", self._client.auth_test)
            identity = _data(auth)
            bot = str(identity.get("user") or identity.get("user_id") or "your bot")
            findings.append(self._token_finding(identity))
            scopes = _granted_scopes(auth)
            if scopes is not None and not scopes & POST_SCOPES:
                findings.append(self._scope_finding("chat:write", _LISTED, "post alerts"))
            findings += self._channel_findings(bot, scopes)
        except _CheckStopped as stopped:
            findings.append(stopped.finding)
        return findings

    def _token_finding(self, identity: Mapping[str, Any]) -> SlackFinding:
        user = identity.get("user") or "?"
        user_id = identity.get("user_id") or "?"
        team = identity.get("team") or identity.get("team_id") or "?"
        if identity.get("bot_id"):
            return self._finding(True, f"token ok: bot @{user} ({user_id}) in team {team}")
        return self._finding(
            True,
            f"token ok: user @{user} ({user_id}) in team {team}; this is a user token, so "
            "alerts will be posted as that person (a bot token, xoxb-…, is recommended)",
        )

    def _channel_findings(self, bot: str, scopes: frozenset[str] | None) -> list[SlackFinding]:
        """The channel's finding, after a missing history scope's when Slack listed scopes.

        Lists archived channels too (the send path does not), so that an archived channel
        is reported as archived rather than as missing.
        """
        if _CHANNEL_ID.fullmatch(self.channel):
            channel_id = self.channel
        else:
            wanted = self.channel.lstrip("#")
            found, seen = self._find_channel(wanted, self._ask, exclude_archived=False)
            if found is None:
                return [self._finding(False, self._not_listed(wanted, seen, bot, scopes))]
            channel_id = str(found["id"])
        try:
            reply = self._ask(
                "conversations.info", self._client.conversations_info, channel=channel_id
            )
        except _CheckStopped as stopped:
            if stopped.error != "channel_not_found":
                raise
            text = (
                f"channel {channel_id} not found (conversations.info: channel_not_found): check "
                "the id; Slack gives the same answer for a private channel the bot is not in, "
                f"so if it is private, /invite @{bot} there first"
            )
            return [self._finding(False, text)]
        found_channel = _data(reply).get("channel")
        channel: Mapping[str, Any] = found_channel if isinstance(found_channel, Mapping) else {}
        tag = f"#{channel.get('name') or self.channel.lstrip('#')}"
        label = f"{tag} ({channel_id})"
        private = bool(channel.get("is_private"))
        findings: list[SlackFinding] = []
        history = "groups:history" if private else "channels:history"
        if scopes is not None and history not in scopes:
            why = (
                "read the channel back when a send got no reply, so that such an alert is "
                "confirmed rather than dead-lettered"
            )
            findings.append(self._scope_finding(history, _LISTED, why))
        if channel.get("is_archived"):
            text = (
                f"channel {label} is archived: nothing can be posted there; unarchive it in "
                "Slack or set SLACK_CHANNEL to a live channel"
            )
            return [*findings, self._finding(False, text)]
        if channel.get("is_im"):
            text = f"direct message conversation {channel_id} exists"
            return [*findings, self._finding(True, text)]
        if not channel.get("is_member"):
            text = (
                f"channel {label} exists but the bot is not a member, so posts fail with "
                f"not_in_channel: in Slack, open {tag} and send /invite @{bot}"
            )
            return [*findings, self._finding(False, text)]
        kind = "private channel" if private else "channel"
        text = f"{kind} {label} exists and the bot is a member"
        return [*findings, self._finding(True, text)]

    def _not_listed(self, wanted: str, seen: int, bot: str, scopes: frozenset[str] | None) -> str:
        """Why ``#wanted`` may be missing from conversations.list, and what to do."""
        plural = "" if seen == 1 else "s"
        head = f"channel #{wanted} not found among the {seen} channel{plural} the token can list"
        if seen >= CHANNEL_LIST_MAX_PAGES * HISTORY_PAGE:
            head += f" (the check stops after {seen}: set SLACK_CHANNEL to the channel id)"
        if scopes is not None and "groups:read" not in scopes:
            private = (
                "the token lacks groups:read, so it cannot see private channels at all: if "
                f"#{wanted} is private, add groups:read to the app, reinstall it and "
                f"/invite @{bot} in the channel"
            )
        elif scopes is not None:
            private = (
                f"the token has groups:read, so if #{wanted} is private the bot is not in "
                f"it yet: /invite @{bot} in the channel"
            )
        else:
            private = (
                f"if #{wanted} is private, the bot sees it only with the groups:read scope "
                f"and once it is a member (/invite @{bot} in the channel)"
            )
        return f"{head}: check the spelling (SLACK_CHANNEL={self.channel!r}); {private}"

    def _scope_finding(self, needed: str, source: str, why: str) -> SlackFinding:
        """A missing scope; ``needed`` may be Slack's comma list meaning "any one of"."""
        scopes = [scope.strip() for scope in needed.split(",") if scope.strip()] or ["?"]
        if len(scopes) == 1:
            lack = f"the token lacks the {scopes[0]} scope, needed to {why}"
        else:
            lack = f"the token lacks a scope needed to {why}, one of {', '.join(scopes)}"
        return self._finding(
            False,
            f"{lack} ({source}): add it under OAuth & Permissions → Scopes → Bot Token Scopes "
            "in the Slack app, then reinstall the app to the workspace",
        )

    def _ask(self, what: str, method: Callable[..., SlackResponse], **kwargs: Any) -> SlackResponse:
        """``_call`` for the preflight: a failure becomes ``_CheckStopped`` with a finding."""
        try:
            return method(**kwargs)
        except SlackApiError as exc:
            error = str(_data(exc.response).get("error") or "")
            raise _CheckStopped(self._api_finding(what, exc.response), error) from None
        except Exception as exc:  # translated at the boundary; no chaining (may carry URLs)
            raise _CheckStopped(self._transport_finding(what, exc)) from None

    def _api_finding(self, what: str, response: SlackResponse) -> SlackFinding:
        data = _data(response)
        error = str(data.get("error") or "")
        status = int(response.status_code)
        if error in AUTH_ERRORS:
            return self._finding(
                False,
                f"token not valid ({what}: {error}): {AUTH_ERRORS[error]}",
            )
        if error == "missing_scope":
            needed = str(data.get("needed") or "?")
            return self._scope_finding(needed, f"{what} answered missing_scope", f"call {what}")
        failure = http_failure(what, status, error, response.headers)
        wait = f" in {failure.retry_after:g} s" if failure.retry_after is not None else " later"
        if status == 429 or error in ("ratelimited", "rate_limited"):
            advice = f"Slack is rate-limiting this token; try again{wait}"
        elif failure.retryable:
            advice = f"Slack or the way to it is failing; try again{wait}"
        else:
            advice = "Slack refused the request; see the error code in Slack's API docs"
        return self._finding(False, f"Slack API at {self._api_host()}: {failure}: {advice}")

    def _transport_finding(self, what: str, exc: BaseException) -> SlackFinding:
        if isinstance(exc, TimeoutError):
            detail = f"{what}: no reply within {self.timeout:g} s"
        elif isinstance(exc, URLError):
            detail = str(transport_failure(what, exc))
        else:
            detail = f"{what}: {type(exc).__name__}: {exc}"[:250]
        return self._finding(
            False,
            f"cannot reach the Slack API at {self._api_host()} ({detail}): check the network, "
            "a proxy (HTTPS_PROXY) or the notifier's api_url",
        )

    def _api_host(self) -> str:
        parts = urlsplit(self.api_url)
        host = parts.hostname or "?"
        return f"{host}:{parts.port}" if parts.port else host

    def _finding(self, ok: bool, text: str) -> SlackFinding:
        """A finding with secrets masked: Slack-shaped tokens, and this token verbatim."""
        token = self._client.token or ""
        if len(token) >= 8:
            text = text.replace(token, "[REDACTED]")
        return SlackFinding(ok, redact(text))

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
        """A webhook has no read-only call: the only test is a post, which a check must
        not make. One ok finding says so, so callers treat both notifiers alike."""
        return [
            SlackFinding(
                True,
                f"incoming webhook ({self._host}): cannot be checked without posting a "
                "message; the first alert will show whether it works",
            )
        ]

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
