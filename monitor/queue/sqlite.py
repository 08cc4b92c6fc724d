"""The embedded queue: one SQLite file, durable across crashes, leases for redelivery.

Underneath the seam it is a table of messages with per-message leases: ``claim`` leases
ready messages, ``ack`` deletes one, ``nack`` makes one ready again later (or dead). A
``SqliteSubscription`` speaks the seam's poll / commit / retry in those terms. The file is
its own admin view: every call takes the connection's lock, so any thread may ask.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from monitor import metrics
from monitor.errors import StoreError
from monitor.queue.base import GROUPS, MAX_ATTEMPTS, Message, Queue, QueueAdmin, Subscription
from monitor.sqlite_util import SqliteDb

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    key TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'ready',
    available_at REAL NOT NULL,
    lease_until REAL,
    lease_token TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at REAL NOT NULL,
    UNIQUE (topic, key)
);
CREATE INDEX IF NOT EXISTS messages_ready ON messages (topic, state, available_at, seq);
"""
# The pair id shared with the store (monitor.datadir): a queue that is not its store's is
# refused at start instead of silently losing what the old queue held.
_META = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"


class SqliteQueue(Queue, QueueAdmin):
    """``lease``: how long a subscription's poll holds a message before another reader
    may take it (a reader that died gives its messages back this way)."""

    def __init__(self, path: Path, *, durability: str = "normal", lease: float = 60.0) -> None:
        self.db = SqliteDb(path, durability=durability)
        self.lease = lease
        for stmt in _SCHEMA.strip().split(";"):
            if stmt.strip():
                self.db.query(stmt)
        self.db.query(_META)

    # --- pairing with the store (monitor.datadir) ----------------------------------------
    def pair_id(self) -> str | None:
        rows = self.db.query("SELECT value FROM meta WHERE key = 'pair_id'")
        return str(rows[0][0]) if rows else None

    def set_pair_id(self, pair: str) -> None:
        with self.db.tx() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES ('pair_id', ?)"
                         " ON CONFLICT (key) DO UPDATE SET value = excluded.value", (pair,))

    def message_count(self) -> int:
        """Every message the queue holds, whatever its topic or state (dead ones too)."""
        count = self.db.query("SELECT COUNT(*) FROM messages")[0][0]
        assert isinstance(count, int)
        return count

    def publish_many(self, topic: str, messages: Iterable[tuple[str, dict[str, Any]]]) -> int:
        now = time.time()
        rows = [(topic, key, json.dumps(payload), now, now) for key, payload in messages]
        if not rows:
            return 0
        # Durable (fsynced) even under durability: normal: the contract says published
        # means stored, and the poll records items as seen in the other file next.
        try:
            with self.db.tx(durable=True, failpoint="queue_write") as conn:
                before = conn.total_changes
                conn.executemany(
                    "INSERT OR IGNORE INTO messages (topic, key, payload, available_at,"
                    " created_at) VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
                return conn.total_changes - before
        except StoreError:
            metrics.QUEUE_PUBLISH_ERRORS.labels("sqlite").inc()
            raise

    def claim(self, topic: str, limit: int, lease: float = 60.0) -> list[Message]:
        now = time.time()
        token = uuid.uuid4().hex
        with self.db.tx() as conn:
            rows = conn.execute(
                "SELECT seq, key, payload, attempts FROM messages WHERE topic = ? AND state ="
                " 'ready' AND available_at <= ? AND (lease_until IS NULL OR lease_until < ?)"
                " ORDER BY seq LIMIT ?",
                (topic, now, now, limit),
            ).fetchall()
            conn.executemany(
                "UPDATE messages SET lease_until = ?, lease_token = ?, attempts = attempts + 1"
                " WHERE seq = ?",
                [(now + lease, token, seq) for seq, *_ in rows],
            )
        return [
            Message(topic, key, json.loads(payload), attempts + 1, (seq, token))
            for seq, key, payload, attempts in rows
        ]

    def ack(self, message: Message) -> bool:
        seq, token = message.receipt
        with self.db.tx() as conn:
            cur = conn.execute(
                "DELETE FROM messages WHERE seq = ? AND lease_token = ?", (seq, token)
            )
            return cur.rowcount == 1

    def ack_many(self, messages: Sequence[Message]) -> int:
        """Remove processed messages in one transaction; returns how many were still ours."""
        if not messages:
            return 0
        with self.db.tx() as conn:
            before = conn.total_changes
            conn.executemany("DELETE FROM messages WHERE seq = ? AND lease_token = ?",
                             [m.receipt for m in messages])
            return conn.total_changes - before

    def release(self, messages: Sequence[Message]) -> None:
        """Give up the leases of messages not processed: ready again at once."""
        if not messages:
            return
        with self.db.tx() as conn:
            conn.executemany("UPDATE messages SET lease_until = NULL, lease_token = NULL"
                             " WHERE seq = ? AND lease_token = ?", [m.receipt for m in messages])

    def nack(self, message: Message, *, delay: float, error: str,
             max_attempts: int = MAX_ATTEMPTS) -> bool:
        seq, token = message.receipt
        dead = message.attempts >= max_attempts
        with self.db.tx() as conn:
            conn.execute(
                "UPDATE messages SET state = ?, available_at = ?, lease_until = NULL,"
                " lease_token = NULL, last_error = ? WHERE seq = ? AND lease_token = ?",
                ("dead" if dead else "ready", time.time() + delay, error[:2000], seq, token),
            )
        return dead

    # --- the seam ------------------------------------------------------------------------
    def subscribe(self, topic: str, group: str | None = None) -> Subscription:
        return SqliteSubscription(self, topic, group or GROUPS.get(topic, topic))

    @property
    def admin(self) -> QueueAdmin:
        return self

    def depth(self, topic: str) -> int:
        rows = self.db.query(
            "SELECT COUNT(*) FROM messages WHERE topic = ? AND state = 'ready'", (topic,)
        )
        count = rows[0][0]
        assert isinstance(count, int)
        return count

    def dead(self, topic: str) -> list[tuple[str, str]]:
        rows = self.db.query(
            "SELECT key, last_error FROM messages WHERE topic = ? AND state = 'dead' ORDER BY seq",
            (topic,),
        )
        return [(str(k), str(e or "")) for k, e in rows]

    def ping(self) -> None:
        self.db.ping()

    def close(self) -> None:
        self.db.close()


class SqliteSubscription(Subscription):
    """Poll is a claim under a lease; commit deletes; retry is a nack. What a poll handed
    out and was not finished by the next poll is released first, so it comes again at
    once instead of when its lease expires."""

    def __init__(self, queue: SqliteQueue, topic: str, group: str) -> None:
        self.queue, self.topic, self.group = queue, topic, group
        self._out: dict[Any, Message] = {}

    def poll(self, limit: int, timeout: float = 0.0) -> list[Message]:
        if self._out:
            self.queue.release(list(self._out.values()))
            self._out.clear()
        messages = self.queue.claim(self.topic, limit, self.queue.lease)
        self._out = {m.receipt: m for m in messages}
        return messages

    def commit(self, messages: Sequence[Message]) -> None:
        self.queue.ack_many(messages)
        for m in messages:
            self._out.pop(m.receipt, None)

    def retry(self, message: Message, *, delay: float, error: str,
              max_attempts: int = MAX_ATTEMPTS) -> bool:
        dead = self.queue.nack(message, delay=delay, error=error, max_attempts=max_attempts)
        self._out.pop(message.receipt, None)
        return dead

    def close(self) -> None:
        if self._out:  # best effort: a lease left behind expires anyway
            with contextlib.suppress(Exception):
                self.queue.release(list(self._out.values()))
            self._out.clear()
