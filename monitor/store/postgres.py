"""The shared store for a team: PostgreSQL, same contract as the SQLite store.

Claims use ``FOR UPDATE SKIP LOCKED`` so several notifier processes can share the outbox
without claiming one delivery twice; every finish is fenced by the lease token.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cached_property
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from monitor.errors import ServiceUnavailable
from monitor.models import Alert, Item
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
from monitor.storefault import Fault

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS source_state (
        source TEXT PRIMARY KEY, cursor JSONB NOT NULL DEFAULT '{}',
        last_poll DOUBLE PRECISION,
        last_success DOUBLE PRECISION, last_error TEXT, failures INTEGER NOT NULL DEFAULT 0,
        items_total BIGINT NOT NULL DEFAULT 0)""",
    """CREATE TABLE IF NOT EXISTS seen (
        identity TEXT PRIMARY KEY, item_key TEXT NOT NULL,
        first_seen DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS items (
        item_key TEXT PRIMARY KEY, source TEXT NOT NULL, payload JSONB NOT NULL,
        seen_at DOUBLE PRECISION NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS items_seen_at ON items (seen_at)",
    """CREATE TABLE IF NOT EXISTS alerts (
        id TEXT PRIMARY KEY, watchlist TEXT NOT NULL, payload JSONB NOT NULL,
        created_at DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS deliveries (
        alert_id TEXT NOT NULL REFERENCES alerts (id), destination TEXT NOT NULL,
        state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        next_at DOUBLE PRECISION NOT NULL, lease_until DOUBLE PRECISION, lease_token TEXT,
        ambiguous BOOLEAN NOT NULL DEFAULT FALSE, last_error TEXT, ref TEXT,
        reconciled BOOLEAN NOT NULL DEFAULT FALSE, created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (alert_id, destination))""",
    "CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (state, next_at)",
    """CREATE TABLE IF NOT EXISTS destination_pause (
        destination TEXT PRIMARY KEY, until DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS destination_state (
        destination TEXT PRIMARY KEY, failures INTEGER NOT NULL DEFAULT 0, last_error TEXT,
        last_failure DOUBLE PRECISION, last_success DOUBLE PRECISION)""",
    # Columns added after the first release (added in place to older databases).
    """ALTER TABLE source_state ADD COLUMN IF NOT EXISTS items_last INTEGER NOT NULL DEFAULT 0,
        ADD COLUMN IF NOT EXISTS next_poll DOUBLE PRECISION,
        ADD COLUMN IF NOT EXISTS note TEXT,
        ADD COLUMN IF NOT EXISTS primed_at DOUBLE PRECISION,
        ADD COLUMN IF NOT EXISTS primed_items INTEGER NOT NULL DEFAULT 0,
        ADD COLUMN IF NOT EXISTS primed_alerted INTEGER NOT NULL DEFAULT 0,
        ADD COLUMN IF NOT EXISTS primed_backfill TEXT""",
]
# The pair id shared with the queue (monitor.datadir): a store and a queue that do not
# belong together are refused at start instead of losing or re-alerting items.
_META = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
#: psycopg errors that are bugs in our SQL or data, not the store failing: not translated.
_BUGS = (psycopg.IntegrityError, psycopg.ProgrammingError, psycopg.DataError,
         psycopg.NotSupportedError)
_STATE_COLUMNS = ("cursor, last_poll, last_success, last_error, failures, items_total,"
                  " items_last, next_poll, note, primed_at, primed_items, primed_alerted,"
                  " primed_backfill")


class PostgresStore(Store):
    def __init__(self, url: str, *, connect_timeout: float = 10.0) -> None:
        try:
            self.conn = psycopg.connect(url, autocommit=True,
                                        connect_timeout=max(1, int(connect_timeout)))
            with self.conn.transaction():
                for stmt in _SCHEMA:
                    self.conn.execute(stmt)
                self.conn.execute(_META)
        except psycopg.Error as exc:
            # The URL may carry a password: name only what is safe.
            raise ServiceUnavailable(f"cannot open the PostgreSQL store: "
                                     f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from exc
        self.lock = threading.RLock()

    # --- pairing with the queue (monitor.datadir) ----------------------------------------
    def pair_id(self) -> str | None:
        rows = self._rows("SELECT value FROM meta WHERE key = 'pair_id'")
        return str(rows[0][0]) if rows else None

    def set_pair_id(self, pair: str) -> None:
        self._rows("INSERT INTO meta (key, value) VALUES ('pair_id', %s) ON CONFLICT (key)"
                   " DO UPDATE SET value = excluded.value RETURNING key", (pair,))

    def has_records(self) -> bool:
        """Whether the store records anything seen, polled or alerted (False: empty)."""
        rows = self._rows("SELECT EXISTS (SELECT 1 FROM seen) OR EXISTS (SELECT 1 FROM"
                          " alerts) OR EXISTS (SELECT 1 FROM source_state)")
        return bool(rows[0][0])

    def last_matched_seen_at(self) -> float | None:
        """When the item of the newest stored alert was seen (None: no alert yet)."""
        rows = self._rows(
            "SELECT MAX(i.seen_at) FROM (SELECT COALESCE(NULLIF(payload->'item'->>'key', ''),"
            " payload->'item'->>'id') AS k FROM alerts ORDER BY created_at DESC LIMIT 50) a"
            " JOIN items i ON i.item_key = a.k")
        value = rows[0][0] if rows else None
        return float(value) if value is not None else None

    def seen_items_since(self, since: float) -> list[tuple[float, Item]]:
        """(seen_at, item) of every item seen at or after ``since``, oldest first."""
        rows = self._rows("SELECT seen_at, payload FROM items WHERE seen_at >= %s"
                          " ORDER BY seen_at", (since,))
        return [(float(t), Item.from_dict(dict(p))) for t, p in rows]

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._guard(write=False):
            return self.conn.execute(sql, params).fetchall()

    # --- the edge: psycopg's errors become StoreError, reported once (monitor.storefault)
    @cached_property
    def fault(self) -> Fault:
        return Fault("PostgreSQL store")  # never the URL: it may carry a password

    @contextmanager
    def _guard(self, *, write: bool) -> Iterator[None]:
        with self.lock:  # taken first: the fault is only ever touched under the lock
            try:
                yield
            except psycopg.Error as exc:
                if isinstance(exc, _BUGS):
                    raise
                raise self.fault.failed(exc, write=write) from exc
            # PostgreSQL does not say cheaply whether a transaction changed anything: any
            # write transaction that commits counts as proof that writes work again.
            self.fault.succeeded(wrote=write)

    @contextmanager
    def _tx(self) -> Iterator[None]:
        """A write transaction, committed on leaving, with errors translated."""
        with self._guard(write=True), self.conn.transaction():
            yield

    # --- sources -------------------------------------------------------------------------
    def source_state(self, source: str) -> SourceState | None:
        rows = self._rows(f"SELECT {_STATE_COLUMNS} FROM source_state WHERE source = %s",
                          (source,))
        if not rows:
            return None
        cursor, *rest = rows[0]
        return SourceState(source, dict(cursor), *rest)

    def record_poll(self, source: str, *, cursor: dict[str, Any] | None, error: str | None,
                    items: int, fetched: int | None = None, note: str | None = None,
                    primed: Priming | None = None) -> int:
        now = time.time()
        with self._tx():
            self.conn.execute("INSERT INTO source_state (source) VALUES (%s)"
                              " ON CONFLICT DO NOTHING", (source,))
            if error is None:
                self.conn.execute(
                    "UPDATE source_state SET cursor = COALESCE(%s, cursor), last_poll = %s,"
                    " last_success = %s, failures = 0, items_total = items_total + %s,"
                    " items_last = COALESCE(%s, items_last), note = %s WHERE source = %s",
                    (Jsonb(cursor) if cursor is not None else None, now, now, items, fetched,
                     note, source))
                if primed is not None:
                    self.conn.execute(
                        "UPDATE source_state SET primed_at = %s, primed_items = %s,"
                        " primed_alerted = %s, primed_backfill = %s WHERE source = %s",
                        (now, primed.items, primed.alerted, primed.backfill, source))
            else:
                self.conn.execute(
                    "UPDATE source_state SET last_poll = %s, last_error = %s,"
                    " failures = failures + 1 WHERE source = %s", (now, error[:2000], source))
            row = self.conn.execute("SELECT failures FROM source_state WHERE source = %s",
                                    (source,)).fetchone()
        return int(row[0]) if row else 0

    def set_next_poll(self, source: str, when: float | None) -> None:
        with self._tx():
            self.conn.execute("INSERT INTO source_state (source) VALUES (%s)"
                              " ON CONFLICT DO NOTHING", (source,))
            self.conn.execute("UPDATE source_state SET next_poll = %s WHERE source = %s",
                              (when, source))

    # --- seen items ----------------------------------------------------------------------
    def unseen(self, items: Sequence[Item]) -> list[Item]:
        all_ids = list({i for item in items for i in identities(item)})
        rows = self._rows("SELECT identity FROM seen WHERE identity = ANY(%s)", (all_ids,))
        known = {str(r[0]) for r in rows}
        fresh: list[Item] = []
        batch: set[str] = set()
        for item in items:
            ids = identities(item)
            if not batch.intersection(ids) and not known.intersection(ids):
                fresh.append(item)
            batch.update(ids)
        return fresh

    def mark_seen(self, items: Iterable[Item]) -> None:
        now = time.time()
        with self._tx(), self.conn.cursor() as cur:
            for item in items:
                key = item.key or item.id
                cur.executemany("INSERT INTO seen (identity, item_key, first_seen)"
                                " VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                                [(ident, key, now) for ident in identities(item)])
                cur.execute("INSERT INTO items (item_key, source, payload, seen_at)"
                            " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                            (key, item.source, Jsonb(item.to_dict()), now))

    def items_since(self, since: float) -> list[Item]:
        rows = self._rows("SELECT payload FROM items WHERE seen_at >= %s ORDER BY seen_at",
                          (since,))
        return [Item.from_dict(dict(p)) for (p,) in rows]

    # --- alerts and deliveries -----------------------------------------------------------
    def add_alert(self, alert: Alert, destinations: Sequence[str],
                  skipped: Mapping[str, str] | None = None) -> bool:
        now = time.time()
        with self._tx(), self.conn.cursor() as cur:
            cur.execute("INSERT INTO alerts (id, watchlist, payload, created_at)"
                        " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                        (alert.id, alert.watchlist, Jsonb(alert.to_dict()), now))
            if cur.rowcount == 0:
                return False
            cur.executemany("INSERT INTO deliveries (alert_id, destination, state, next_at,"
                            " created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s)"
                            " ON CONFLICT DO NOTHING",
                            [(alert.id, d, PENDING, now, now, now) for d in destinations])
            cur.executemany("INSERT INTO deliveries (alert_id, destination, state, next_at,"
                            " last_error, created_at, updated_at)"
                            " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                            [(alert.id, d, SKIPPED, now, why[:2000], now, now)
                             for d, why in (skipped or {}).items()])
        return True

    def claim_deliveries(self, limit: int, lease: float,
                         destinations: Sequence[str]) -> list[DeliveryTask]:
        if not destinations:
            return []
        now = time.time()
        token = uuid.uuid4().hex
        with self._tx():
            rows = self.conn.execute(
                "SELECT d.alert_id, d.destination, d.attempts, d.state, d.ambiguous, a.payload"
                " FROM deliveries d JOIN alerts a ON a.id = d.alert_id"
                " WHERE d.destination = ANY(%s)"
                " AND ((d.state = %s AND d.next_at <= %s)"
                "   OR (d.state = %s AND d.lease_until < %s))"
                " AND NOT EXISTS (SELECT 1 FROM destination_pause p"
                "   WHERE p.destination = d.destination AND p.until > %s)"
                " ORDER BY d.created_at, d.alert_id LIMIT %s FOR UPDATE OF d SKIP LOCKED",
                (list(destinations), PENDING, now, SENDING, now, now, limit)).fetchall()
            tasks = []
            for alert_id, dest, attempts, state, ambiguous, payload in rows:
                was_ambiguous = bool(ambiguous) or state == SENDING
                self.conn.execute(
                    "UPDATE deliveries SET state = %s, lease_until = %s, lease_token = %s,"
                    " attempts = attempts + 1, ambiguous = %s, updated_at = %s"
                    " WHERE alert_id = %s AND destination = %s",
                    (SENDING, now + lease, token, was_ambiguous, now, alert_id, dest))
                tasks.append(DeliveryTask(Alert.from_dict(dict(payload)), dest, attempts + 1,
                                          was_ambiguous, token))
        return tasks

    def _finish(self, task: DeliveryTask, sql: str, params: tuple[object, ...]) -> bool:
        with self._tx():
            cur = self.conn.execute(
                f"UPDATE deliveries SET {sql}, lease_until = NULL, lease_token = NULL,"
                " updated_at = %s WHERE alert_id = %s AND destination = %s AND lease_token = %s",
                (*params, time.time(), task.alert.id, task.destination, task.lease_token))
            return cur.rowcount == 1

    def mark_sent(self, task: DeliveryTask, ref: str, *, reconciled: bool = False) -> bool:
        return self._finish(task, "state = %s, ref = %s, reconciled = %s, ambiguous = FALSE",
                            (SENT, ref, reconciled))

    def mark_retry(self, task: DeliveryTask, *, delay: float, error: str,
                   ambiguous: bool = False) -> bool:
        return self._finish(task, "state = %s, next_at = %s, last_error = %s, ambiguous = %s",
                            (PENDING, time.time() + delay, error[:2000], ambiguous))

    def mark_dead(self, task: DeliveryTask, reason: str) -> bool:
        return self._finish(task, "state = %s, last_error = %s", (DEAD, reason[:2000]))

    def pause_destination(self, destination: str, until: float) -> None:
        with self._tx():
            self.conn.execute(
                "INSERT INTO destination_pause (destination, until) VALUES (%s, %s)"
                " ON CONFLICT (destination) DO UPDATE SET"
                " until = GREATEST(destination_pause.until, excluded.until)",
                (destination, until))

    def revive(self, alert_ids: Sequence[str] = (), *,
               destinations: Sequence[str] | None = None, since: float | None = None,
               states: Sequence[str] = (DEAD,)) -> int:
        now = time.time()
        where, params = "state = ANY(%s)", [list(states)]
        if alert_ids:
            where += " AND alert_id = ANY(%s)"
            params.append(list(alert_ids))
        if destinations is not None:
            where += " AND destination = ANY(%s)"
            params.append(list(destinations))
        if since is not None:
            where += " AND created_at >= %s"
            params.append(since)  # type: ignore[arg-type]
        with self._tx():
            self.conn.execute(
                "UPDATE alerts SET payload ="
                " jsonb_set(payload, '{created_at}', to_jsonb(%s::float8))"
                f" WHERE id IN (SELECT alert_id FROM deliveries WHERE {where})", (now, *params))
            cur = self.conn.execute(
                f"UPDATE deliveries SET state = %s, attempts = 0, next_at = %s, updated_at = %s,"
                f" ambiguous = FALSE WHERE {where}", (PENDING, now, now, *params))
            return cur.rowcount

    def known_alerts(self, alert_ids: Sequence[str]) -> set[str]:
        if not alert_ids:
            return set()
        rows = self._rows("SELECT id FROM alerts WHERE id = ANY(%s)", (list(alert_ids),))
        return {str(r[0]) for r in rows}

    def record_destination(self, destination: str, error: str | None) -> None:
        now = time.time()
        with self._tx():
            self.conn.execute("INSERT INTO destination_state (destination) VALUES (%s)"
                              " ON CONFLICT DO NOTHING", (destination,))
            if error is None:
                self.conn.execute("UPDATE destination_state SET failures = 0,"
                                  " last_success = %s WHERE destination = %s",
                                  (now, destination))
            else:
                self.conn.execute("UPDATE destination_state SET failures = failures + 1,"
                                  " last_error = %s, last_failure = %s WHERE destination = %s",
                                  (error[:2000], now, destination))

    def destination_states(self) -> list[DestinationState]:
        rows = self._rows("SELECT destination, failures, last_error, last_failure,"
                          " last_success FROM destination_state ORDER BY destination")
        return [DestinationState(*row) for row in rows]

    def ping(self) -> None:
        if not self.lock.acquire(timeout=5.0):
            raise ServiceUnavailable("PostgreSQL store busy for over 5s")
        try:
            self.fault.check()
            self.conn.execute("SELECT 1").fetchall()
        except psycopg.Error as exc:
            raise ServiceUnavailable(f"PostgreSQL store unreachable: {type(exc).__name__}: "
                                     f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
        finally:
            self.lock.release()

    def delivery_counts(self) -> dict[str, int]:
        rows = self._rows("SELECT state, COUNT(*) FROM deliveries GROUP BY state")
        return {str(s): int(n) for s, n in rows}

    def next_delivery_due(self, destinations: Sequence[str]) -> float | None:
        if not destinations:
            return None
        rows = self._rows(
            "SELECT MIN(GREATEST(d.next_at, COALESCE(p.until, 0),"
            "  CASE WHEN d.state = 'sending' THEN d.lease_until ELSE 0 END))"
            " FROM deliveries d LEFT JOIN destination_pause p ON p.destination = d.destination"
            " WHERE d.state IN ('pending', 'sending') AND d.destination = ANY(%s)",
            (list(destinations),))
        value = rows[0][0] if rows else None
        return float(value) if value is not None else None

    def deliveries(self, alert_id: str | None = None) -> list[dict[str, Any]]:
        cols = ("alert_id", "destination", "state", "attempts", "last_error", "ref", "reconciled")
        sql = f"SELECT {', '.join(cols)} FROM deliveries"
        rows = (self._rows(sql + " WHERE alert_id = %s", (alert_id,)) if alert_id
                else self._rows(sql + " ORDER BY created_at"))
        out = [dict(zip(cols, row, strict=True)) for row in rows]
        for row in out:
            row["reconciled"] = int(bool(row["reconciled"]))
        return out

    def close(self) -> None:
        with self.lock:
            self.conn.close()


