"""Finding a Slack channel by name, shared by the notifier and the preflight.

``conversations.history`` (reconcile) and ``conversations.info`` (preflight) need a channel
id, while config may name the channel (``#osint-alerts``). The notifier resolves a name once
to post and read back; the preflight lists archived channels too, to say why a name is not
usable. Both walk ``conversations.list`` the same way, here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from slack_sdk import WebClient
from slack_sdk.web import SlackResponse

CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{6,}")  # what a channel id looks like, vs a name
CHANNEL_LIST_PAGE = 200
CHANNEL_LIST_MAX_PAGES = 20


def find_channel(
    client: WebClient,
    wanted: str,
    call: Callable[..., SlackResponse],
    *,
    exclude_archived: bool,
) -> tuple[Mapping[str, Any] | None, int]:
    """The channel named ``wanted`` in conversations.list, and how many were seen.

    ``call(what, method, **kwargs)`` makes one call and raises on failure: the notifier's
    ``_call`` (NotifyError) or the preflight's ``_ask`` (a finding), so the send path and the
    preflight share one pagination. Gives up after ``CHANNEL_LIST_MAX_PAGES`` pages.
    """
    seen = 0
    cursor: str | None = None
    for _ in range(CHANNEL_LIST_MAX_PAGES):
        page = call(
            "conversations.list",
            client.conversations_list,
            types="public_channel,private_channel",
            exclude_archived=exclude_archived,
            limit=CHANNEL_LIST_PAGE,
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
