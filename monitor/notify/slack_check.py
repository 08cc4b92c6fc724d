"""Slack preflight (``monitor check --slack``): can this notifier post, asked without posting.

``verify_web_api`` asks Slack whether the token works and the bot can post in the channel,
and returns ``SlackFinding``s for a person to read: one a question (the token, the scopes
Slack lists for it, the channel), each a complete sentence saying what to do when not ok. It
reports every Slack or transport failure as a finding instead of raising, and stops at the
first failure the next call depends on (a bad token makes every later answer
``invalid_auth`` too). Like a send, it makes one attempt a call: the SDK's retries are off,
so a Slack outage costs one timeout, not a minute of backoff.

Findings never carry the token or the webhook URL (RELIABILITY.md B8): each is redacted,
and the token is masked verbatim too.

A webhook has no read-only call (``webhook_findings``): the only test is a post, which a
check must not make. The notifiers' ``verify()`` methods call these functions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.error import URLError
from urllib.parse import urlsplit

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from monitor.notify.redact import redact
from monitor.notify.slack_channels import (
    CHANNEL_ID,
    CHANNEL_LIST_MAX_PAGES,
    CHANNEL_LIST_PAGE,
    find_channel,
)
from monitor.notify.slack_errors import header_value, http_failure, transport_failure

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


@dataclass(frozen=True)
class SlackFinding:
    """One result of a Slack preflight check, for a person: ``ok`` False means act on it.

    ``text`` is a complete sentence naming what was checked and, when not ok, what to do;
    it never carries the token or the webhook URL.
    """

    ok: bool
    text: str


class _CheckStopped(Exception):
    """Ends ``verify_web_api`` early: later calls depend on the one that failed."""

    def __init__(self, finding: SlackFinding, error: str = "") -> None:
        self.finding = finding
        self.error = error  # Slack's error code, when Slack answered
        super().__init__(finding.text)


def _data(response: SlackResponse) -> Mapping[str, Any]:
    """The reply's JSON object, or {} for a body that was not one (HTML 5xx pages)."""
    return response.data if isinstance(response.data, dict) else {}


def _granted_scopes(response: SlackResponse) -> frozenset[str] | None:
    """The token's scopes from Slack's ``X-OAuth-Scopes`` header; None when it is absent."""
    header = header_value(response.headers, "X-OAuth-Scopes")
    if header is None:
        return None
    return frozenset(s.strip() for s in header.split(",") if s.strip())


def verify_web_api(
    client: WebClient, channel: str, *, api_url: str, timeout: float
) -> list[SlackFinding]:
    """Ask Slack, without posting, whether ``client``'s token works and can post in ``channel``.

    Calls ``auth.test``, then (for a channel name) ``conversations.list`` and
    ``conversations.info``. One finding a question: the token, the scopes Slack lists for it
    (only when its reply carries ``X-OAuth-Scopes``), the channel. A Slack or transport
    failure becomes a failing finding, never an exception, and ends the check when later
    calls depend on it. ``api_url`` and ``timeout`` are only named in findings.
    """
    return _WebApiCheck(client, channel, api_url, timeout).run()


def webhook_findings(host: str) -> list[SlackFinding]:
    """A webhook has no read-only call: the only test is a post, which a check must not
    make. One ok finding says so, so callers treat both notifiers alike."""
    return [
        SlackFinding(
            True,
            f"incoming webhook ({host}): cannot be checked without posting a "
            "message; the first alert will show whether it works",
        )
    ]


class _WebApiCheck:
    """One run of ``verify_web_api``: the client, the configured channel and what to name."""

    def __init__(self, client: WebClient, channel: str, api_url: str, timeout: float) -> None:
        self._client = client
        self.channel = channel
        self.api_url = api_url
        self.timeout = timeout

    def run(self) -> list[SlackFinding]:
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
        if CHANNEL_ID.fullmatch(self.channel):
            channel_id = self.channel
        else:
            wanted = self.channel.lstrip("#")
            found, seen = find_channel(self._client, wanted, self._ask, exclude_archived=False)
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
        if seen >= CHANNEL_LIST_MAX_PAGES * CHANNEL_LIST_PAGE:
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
