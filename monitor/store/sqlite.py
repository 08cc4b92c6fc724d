"""The embedded store: one SQLite file for feed state, seen items, alerts and deliveries."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from monitor.models import Alert, Item
from monitor.sqlite_util import SqliteDb
from monitor.store.base import (
    DEAD,
    PENDING,
    SENDING,
    SENT,
    SKIPPED,
    DeliveryTask,
    DestinationState,
    Priming,
    SourceState,
    Store,
    identities,
)

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS source_state (
        source TEXT PRIMARY KEY, cursor TEXT NOT NULL DEFAULT '{}', last_poll REAL,
        last_success REAL, last_error TEXT, failures INTEGER NOT NULL DEFAULT 0,
        items_total INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE IF NOT EXISTS seen (
        identity TEXT PRIMARY KEY, item_key TEXT NOT NULL, first_seen REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS items (
        item_key TEXT PRIMARY KEY, source TEXT NOT NULL, payload TEXT NOT NULL,
        seen_at REAL NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS items_seen_at ON items (seen_at)",
    """CREATE TABLE IF NOT EXISTS alerts (
        id TEXT PRIMARY KEY, watchlist TEXT NOT NULL, payload TEXT NOT NULL,
        created_at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS deliveries (
        alert_id TEXT NOT NULL, destination TEXT NOT NULL, state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL, lease_until REAL,
        lease_token TEXT, ambiguous INTEGER NOT NULL DEFAULT 0, last_error TEXT,
        ref TEXT, reconciled INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL,
        updated_at REAL NOT NULL, PRIMARY KEY (alert_id, destination))""",
    "CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (state, next_at)",
    """CREATE TABLE IF NOT EXISTS destination_pause (
        destination TEXT PRIMARY KEY, until REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS destination_state (
        destination TEXT PRIMARY KEY, failures INTEGER NOT NULL DEFAULT 0, last_error TEXT,
        last_failure REAL, last_success REAL)""",
]
# Columns added after the first release: added in place to older files.
_SOURCE_STATE_COLUMNS = {
    "items_last": "INTEGER NOT NULL DEFAULT 0", "next_poll": "REAL", "note": "TEXT",
    "primed_at": "REAL", "primed_items": "INTEGER NOT NULL DEFAULT 0",
    "primed_alerted": "INTEGER NOT NULL DEFAULT 0", "primed_backfill": "TEXT",
}
# The pair id shared with the queue (monitor.datadir): a store and a queue that do not
# belong together are refused at start instead of losing or re-alerting items.
_META = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
#: The failpoint hit inside every write transaction (monitor/failpoints.py).
WRITE = "store_write"
_STATE_COLUMNS = ("cursor, last_poll, last_success, last_error, failures, items_total,"
                  " items_last, next_poll, note, primed_at, primed_items, primed_alerted,"
                  " primed_backfill")


class SqliteStore(Store):
    def __init__(self, path: Path, *, durability: str = "normal") -> None:
        self.db = SqliteDb(path, durability=durability)
        for stmt in _SCHEMA:
            self.db.query(stmt)
        self.db.add_columns("source_state", _SOURCE_STATE_COLUMNS)
        self.db.query(_META)

    # --- pairing with the queue (monitor.datadir) ----------------------------------------
    def pair_id(self) -> str | None:
        rows = self.db.query("SELECT value FROM meta WHERE key = 'pair_id'")
        return str(rows[0][0]) if rows else None

    def set_pair_id(self, pair: str) -> None:
        with self.db.tx() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES ('pair_id', ?)"
                         " ON CONFLICT (key) DO UPDATE SET value = excluded.value", (pair,))

    def has_records(self) -> bool:
        """Whether the store records anything seen, polled or alerted (False: empty)."""
        rows = self.db.query("SELECT EXISTS (SELECT 1 FROM seen) OR EXISTS (SELECT 1 FROM"
                             " alerts) OR EXISTS (SELECT 1 FROM source_state)")
        return bool(rows[0][0])

    def last_matched_seen_at(self) -> float | None:
        """When the item of the newest stored alert was seen (None: no alert yet)."""
        rows = self.db.query(
            "SELECT MAX(i.seen_at) FROM (SELECT COALESCE(NULLIF(json_extract(payload,"
            " '$.item.key'), ''), json_extract(payload, '$.item.id')) AS k FROM alerts"
            " ORDER BY created_at DESC LIMIT 50) a JOIN items i ON i.item_key = a.k")
        value = rows[0][0] if rows else None
        return float(value) if value is not None else None  # type: ignore[arg-type]

    def seen_items_since(self, since: float) -> list[tuple[float, Item]]:
        """(seen_at, item) of every item seen at or after ``since``, oldest first."""
        rows = self.db.query(
            "SELECT seen_at, payload FROM items WHERE seen_at >= ? ORDER BY seen_at", (since,))
        return [(float(t), Item.from_dict(json.loads(str(p))))  # type: ignore[arg-type]
                for t, p in rows]

    # --- sources -------------------------------------------------------------------------
    def source_state(self, source: str) -> SourceState | None:
        rows = self.db.query(
            f"SELECT {_STATE_COLUMNS} FROM source_state WHERE source = ?", (source,)
        )
        if not rows:
            return None
        cursor, *rest = rows[0]
        return SourceState(source, json.loads(str(cursor)), *rest)  # type: ignore[arg-type]

    def record_poll(
        self,
        source: str,
        *,
        cursor: dict[str, Any] | None,
        error: str | None,
        items: int,
        fetched: int | None = None,
        note: str | None = None,
        primed: Priming | None = None,
    ) -> int:
        now = time.time()
        with self.db.tx(failpoint=WRITE) as conn:
            conn.execute("INSERT OR IGNORE INTO source_state (source) VALUES (?)", (source,))
            if error is None:
                conn.execute(
                    "UPDATE source_state SET cursor = COALESCE(?, cursor), last_poll = ?,"
                    " last_success = ?, failures = 0, items_total = items_total + ?,"
                    " items_last = COALESCE(?, items_last), note = ? WHERE source = ?",
                    (json.dumps(cursor) if cursor is not None else None, now, now, items,
                     fetched, note, source),
                )
                if primed is not None:
                    conn.execute(
                        "UPDATE source_state SET primed_at = ?, primed_items = ?,"
                        " primed_alerted = ?, primed_backfill = ? WHERE source = ?",
                        (now, primed.items, primed.alerted, primed.backfill, source),
                    )
            else:
                conn.execute(
                    "UPDATE source_state SET last_poll = ?, last_error = ?, failures ="
                    " failures + 1 WHERE source = ?",
                    (now, error[:2000], source),
                )
            row = conn.execute(
                "SELECT failures FROM source_state WHERE source = ?", (source,)
            ).fetchone()
        return int(row[0])

    def set_next_poll(self, source: str, when: float | None) -> None:
        with self.db.tx(failpoint=WRITE) as conn:
            conn.execute("INSERT OR IGNORE INTO source_state (source) VALUES (?)", (source,))
            conn.execute("UPDATE source_state SET next_poll = ? WHERE source = ?",
                         (when, source))

    # --- seen items ----------------------------------------------------------------------
    def unseen(self, items: Sequence[Item]) -> list[Item]:
        fresh: list[Item] = []
        batch: set[str] = set()
        with self.db.read() as conn:
            for item in items:
                ids = identities(item)
                if batch.intersection(ids):
                    continue
                marks = ",".join("?" * len(ids))
                found = conn.execute(
                    f"SELECT 1 FROM seen WHERE identity IN ({marks}) LIMIT 1", ids
                ).fetchone()
                if found is None:
                    fresh.append(item)
                batch.update(ids)
        return fresh

    def mark_seen(self, items: Iterable[Item]) -> None:
        now = time.time()
        with self.db.tx(failpoint=WRITE) as conn:
            for item in items:
                key = item.key or item.id
                conn.executemany(
                    "INSERT OR IGNORE INTO seen (identity, item_key, first_seen) VALUES (?, ?, ?)",
                    [(ident, key, now) for ident in identities(item)],
                )
                conn.execute(
                    "INSERT OR IGNORE INTO items (item_key, source, payload, seen_at)"
                    " VALUES (?, ?, ?, ?)",
                    (key, item.source, json.dumps(item.to_dict()), now),
                )

    def items_since(self, since: float) -> list[Item]:
        rows = self.db.query(
            "SELECT payload FROM items WHERE seen_at >= ? ORDER BY seen_at", (since,)
        )
        return [Item.from_dict(json.loads(str(p))) for (p,) in rows]

    # --- alerts and deliveries -----------------------------------------------------------
    def add_alert(
        self,
        alert: Alert,
        destinations: Sequence[str],
        skipped: Mapping[str, str] | None = None,
    ) -> bool:
        now = time.time()
        with self.db.tx(durable=True, failpoint=WRITE) as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO alerts (id, watchlist, payload, created_at)"
                " VALUES (?, ?, ?, ?)",
                (alert.id, alert.watchlist, json.dumps(alert.to_dict()), now),
            )
            if cur.rowcount == 0:
                return False
            conn.executemany(
                "INSERT OR IGNORE INTO deliveries (alert_id, destination, state, next_at,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                [(alert.id, d, PENDING, now, now, now) for d in destinations],
            )
            conn.executemany(
                "INSERT OR IGNORE INTO deliveries (alert_id, destination, state, next_at,"
                " last_error, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(alert.id, d, SKIPPED, now, why[:2000], now, now)
                 for d, why in (skipped or {}).items()],
            )
        return True

    def claim_deliveries(
        self, limit: int, lease: float, destinations: Sequence[str]
    ) -> list[DeliveryTask]:
        if not destinations:
            return []
        now = time.time()
        token = uuid.uuid4().hex
        marks = ",".join("?" * len(destinations))
        with self.db.tx(durable=True, failpoint=WRITE) as conn:
            rows = conn.execute(
                f"SELECT d.alert_id, d.destination, d.attempts, d.state, d.ambiguous, a.payload"
                f" FROM deliveries d JOIN alerts a ON a.id = d.alert_id"
                f" WHERE d.destination IN ({marks})"
                f" AND ((d.state = ? AND d.next_at <= ?) OR (d.state = ? AND d.lease_until < ?))"
                f" AND NOT EXISTS (SELECT 1 FROM destination_pause p"
                f"   WHERE p.destination = d.destination AND p.until > ?)"
                f" ORDER BY d.created_at, d.alert_id LIMIT ?",
                (*destinations, PENDING, now, SENDING, now, now, limit),
            ).fetchall()
            tasks = []
            for alert_id, dest, attempts, state, ambiguous, payload in rows:
                # A lease that expired in SENDING means a worker died mid-send.
                was_ambiguous = bool(ambiguous) or state == SENDING
                conn.execute(
                    "UPDATE deliveries SET state = ?, lease_until = ?, lease_token = ?,"
                    " attempts = attempts + 1, ambiguous = ?, updated_at = ?"
                    " WHERE alert_id = ? AND destination = ?",
                    (SENDING, now + lease, token, int(was_ambiguous), now, alert_id, dest),
                )
                tasks.append(DeliveryTask(Alert.from_dict(json.loads(payload)), dest,
                                          attempts + 1, was_ambiguous, token))
        return tasks

    def _finish(self, task: DeliveryTask, sql: str, params: tuple[object, ...]) -> bool:
        with self.db.tx(durable=True, failpoint=WRITE) as conn:
            cur = conn.execute(
                f"UPDATE deliveries SET {sql}, lease_until = NULL, lease_token = NULL,"
                " updated_at = ? WHERE alert_id = ? AND destination = ? AND lease_token = ?",
                (*params, time.time(), task.alert.id, task.destination, task.lease_token),
            )
            return cur.rowcount == 1

    def mark_sent(self, task: DeliveryTask, ref: str, *, reconciled: bool = False) -> bool:
        return self._finish(task, "state = ?, ref = ?, reconciled = ?, ambiguous = 0",
                            (SENT, ref, int(reconciled)))

    def mark_retry(
        self, task: DeliveryTask, *, delay: float, error: str, ambiguous: bool = False
    ) -> bool:
        return self._finish(task, "state = ?, next_at = ?, last_error = ?, ambiguous = ?",
                            (PENDING, time.time() + delay, error[:2000], int(ambiguous)))

    def mark_dead(self, task: DeliveryTask, reason: str) -> bool:
        return self._finish(task, "state = ?, last_error = ?", (DEAD, reason[:2000]))

    def pause_destination(self, destination: str, until: float) -> None:
        with self.db.tx(failpoint=WRITE) as conn:
            conn.execute(
                "INSERT INTO destination_pause (destination, until) VALUES (?, ?)"
                " ON CONFLICT (destination) DO UPDATE SET until = MAX(until, excluded.until)",
                (destination, until),
            )

    def revive(
        self,
        alert_ids: Sequence[str] = (),
        *,
        destinations: Sequence[str] | None = None,
        since: float | None = None,
        states: Sequence[str] = (DEAD,),
    ) -> int:
        now = time.time()
        where = f"state IN ({','.join('?' * len(states))})"
        params: list[object] = list(states)
        if alert_ids:
            where += f" AND alert_id IN ({','.join('?' * len(alert_ids))})"
            params += list(alert_ids)
        if destinations is not None:
            where += f" AND destination IN ({','.join('?' * len(destinations)) or 'NULL'})"
            params += list(destinations)
        if since is not None:
            where += " AND created_at >= ?"
            params.append(since)
        with self.db.tx(failpoint=WRITE) as conn:
            # A fresh age too: the revived alert gets a whole max_age to be delivered.
            conn.execute(
                f"UPDATE alerts SET payload = json_set(payload, '$.created_at', ?)"
                f" WHERE id IN (SELECT alert_id FROM deliveries WHERE {where})",
                (now, *params),
            )
            cur = conn.execute(
                f"UPDATE deliveries SET state = ?, attempts = 0, next_at = ?, updated_at = ?,"
                f" ambiguous = 0 WHERE {where}",
                (PENDING, now, now, *params),
            )
            return cur.rowcount

    def known_alerts(self, alert_ids: Sequence[str]) -> set[str]:
        if not alert_ids:
            return set()
        rows = self.db.query(
            f"SELECT id FROM alerts WHERE id IN ({','.join('?' * len(alert_ids))})",
            tuple(alert_ids),
        )
        return {str(r[0]) for r in rows}

    def record_destination(self, destination: str, error: str | None) -> None:
        now = time.time()
        with self.db.tx(failpoint=WRITE) as conn:
            conn.execute("INSERT OR IGNORE INTO destination_state (destination) VALUES (?)",
                         (destination,))
            if error is None:
                conn.execute("UPDATE destination_state SET failures = 0, last_success = ?"
                             " WHERE destination = ?", (now, destination))
            else:
                conn.execute("UPDATE destination_state SET failures = failures + 1,"
                             " last_error = ?, last_failure = ? WHERE destination = ?",
                             (error[:2000], now, destination))

    def destination_states(self) -> list[DestinationState]:
        rows = self.db.query("SELECT destination, failures, last_error, last_failure,"
                             " last_success FROM destination_state ORDER BY destination")
        return [DestinationState(*row) for row in rows]  # type: ignore[arg-type]

    def ping(self) -> None:
        self.db.ping()

    def delivery_counts(self) -> dict[str, int]:
        rows = self.db.query("SELECT state, COUNT(*) FROM deliveries GROUP BY state")
        return {str(s): int(n) for s, n in rows}  # type: ignore[call-overload]

    def next_delivery_due(self, destinations: Sequence[str]) -> float | None:
        if not destinations:
            return None
        marks = ",".join("?" * len(destinations))
        rows = self.db.query(
            f"SELECT MIN(MAX(d.next_at, COALESCE(p.until, 0),"
            f"  CASE WHEN d.state = 'sending' THEN d.lease_until ELSE 0 END))"
            f" FROM deliveries d LEFT JOIN destination_pause p ON p.destination = d.destination"
            f" WHERE d.state IN ('pending', 'sending') AND d.destination IN ({marks})",
            tuple(destinations),
        )
        value = rows[0][0] if rows else None
        return float(value) if value is not None else None  # type: ignore[arg-type]

    def deliveries(self, alert_id: str | None = None) -> list[dict[str, Any]]:
        cols = ("alert_id", "destination", "state", "attempts", "last_error", "ref", "reconciled")
        sql = f"SELECT {', '.join(cols)} FROM deliveries"
        rows = self.db.query(sql + " WHERE alert_id = ?", (alert_id,)) if alert_id else \
            self.db.query(sql + " ORDER BY created_at")
        return [dict(zip(cols, row, strict=True)) for row in rows]

    def close(self) -> None:
        self.db.close()
