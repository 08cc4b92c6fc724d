"""The store: feed state, seen items, alerts and deliveries, in one body of SQLAlchemy Core
statements that serves SQLite (embedded) and PostgreSQL (shared by a team's processes).

Each method says what it does once; ``monitor.store.backend`` holds what the two
databases do differently (connections, transactions, errors) and ``monitor.store.tables``
the two functions they spell differently. Claims lock their rows with ``FOR UPDATE SKIP
LOCKED`` in PostgreSQL (several notifier processes share the outbox without claiming one
delivery twice; SQLite's BEGIN IMMEDIATE serialises writers instead), and every finish is
fenced by the lease token.

Opening checks the schema version (``monitor.store.schema.ensure``): an empty database is
created at the current version, any other version is refused with one line naming
``monitor db upgrade``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from itertools import islice
from typing import Any

import sqlalchemy as sa

from monitor.models import Alert, Item
from monitor.store import schema
from monitor.store.backend import Backend
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
from monitor.store.tables import (
    alerts,
    deliveries,
    destination_pause,
    destination_state,
    greatest,
    meta,
    seen,
    source_state,
    with_created_at,
)
from monitor.store.tables import items as kept

#: The failpoint hit inside every write transaction (monitor/failpoints.py; SQLite).
WRITE = "store_write"
#: Identities asked about per statement (SQLite allows 32,766 bound values).
_CHUNK = 500
_ERROR_CHARS = 2000
_STATE = [source_state.c[name] for name in (
    "cursor", "last_poll", "last_success", "last_error", "failures", "items_total",
    "items_last", "next_poll", "note", "primed_at", "primed_items", "primed_alerted",
    "primed_backfill")]
_DELIVERY_COLUMNS = ("alert_id", "destination", "state", "attempts", "last_error", "ref",
                     "reconciled")


def _claim_statements() -> tuple[sa.Select[Any], sa.Update]:
    """The claim's two statements, built once (the claim is the outbox's hottest path):
    the due deliveries, oldest first, skipping paused destinations and rows another
    process has locked; and their lease."""
    d, a, p = deliveries.alias("d"), alerts.alias("a"), destination_pause.alias("p")
    now = sa.bindparam("now", type_=sa.Double)
    paused = sa.exists(sa.select(sa.literal(1)).select_from(p).where(
        p.c.destination == d.c.destination, p.c.until > now))
    due = (sa.select(d.c.alert_id, d.c.destination, d.c.attempts, d.c.state, d.c.ambiguous,
                     a.c.payload)
           .join_from(d, a, a.c.id == d.c.alert_id)
           .where(d.c.destination.in_(sa.bindparam("destinations", expanding=True)),
                  sa.or_(sa.and_(d.c.state == PENDING, d.c.next_at <= now),
                         sa.and_(d.c.state == SENDING, d.c.lease_until < now)),
                  ~paused)
           .order_by(d.c.created_at, d.c.alert_id)
           .limit(sa.bindparam("limit", type_=sa.Integer))
           .with_for_update(of=d, skip_locked=True))
    lease = (sa.update(deliveries)
             .where(deliveries.c.alert_id == sa.bindparam("a_id"),
                    deliveries.c.destination == sa.bindparam("dest"))
             .values(state=SENDING, lease_until=sa.bindparam("until"),
                     lease_token=sa.bindparam("token"), attempts=deliveries.c.attempts + 1,
                     ambiguous=sa.bindparam("was_ambiguous"), updated_at=sa.bindparam("now")))
    return due, lease


_DUE, _LEASE = _claim_statements()
_SEEN = sa.select(seen.c.identity).where(
    seen.c.identity.in_(sa.bindparam("ids", expanding=True)))


class SqlStore(Store):
    """The Store over one ``Backend``. Opening checks the schema version and closes the
    backend again when it refuses (``schema.ensure``)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._inserts: dict[str, Any] = {}
        try:
            schema.ensure(backend)
        except BaseException:
            backend.close()
            raise

    def _insert_new(self, table: sa.Table) -> Any:
        """INSERT … ON CONFLICT DO NOTHING: a row already there is kept as it is (built
        once per table: the same statement object also keeps its cache key)."""
        if table.name not in self._inserts:
            self._inserts[table.name] = self.backend.insert(table).on_conflict_do_nothing()
        return self._inserts[table.name]

    # --- pairing with the queue (monitor.datadir) ----------------------------------------
    def pair_id(self) -> str | None:
        with self.backend.read() as conn:
            value = conn.scalar(sa.select(meta.c.value).where(meta.c.key == "pair_id"))
        return None if value is None else str(value)

    def set_pair_id(self, pair: str) -> None:
        stmt = self.backend.insert(meta).values(key="pair_id", value=pair)
        with self.backend.tx() as conn:
            conn.execute(stmt.on_conflict_do_update(index_elements=[meta.c.key],
                                                    set_={"value": stmt.excluded.value}))

    def has_records(self) -> bool:
        """Whether the store records anything seen, polled or alerted (False: empty)."""
        anything = sa.or_(*(sa.exists(sa.select(sa.literal(1)).select_from(t))
                            for t in (seen, alerts, source_state)))
        with self.backend.read() as conn:
            return bool(conn.scalar(sa.select(anything)))

    def last_matched_seen_at(self) -> float | None:
        """When the item of the newest stored alert was seen (None: no alert yet)."""
        key = sa.func.coalesce(sa.func.nullif(alerts.c.payload[("item", "key")].as_string(), ""),
                               alerts.c.payload[("item", "id")].as_string())
        newest = (sa.select(key.label("k")).order_by(alerts.c.created_at.desc()).limit(50)
                  .subquery("a"))
        stmt = sa.select(sa.func.max(kept.c.seen_at)).join_from(
            newest, kept, kept.c.item_key == newest.c.k)
        with self.backend.read() as conn:
            value = conn.scalar(stmt)
        return None if value is None else float(value)

    def seen_items_since(self, since: float) -> list[tuple[float, Item]]:
        """(seen_at, item) of every item seen at or after ``since``, oldest first."""
        stmt = (sa.select(kept.c.seen_at, kept.c.payload).where(kept.c.seen_at >= since)
                .order_by(kept.c.seen_at))
        with self.backend.read() as conn:
            rows = conn.execute(stmt).all()
        return [(float(t), Item.from_dict(p)) for t, p in rows]

    # --- sources -------------------------------------------------------------------------
    def source_state(self, source: str) -> SourceState | None:
        with self.backend.read() as conn:
            row = conn.execute(sa.select(*_STATE).where(source_state.c.source == source)).first()
        if row is None:
            return None
        cursor, *rest = row
        return SourceState(source, dict(cursor), *rest)

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
        this = source_state.c.source == source
        if error is None:
            values: dict[str, Any] = {
                "last_poll": now, "last_success": now, "failures": 0, "note": note,
                "items_total": source_state.c.items_total + items}
            if cursor is not None:
                values["cursor"] = cursor
            if fetched is not None:
                values["items_last"] = fetched
            if primed is not None:
                values |= {"primed_at": now, "primed_items": primed.items,
                           "primed_alerted": primed.alerted,
                           "primed_backfill": primed.backfill}
        else:
            values = {"last_poll": now, "last_error": error[:_ERROR_CHARS],
                      "failures": source_state.c.failures + 1}
        with self.backend.tx(failpoint=WRITE) as conn:
            conn.execute(self._insert_new(source_state).values(source=source))
            conn.execute(sa.update(source_state).where(this).values(values))
            failures = conn.scalar(sa.select(source_state.c.failures).where(this))
        return int(failures or 0)

    def set_next_poll(self, source: str, when: float | None) -> None:
        with self.backend.tx(failpoint=WRITE) as conn:
            conn.execute(self._insert_new(source_state).values(source=source))
            conn.execute(sa.update(source_state).where(source_state.c.source == source)
                         .values(next_poll=when))

    def take_poll_lease(self, source: str, holder: str, until: float, *,
                        shared: bool = True) -> bool:
        """One INSERT … ON CONFLICT DO UPDATE: a source polled for the first time gets its
        row with the lease; an existing row's lease is taken only when ``shared`` is off or
        no lease is in force (NULL or expired). The row is locked for the statement, so of
        two pollers racing for one source exactly one gets it."""
        now = time.time()
        stmt = self.backend.insert(source_state).values(source=source, lease_until=until,
                                                        lease_holder=holder)
        free = sa.or_(source_state.c.lease_until.is_(None), source_state.c.lease_until < now,
                      source_state.c.lease_holder == holder)
        stmt = stmt.on_conflict_do_update(
            index_elements=[source_state.c.source],
            set_={"lease_until": stmt.excluded.lease_until,
                  "lease_holder": stmt.excluded.lease_holder},
            where=free if shared else None)
        with self.backend.tx(failpoint=WRITE) as conn:
            taken = conn.execute(stmt.execution_options(preserve_rowcount=True))
            return bool(taken.rowcount == 1)

    def release_poll_leases(self, holder: str) -> None:
        with self.backend.tx(failpoint=WRITE) as conn:
            conn.execute(sa.update(source_state).where(source_state.c.lease_holder == holder)
                         .values(lease_until=None, lease_holder=None))

    # --- seen items ----------------------------------------------------------------------
    def unseen(self, items: Sequence[Item]) -> list[Item]:
        wanted = list(dict.fromkeys(i for item in items for i in identities(item)))
        known: set[str] = set()
        with self.backend.read() as conn:
            for chunk in _chunks(wanted, _CHUNK):
                known.update(conn.scalars(_SEEN, {"ids": chunk}))
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
        seen_rows: list[dict[str, Any]] = []
        item_rows: list[dict[str, Any]] = []
        for item in items:
            key = item.key or item.id
            seen_rows += [{"identity": i, "item_key": key, "first_seen": now}
                          for i in identities(item)]
            item_rows.append({"item_key": key, "source": item.source,
                              "payload": item.to_dict(), "seen_at": now})
        if not item_rows:
            return
        with self.backend.tx(failpoint=WRITE) as conn:
            conn.execute(self._insert_new(seen), seen_rows)
            conn.execute(self._insert_new(kept), item_rows)

    def items_since(self, since: float) -> list[Item]:
        return [item for _, item in self.seen_items_since(since)]

    # --- alerts and deliveries -----------------------------------------------------------
    def add_alert(
        self,
        alert: Alert,
        destinations: Sequence[str],
        skipped: Mapping[str, str] | None = None,
    ) -> bool:
        now = time.time()
        rows = [{"alert_id": alert.id, "destination": d, "state": PENDING, "last_error": None,
                 "next_at": now, "created_at": now, "updated_at": now} for d in destinations]
        rows += [{"alert_id": alert.id, "destination": d, "state": SKIPPED,
                  "last_error": why[:_ERROR_CHARS], "next_at": now, "created_at": now,
                  "updated_at": now} for d, why in (skipped or {}).items()]
        with self.backend.tx(durable=True, failpoint=WRITE) as conn:
            stored = conn.execute(self._insert_new(alerts).values(
                id=alert.id, watchlist=alert.watchlist, payload=alert.to_dict(),
                created_at=now).execution_options(preserve_rowcount=True))
            if stored.rowcount == 0:  # kept only on request for an INSERT (psycopg)
                return False
            if rows:
                conn.execute(self._insert_new(deliveries), rows)
        return True

    def claim_deliveries(
        self, limit: int, lease: float, destinations: Sequence[str]
    ) -> list[DeliveryTask]:
        if not destinations:
            return []
        now = time.time()
        token = uuid.uuid4().hex
        tasks: list[DeliveryTask] = []
        with self.backend.tx(durable=True, failpoint=WRITE) as conn:
            due = conn.execute(_DUE, {"now": now, "destinations": list(destinations),
                                      "limit": limit})
            for _, dest, attempts, state, ambiguous, payload in due.all():
                # A lease that expired in SENDING means a worker died mid-send.
                was_ambiguous = bool(ambiguous) or state == SENDING
                tasks.append(DeliveryTask(Alert.from_dict(payload), dest, attempts + 1,
                                          was_ambiguous, token))
            if tasks:
                conn.execute(_LEASE, [{"a_id": t.alert.id, "dest": t.destination,
                                       "was_ambiguous": t.ambiguous, "until": now + lease,
                                       "token": token, "now": now} for t in tasks])
        return tasks

    def _finish(self, task: DeliveryTask, **values: Any) -> bool:
        stmt = (sa.update(deliveries)
                .where(deliveries.c.alert_id == task.alert.id,
                       deliveries.c.destination == task.destination,
                       deliveries.c.lease_token == task.lease_token)
                .values(**values, lease_until=None, lease_token=None, updated_at=time.time()))
        with self.backend.tx(durable=True, failpoint=WRITE) as conn:
            return conn.execute(stmt).rowcount == 1

    def mark_sent(self, task: DeliveryTask, ref: str, *, reconciled: bool = False) -> bool:
        return self._finish(task, state=SENT, ref=ref, reconciled=reconciled, ambiguous=False)

    def mark_retry(
        self, task: DeliveryTask, *, delay: float, error: str, ambiguous: bool = False
    ) -> bool:
        return self._finish(task, state=PENDING, next_at=time.time() + delay,
                            last_error=error[:_ERROR_CHARS], ambiguous=ambiguous)

    def mark_dead(self, task: DeliveryTask, reason: str) -> bool:
        return self._finish(task, state=DEAD, last_error=reason[:_ERROR_CHARS])

    def pause_destination(self, destination: str, until: float) -> None:
        stmt = self.backend.insert(destination_pause).values(destination=destination,
                                                             until=until)
        stmt = stmt.on_conflict_do_update(
            index_elements=[destination_pause.c.destination],
            set_={"until": greatest(destination_pause.c.until, stmt.excluded.until)})
        with self.backend.tx(failpoint=WRITE) as conn:
            conn.execute(stmt)

    def revive(
        self,
        alert_ids: Sequence[str] = (),
        *,
        destinations: Sequence[str] | None = None,
        since: float | None = None,
        states: Sequence[str] = (DEAD,),
    ) -> int:
        now = time.time()
        where: list[sa.ColumnElement[bool]] = [deliveries.c.state.in_(list(states))]
        if alert_ids:
            where.append(deliveries.c.alert_id.in_(list(alert_ids)))
        if destinations is not None:
            where.append(deliveries.c.destination.in_(list(destinations)))
        if since is not None:
            where.append(deliveries.c.created_at >= since)
        chosen = sa.select(deliveries.c.alert_id).where(*where)
        with self.backend.tx(failpoint=WRITE) as conn:
            # A fresh age too: the revived alert gets a whole max_age to be delivered.
            conn.execute(sa.update(alerts).where(alerts.c.id.in_(chosen))
                         .values(payload=with_created_at(alerts.c.payload, now)))
            revived = conn.execute(sa.update(deliveries).where(*where).values(
                state=PENDING, attempts=0, next_at=now, updated_at=now, ambiguous=False))
            return int(revived.rowcount)

    def known_alerts(self, alert_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        with self.backend.read() as conn:
            for chunk in _chunks(list(dict.fromkeys(alert_ids)), _CHUNK):
                found.update(conn.scalars(sa.select(alerts.c.id).where(alerts.c.id.in_(chunk))))
        return found

    def record_destination(self, destination: str, error: str | None) -> None:
        now = time.time()
        values: dict[str, Any] = (
            {"failures": 0, "last_success": now} if error is None else
            {"failures": destination_state.c.failures + 1,
             "last_error": error[:_ERROR_CHARS], "last_failure": now})
        with self.backend.tx(failpoint=WRITE) as conn:
            conn.execute(self._insert_new(destination_state).values(destination=destination))
            conn.execute(sa.update(destination_state)
                         .where(destination_state.c.destination == destination).values(values))

    def destination_states(self) -> list[DestinationState]:
        c = destination_state.c
        stmt = sa.select(c.destination, c.failures, c.last_error, c.last_failure,
                         c.last_success).order_by(c.destination)
        with self.backend.read() as conn:
            return [DestinationState(*row) for row in conn.execute(stmt).all()]

    def ping(self) -> None:
        self.backend.ping()

    def delivery_counts(self) -> dict[str, int]:
        stmt = sa.select(deliveries.c.state, sa.func.count()).group_by(deliveries.c.state)
        with self.backend.read() as conn:
            return {str(s): int(n) for s, n in conn.execute(stmt).all()}

    def next_delivery_due(self, destinations: Sequence[str]) -> float | None:
        if not destinations:
            return None
        d, p = deliveries.alias("d"), destination_pause.alias("p")
        when = greatest(d.c.next_at, sa.func.coalesce(p.c.until, 0),
                        sa.case((d.c.state == SENDING, d.c.lease_until), else_=0))
        stmt = (sa.select(sa.func.min(when))
                .select_from(d.outerjoin(p, p.c.destination == d.c.destination))
                .where(d.c.state.in_([PENDING, SENDING]), d.c.destination.in_(destinations)))
        with self.backend.read() as conn:
            value = conn.scalar(stmt)
        return None if value is None else float(value)

    def deliveries(self, alert_id: str | None = None) -> list[dict[str, Any]]:
        stmt = sa.select(*(deliveries.c[name] for name in _DELIVERY_COLUMNS))
        stmt = (stmt.where(deliveries.c.alert_id == alert_id) if alert_id
                else stmt.order_by(deliveries.c.created_at))
        with self.backend.read() as conn:
            rows = [dict(row._mapping) for row in conn.execute(stmt).all()]
        for row in rows:
            row["reconciled"] = int(bool(row["reconciled"]))
        return rows

    def close(self) -> None:
        self.backend.close()


def _chunks(values: list[str], size: int) -> Iterable[list[str]]:
    it = iter(values)
    while chunk := list(islice(it, size)):
        yield chunk
