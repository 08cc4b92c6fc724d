"""SlackStub: a real, threaded Slack-compatible HTTP server on 127.0.0.1 (RELIABILITY.md §3.4).

Endpoints:

* ``POST /api/chat.postMessage`` (JSON or form body, ``Authorization: Bearer <token>``)
* ``POST /api/conversations.history`` (newest first; ``oldest``/``latest``/``limit``/
  ``cursor``; metadata only with ``include_all_metadata``, as Slack does; ids only)
* ``POST /api/conversations.list`` (channels the stub has seen or was given with
  ``add_channel``; ``types``, ``exclude_archived``, ``limit``/``cursor`` as Slack reads them;
  a private channel is listed only to a member, as Slack does)
* ``POST /api/conversations.info`` (``channel`` id → id, name, ``is_member``,
  ``is_archived``, ``is_private``; ``channel_not_found`` for an unknown id and, as Slack
  answers, for a private channel the bot is not in)
* ``POST /api/auth.test`` (the bot identity: ``bot_name``/``bot_user_id``/``team`` …)
* ``POST /services/<T>/<B>/<secret>`` (incoming webhook; answers ``ok``)

Channels: a channel the stub creates because a message was posted to it is public, live
and has the bot as a member. ``add_channel(name, member=False / archived=True /
private=True)`` declares one that is not; a post to it then fails the way Slack's does
(``not_in_channel``, ``is_archived``, ``channel_not_found``).

Scopes: with ``scopes=None`` (the default) every scope is granted and no scope header is
sent. With a set, every ``/api/`` reply carries ``X-OAuth-Scopes`` (as Slack's do) and a
method whose scope is missing answers ``missing_scope`` with ``needed``/``provided``
(``chat:write``; ``channels:*``/``groups:*`` for public/private channels). conversations.list
drops the requested ``types`` the token cannot read and says ``missing_scope`` only when it
can read none of them.

Every request is appended to ``history`` (monotonic and wall time, path, headers, parsed
body, the response given), and to a JSONL file when ``jsonl_path`` is set. Tests script the
next replies with ``script([...], kind=...)``; each entry is a ``Reply`` or a
``(status, headers, body)`` tuple. Kinds: ``post`` (chat.postMessage and webhooks),
``history``, ``list`` (conversations.list), ``info`` (conversations.info), ``auth``
(auth.test). ``Reply.stall`` and ``Reply.reset`` model the ambiguous case: the post is recorded
(and, with ``accept=True``, stored as posted) but no reply ever arrives.

Optional behaviours: ``rate_limit()`` turns on a per-channel leaky bucket (burst 5, 1/s,
429 beyond), and ``validate`` (on by default) enforces Slack's documented size limits,
answering ``invalid_blocks``/``msg_too_long`` like Slack.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import re
import socket
import struct
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{6,}")
_WEBHOOK_PATH = re.compile(r"^/services/([^/]+)/([^/]+)/([^/]+)$")
#: The scope a conversations.list ``types`` entry needs.
_READ_SCOPE = {
    "public_channel": "channels:read",
    "private_channel": "groups:read",
    "mpim": "mpim:read",
    "im": "im:read",
}
SCRIPT_KINDS = ("post", "history", "list", "info", "auth")


@dataclass(frozen=True)
class Reply:
    """One scripted reply. ``body``: dict → JSON, str → text, None → a default for ``status``.

    ``normal``: handle the request as usual (after ``delay``). ``accept``: store the message
    as posted first. ``stall``: hold the connection this long, then close it without a reply.
    ``reset``: close with a TCP RST instead of replying.
    """

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    normal: bool = False
    accept: bool = False
    delay: float = 0.0
    stall: float = 0.0
    reset: bool = False

    @classmethod
    def ok(cls, delay: float = 0.0) -> Reply:
        return cls(normal=True, delay=delay)

    @classmethod
    def error(
        cls,
        error: str,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        **fields: Any,
    ) -> Reply:
        """``{"ok": false, "error": error, **fields}``; e.g. ``needed="channels:read"``."""
        body = {"ok": False, "error": error, **fields}
        return cls(status=status, headers=dict(headers or {}), body=body)

    @classmethod
    def ambiguous_stall(cls, seconds: float, accept: bool = True) -> Reply:
        return cls(accept=accept, stall=seconds)

    @classmethod
    def ambiguous_reset(cls, accept: bool = True) -> Reply:
        return cls(accept=accept, reset=True)


def _as_reply(item: Reply | tuple[Any, ...]) -> Reply:
    if isinstance(item, Reply):
        return item
    status, headers, body = ((*tuple(item), {}, None))[:3]
    body = None if body is Ellipsis else body  # `(429, {...}, ...)`: the default body
    return Reply(status=int(status), headers=dict(headers or {}), body=body)


def limit_problem(message: Mapping[str, Any]) -> str | None:
    """Slack's documented size limits; the error Slack would give, or None."""
    text = message.get("text") or ""
    blocks = message.get("blocks") or []
    if not text and not blocks:
        return "no_text"
    if _u16(str(text)) > 40_000:
        return "msg_too_long"
    if not isinstance(blocks, list) or len(blocks) > 50:
        return "invalid_blocks"
    return next((p for p in map(_block_problem, blocks) if p), None)


def _u16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _text_of(obj: Any) -> str:
    return str(obj.get("text") or "") if isinstance(obj, Mapping) else ""


def _block_problem(block: Any) -> str | None:
    if not isinstance(block, Mapping) or _u16(str(block.get("block_id") or "")) > 255:
        return "invalid_blocks"
    kind, text = block.get("type"), _text_of(block.get("text"))
    fields = block.get("fields") or []
    elements = block.get("elements") or []
    too_long = (
        (kind == "section" and (_u16(text) > 3_000 or len(fields) > 10))
        or (kind == "header" and _u16(text) > 150)
        or any(_u16(_text_of(f)) > 2_000 for f in fields)
        or (kind == "context" and len(elements) > 10)
        or any(_u16(_text_of(e)) > 3_000 for e in elements)
    )
    return "invalid_blocks" if too_long else None


class _Bucket:
    """Leaky bucket: ``burst`` tokens, refilled at ``rate`` per second."""

    def __init__(self, burst: int, rate: float) -> None:
        self.burst, self.rate = burst, rate
        self.tokens, self.at = float(burst), time.monotonic()

    def take(self) -> float | None:
        """None when allowed, else seconds until a token is available."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return None
        return (1 - self.tokens) / self.rate


class SlackStub:
    """The server plus its state. Use as a context manager or call ``start``/``stop``."""

    def __init__(
        self,
        token: str | None = "xoxb-stub-token",
        jsonl_path: Path | None = None,
        validate: bool = True,
        *,
        bot_name: str = "monitor",
        bot_user_id: str = "U012",
        bot_id: str = "B012",
        team: str = "Acme",
        team_id: str = "T012",
        scopes: Iterable[str] | None = None,
    ) -> None:
        self.token = token  # None: any bearer token is accepted
        self.jsonl_path = jsonl_path
        self.validate = validate
        self.bot_name, self.bot_user_id, self.bot_id = bot_name, bot_user_id, bot_id
        self.team, self.team_id = team, team_id
        self.scopes: frozenset[str] | None = None if scopes is None else frozenset(scopes)
        self.history: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []
        self.channels: dict[str, str] = {}  # id -> name
        self._flags: dict[str, dict[str, bool]] = {}  # id -> is_member/is_archived/is_private
        self._scripts: dict[str, deque[Reply]] = {kind: deque() for kind in SCRIPT_KINDS}
        self._buckets: dict[str, _Bucket] | None = None
        self._bucket_args = (5, 1.0)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._last_ts = 0.0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    # -- lifecycle and addresses

    def start(self) -> SlackStub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> SlackStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def webhook_url(self, secret: str = "WEBHOOK-SECRET", team: str = "T0", bot: str = "B0") -> str:
        return f"http://127.0.0.1:{self.port}/services/{team}/{bot}/{secret}"

    # -- scripting

    def script(self, replies: Iterable[Reply | tuple[Any, ...]], kind: str = "post") -> None:
        """Queue replies for the next requests of ``kind`` (``post``: chat.postMessage and
        webhooks; ``history``: conversations.history; ``list``: conversations.list;
        ``info``: conversations.info; ``auth``: auth.test). Normal handling resumes after."""
        with self._lock:
            self._scripts[kind].extend(_as_reply(r) for r in replies)

    def rate_limit(self, burst: int = 5, per_second: float = 1.0) -> None:
        """Answer 429 + Retry-After beyond a per-channel leaky bucket."""
        with self._lock:
            self._buckets, self._bucket_args = {}, (burst, per_second)

    def add_channel(
        self,
        name: str,
        *,
        member: bool = True,
        archived: bool = False,
        private: bool = False,
        channel_id: str | None = None,
    ) -> str:
        """Declare a channel (``#`` optional) and return its id.

        The id is the one a post to ``#name`` would get, unless ``channel_id`` is given;
        declaring a known channel again replaces its flags. Lets a test set up the states a
        preflight check must tell apart: not a member, archived, private.
        """
        bare = name.lstrip("#")
        cid = channel_id or _name_id(bare)
        with self._lock:
            self.channels[cid] = bare
            self._flags[cid] = {
                "is_member": member,
                "is_archived": archived,
                "is_private": private,
            }
        return cid

    def channel_state(self, channel_id: str) -> dict[str, Any] | None:
        """Slack's view of a channel (id, name, is_member, …), or None when unknown."""
        with self._lock:
            return self._channel_object(channel_id)

    def add_message(self, channel: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Store a message as if posted earlier (to fill history for reconcile tests)."""
        return self._store(self._channel_id(channel), body, via="seed")

    # -- observations

    def posts(self) -> list[dict[str, Any]]:
        """Messages the stub accepted as posted, oldest first."""
        with self._lock:
            return list(self.messages)

    def alert_ids(self) -> list[str | None]:
        """The alert id of every accepted post: metadata, else the first block's block_id."""
        return [message_alert_id(m) for m in self.posts()]

    def requests(self, path_part: str = "") -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.history if path_part in r["path"]]

    def wait_for_posts(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.posts()) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.posts()

    # -- internals used by the handler

    def _next_reply(self, kind: str) -> Reply | None:
        with self._lock:
            queue = self._scripts[kind]
            return queue.popleft() if queue else None

    def _begin(self, entry: dict[str, Any]) -> None:
        """Record a request on arrival, so a stalled or reset one is visible at once."""
        with self._lock:
            self.history.append(entry)

    def _finish(self, entry: dict[str, Any], response: dict[str, Any]) -> None:
        with self._lock:
            entry["response"] = response
            if self.jsonl_path is not None:
                with self.jsonl_path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(entry, default=str) + "\n")

    def _channel_id(self, channel: str) -> str:
        """The id for a posted-to channel, creating it (public, live, bot a member)."""
        with self._lock:
            if _CHANNEL_ID.fullmatch(channel):
                self.channels.setdefault(channel, channel.lower())
                self._flags.setdefault(channel, _default_flags())
                return channel
            name = channel.lstrip("#")
            cid = _name_id(name)
            if cid not in self.channels:  # a channel declared under an id of the test's own
                cid = next((k for k, v in self.channels.items() if v == name), cid)
            self.channels.setdefault(cid, name)
            self._flags.setdefault(cid, _default_flags())
            return cid

    def _channel_object(self, channel_id: str) -> dict[str, Any] | None:
        """Call with the lock held."""
        name = self.channels.get(channel_id)
        if name is None:
            return None
        flags = self._flags.get(channel_id) or _default_flags()
        return {"id": channel_id, "name": name, "is_channel": True, "is_im": False, **flags}

    def _channel_page(self, params: Mapping[str, Any], types: Iterable[str]) -> dict[str, Any]:
        """One conversations.list page: members-only private channels, archived filter."""
        wanted = set(types)
        exclude_archived = str(params.get("exclude_archived", "")).lower() in ("1", "true")
        limit = max(1, min(int(params.get("limit") or 100), 1000))
        offset = _decode_cursor(str(params.get("cursor") or ""))
        with self._lock:
            listed = [
                channel
                for channel in map(self._channel_object, self.channels)
                if channel is not None
                and ("private_channel" if channel["is_private"] else "public_channel") in wanted
                and (channel["is_member"] or not channel["is_private"])
                and not (exclude_archived and channel["is_archived"])
            ]
        page = listed[offset : offset + limit]
        more = offset + limit < len(listed)
        return {
            "ok": True,
            "channels": page,
            "response_metadata": {"next_cursor": _encode_cursor(offset + limit) if more else ""},
        }

    def _throttle(self, channel: str) -> float | None:
        with self._lock:
            if self._buckets is None:
                return None
            bucket = self._buckets.setdefault(channel, _Bucket(*self._bucket_args))
            return bucket.take()

    def _store(self, channel: str, body: Mapping[str, Any], via: str) -> dict[str, Any]:
        with self._lock:
            self._last_ts = max(time.time(), self._last_ts + 1e-6)
            message = {
                "ts": f"{self._last_ts:.6f}",
                "channel": channel,
                "via": via,
                "t_mono": time.monotonic(),
                "t_wall": time.time(),
                **{
                    k: body.get(k)
                    for k in (
                        "text",
                        "blocks",
                        "metadata",
                        "unfurl_links",
                        "unfurl_media",
                        "link_names",
                        "parse",
                    )
                },
                "body": dict(body),
            }
            self.messages.append(message)
            return message

    def _history_page(self, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = str(params.get("channel") or "")
        if channel not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        oldest = float(params.get("oldest") or 0)
        latest = float(params.get("latest") or math.inf)
        limit = max(1, min(int(params.get("limit") or 100), 999))
        offset = _decode_cursor(str(params.get("cursor") or ""))
        with_meta = str(params.get("include_all_metadata", "")).lower() in ("1", "true")
        with self._lock:
            found = [
                m
                for m in reversed(self.messages)
                if m["channel"] == channel and oldest < float(m["ts"]) < latest
            ]
        page = found[offset : offset + limit]
        more = offset + limit < len(found)
        return {
            "ok": True,
            "messages": [_as_history_message(m, with_meta) for m in page],
            "has_more": more,
            "response_metadata": {"next_cursor": _encode_cursor(offset + limit) if more else ""},
        }


def _name_id(name: str) -> str:
    return "C" + hashlib.sha1(name.encode()).hexdigest()[:10].upper()


def _default_flags() -> dict[str, bool]:
    return {"is_member": True, "is_archived": False, "is_private": False}


def message_alert_id(message: Mapping[str, Any]) -> str | None:
    metadata = message.get("metadata") or {}
    payload = metadata.get("event_payload") or {} if isinstance(metadata, Mapping) else {}
    if isinstance(payload, Mapping) and payload.get("alert_id"):
        return str(payload["alert_id"])
    blocks = message.get("blocks") or []
    if blocks and isinstance(blocks[0], Mapping):
        return blocks[0].get("block_id")
    return None


def _as_history_message(message: Mapping[str, Any], with_meta: bool) -> dict[str, Any]:
    out = {
        "type": "message",
        "ts": message["ts"],
        "text": message.get("text") or "",
        "blocks": message.get("blocks") or [],
    }
    if with_meta and message.get("metadata"):
        out["metadata"] = message["metadata"]
    return out


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _decode_cursor(cursor: str) -> int:
    if not cursor:
        return 0
    try:
        return int(base64.urlsafe_b64decode(cursor.encode()).decode().split(":", 1)[1])
    except (ValueError, IndexError):
        return 0


def _parse_body(content_type: str, raw: bytes, query: str) -> dict[str, Any]:
    params: dict[str, Any] = {k: v[-1] for k, v in parse_qs(query).items()}
    if "json" in content_type:
        loaded = json.loads(raw.decode("utf-8") or "{}")
        params.update(loaded if isinstance(loaded, dict) else {"_json": loaded})
        return params
    params.update({k: v[-1] for k, v in parse_qs(raw.decode("utf-8")).items()})
    for key in ("blocks", "metadata", "attachments"):  # form posts carry these as JSON text
        if isinstance(params.get(key), str):
            with contextlib.suppress(ValueError):
                params[key] = json.loads(params[key])
    return params


def _make_handler(stub: SlackStub) -> type[BaseHTTPRequestHandler]:
    class Handler(_StubHandler):
        pass

    Handler.stub = stub
    return Handler


class _StubHandler(BaseHTTPRequestHandler):
    stub: SlackStub

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the stub's history is the record."""

    def do_POST(self) -> None:
        started = (time.monotonic(), time.time())
        split = urlsplit(self.path)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = _parse_body(self.headers.get("Content-Type") or "", raw, split.query)
        except ValueError:
            body = {"_raw": raw.decode("utf-8", "replace")}
        entry = {
            "t_mono": started[0],
            "t_wall": started[1],
            "method": "POST",
            "path": split.path,
            "headers": dict(self.headers.items()),
            "body": body,
            "response": None,
        }
        self._entry: dict[str, Any] | None = entry
        self.stub._begin(entry)
        response = self._dispatch(split.path, body)
        if entry["response"] is None:  # not sent (a stall or a reset): record it now
            self.stub._finish(entry, response)

    def _dispatch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if path == "/api/chat.postMessage":
            return self._post(body)
        if path == "/api/conversations.history":
            return self._history(body)
        if path == "/api/conversations.list":
            return self._list(body)
        if path == "/api/conversations.info":
            return self._info(body)
        if path == "/api/auth.test":
            return self._auth_test(body)
        match = _WEBHOOK_PATH.match(path)
        if match:
            return self._webhook(body, f"webhook:{match.group(1)}/{match.group(2)}")
        return self._json(404, {}, {"ok": False, "error": "unknown_method"})

    # -- endpoints

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        scripted = self._scripted("post", body, via="api")
        if scripted is not None:
            return scripted
        denied = self._authed(body) or self._scope("chat:write")
        if denied:
            return denied
        channel = self.stub._channel_id(str(body.get("channel") or ""))
        refused = self._unpostable(channel)
        if refused:
            return refused
        problem = limit_problem(body) if self.stub.validate else None
        if problem:
            return self._json(200, {}, {"ok": False, "error": problem})
        wait = self.stub._throttle(channel)
        if wait is not None:
            retry = {"Retry-After": str(math.ceil(wait))}
            return self._json(429, retry, {"ok": False, "error": "ratelimited"})
        message = self.stub._store(channel, body, via="api")
        return self._json(
            200,
            {},
            {
                "ok": True,
                "channel": channel,
                "ts": message["ts"],
                "message": {"text": message["text"]},
            },
        )

    def _history(self, body: dict[str, Any]) -> dict[str, Any]:
        scripted = self._scripted("history", body, via="api")
        if scripted is not None:
            return scripted
        state = self.stub.channel_state(str(body.get("channel") or ""))
        needed = "groups:history" if state and state["is_private"] else "channels:history"
        return (
            self._authed(body)
            or self._scope(needed)
            or self._json(200, {}, self.stub._history_page(body))
        )

    def _list(self, body: dict[str, Any]) -> dict[str, Any]:
        scripted = self._scripted("list", body, via="api")
        if scripted is not None:
            return scripted
        denied = self._authed(body)
        if denied:
            return denied
        types = [t.strip() for t in str(body.get("types") or "public_channel").split(",")]
        scopes = self.stub.scopes
        readable = [t for t in types if scopes is None or _READ_SCOPE.get(t) in scopes]
        if not readable:
            needed = ",".join(_READ_SCOPE.get(t, t) for t in types)
            return self._missing_scope(needed)
        return self._json(200, {}, self.stub._channel_page(body, readable))

    def _info(self, body: dict[str, Any]) -> dict[str, Any]:
        scripted = self._scripted("info", body, via="api")
        if scripted is not None:
            return scripted
        state = self.stub.channel_state(str(body.get("channel") or ""))
        needed = "groups:read" if state and state["is_private"] else "channels:read"
        denied = self._authed(body) or self._scope(needed)
        if denied:
            return denied
        if state is None or (state["is_private"] and not state["is_member"]):
            return self._json(200, {}, {"ok": False, "error": "channel_not_found"})
        return self._json(200, {}, {"ok": True, "channel": state})

    def _auth_test(self, body: dict[str, Any]) -> dict[str, Any]:
        scripted = self._scripted("auth", body, via="api")
        if scripted is not None:
            return scripted
        stub = self.stub
        identity = {
            "ok": True,
            "url": f"https://{stub.team.lower()}.slack.com/",
            "team": stub.team,
            "user": stub.bot_name,
            "team_id": stub.team_id,
            "user_id": stub.bot_user_id,
            "bot_id": stub.bot_id,
            "is_enterprise_install": False,
        }
        return self._authed(body) or self._json(200, {}, identity)

    def _webhook(self, body: dict[str, Any], channel: str) -> dict[str, Any]:
        scripted = self._scripted("post", body, via="webhook", channel=channel)
        if scripted is not None:
            return scripted
        problem = limit_problem(body) if self.stub.validate else None
        if problem:
            return self._text(400, {}, "invalid_blocks" if problem != "no_text" else "no_text")
        wait = self.stub._throttle(channel)
        if wait is not None:
            return self._text(429, {"Retry-After": str(math.ceil(wait))}, "rate_limited")
        self.stub._store(channel, body, via="webhook")
        return self._text(200, {}, "ok")

    def _unpostable(self, channel: str) -> dict[str, Any] | None:
        """Slack's answer to a post into a channel the bot may not post in, else None."""
        state = self.stub.channel_state(channel)
        if state is None:
            return None
        if state["is_private"] and not state["is_member"]:
            return self._json(200, {}, {"ok": False, "error": "channel_not_found"})
        if state["is_archived"]:
            return self._json(200, {}, {"ok": False, "error": "is_archived"})
        if not state["is_member"]:
            return self._json(200, {}, {"ok": False, "error": "not_in_channel"})
        return None

    def _scope(self, needed: str) -> dict[str, Any] | None:
        scopes = self.stub.scopes
        if scopes is None or needed in scopes:
            return None
        return self._missing_scope(needed)

    def _missing_scope(self, needed: str) -> dict[str, Any]:
        provided = ",".join(sorted(self.stub.scopes or ()))
        body = {"ok": False, "error": "missing_scope", "needed": needed, "provided": provided}
        return self._json(200, {}, body)

    def _authed(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        header = self.headers.get("Authorization") or ""
        given = header[7:] if header.startswith("Bearer ") else str(body.get("token") or "")
        if not given:
            return self._json(200, {}, {"ok": False, "error": "not_authed"})
        if self.stub.token is not None and given != self.stub.token:
            return self._json(200, {}, {"ok": False, "error": "invalid_auth"})
        return None

    # -- scripted behaviours

    def _scripted(
        self, kind: str, body: dict[str, Any], via: str, channel: str | None = None
    ) -> dict[str, Any] | None:
        reply = self.stub._next_reply(kind)
        if reply is None:
            return None
        if reply.delay:
            self.stub._stop.wait(reply.delay)
        if reply.normal:
            return None
        if reply.accept:
            target = channel or self.stub._channel_id(str(body.get("channel") or ""))
            self.stub._store(target, body, via=via)
        if reply.reset:
            if reply.stall:
                self.stub._stop.wait(reply.stall)
            return self._rst()
        if reply.stall:
            self.stub._stop.wait(reply.stall)
            self.close_connection = True
            return {"action": "stall", "seconds": reply.stall, "accepted": reply.accept}
        if isinstance(reply.body, str):
            return self._text(reply.status, reply.headers, reply.body)
        default = {"ok": reply.status == 200} | (
            {}
            if reply.status == 200
            else {"error": "ratelimited" if reply.status == 429 else f"http_{reply.status}"}
        )
        return self._json(
            reply.status, reply.headers, reply.body if reply.body is not None else default
        )

    def _rst(self) -> dict[str, Any]:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True
        return {"action": "reset"}

    # -- responses

    def _json(self, status: int, headers: Mapping[str, str], body: Any) -> dict[str, Any]:
        return self._send(
            status, headers, json.dumps(body), "application/json; charset=utf-8", body
        )

    def _text(self, status: int, headers: Mapping[str, str], body: str) -> dict[str, Any]:
        return self._send(status, headers, body, "text/html; charset=utf-8", body)

    def _send(
        self, status: int, headers: Mapping[str, str], text: str, ctype: str, logged: Any
    ) -> dict[str, Any]:
        data = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        scopes = self.stub.scopes
        if scopes is not None and self.path.startswith("/api/"):
            self.send_header("X-OAuth-Scopes", ",".join(sorted(scopes)))
        self.end_headers()
        response = {"status": status, "headers": dict(headers), "body": logged}
        entry = getattr(self, "_entry", None)
        if entry is not None:
            # Recorded before the reply leaves, so a client that reads the history as soon
            # as it has its answer always finds the answer there too.
            self.stub._finish(entry, response)
        self.wfile.write(data)
        return response


def closed_port() -> int:
    """A loopback port with nothing listening (for 'connection refused')."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def lost_and_duplicated(counts: Counter[str | None], expected: int) -> dict[str, int]:
    """The checker of the fault tests: of ``expected`` distinct alerts, how many never
    reached Slack and how many extra posts there were, from the posts per alert id."""
    return {"lost": expected - len(counts), "duplicated": sum(n - 1 for n in counts.values())}
