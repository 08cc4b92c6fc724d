"""The stages between the queues, each a plain function of its inputs.

poll:   source -> unseen items (first poll: only recent ones) -> items queue -> mark seen
        -> save cursor
match:  items subscription -> matcher -> alerts queue -> commit items
intake: alerts subscription -> store (alert + a pending delivery per destination)
        -> commit alerts

Each step stores its result before it lets go of its input (a batch's results are
published or stored, then the batch is committed), so a crash anywhere repeats work
instead of losing it; ids derived from content make the repeat harmless: a queue key per
item, an alert id per (watchlist, story) that the store takes once.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from monitor import failpoints, metrics
from monitor.config import format_backfill
from monitor.engine.base import Hit, Matcher
from monitor.models import Alert, Item
from monitor.queue.base import ALERTS, ITEMS, Publisher, Subscription
from monitor.sources.base import Cursor, PollResult, Source
from monitor.sources.canonical import published_timestamp
from monitor.store.base import Priming, Store

log = logging.getLogger("monitor.stages")


@dataclass(frozen=True)
class Polled:
    """One successful poll: the source's result, how many items went on to matching, and
    the priming record when this was the source's first successful poll."""

    result: PollResult
    queued: int
    primed: Priming | None = None


async def poll(source: Source, store: Store, queue: Publisher, backfill: float) -> Polled:
    """Poll once and queue what is new. The cursor (ETag, Last-Modified) is saved only
    after the items are durably queued, so a failure re-fetches instead of skipping.

    On a source's first successful poll (no success stored for it) only items published
    within ``backfill`` seconds go on to matching; older and undated ones are marked seen,
    so a new install or a new source does not post the feed's whole backlog.
    """
    state = await asyncio.to_thread(store.source_state, source.name)
    cursor = Cursor.from_dict(state.cursor) if state else None
    result = await source.poll(cursor)
    first = state is None or not state.primed
    return await asyncio.to_thread(_enqueue, source.name, result, store, queue,
                                   backfill if first else math.inf, first)


def _enqueue(name: str, result: PollResult, store: Store, queue: Publisher, backfill: float,
             first: bool) -> Polled:
    fresh = store.unseen(result.items)
    passed = fresh if math.isinf(backfill) else recent(fresh, time.time() - backfill)
    rows = [(item.key or item.id, item.to_dict()) for item in passed]
    queue.publish_many(ITEMS, rows[:2])
    if len(rows) > 2:
        failpoints.hit("mid_enqueue")
        queue.publish_many(ITEMS, rows[2:])
    store.mark_seen(fresh)
    primed = Priming(len(result.items), len(passed), format_backfill(backfill)) if first else None
    store.record_poll(name, cursor=result.cursor.to_dict(), error=None, items=len(passed),
                      fetched=None if result.not_modified else len(result.items),
                      note=result.note, primed=primed)
    return Polled(result, len(passed), primed)


def recent(items: list[Item], cutoff: float) -> list[Item]:
    """Items published at or after ``cutoff``; an item without a usable date is not
    recent (nothing says it is news)."""
    out = []
    for item in items:
        stamp = published_timestamp(item.published)
        if stamp is not None and stamp >= cutoff:
            out.append(item)
    return out


def alert_for(hit: Hit, item: Item) -> Alert:
    return Alert(
        id=Alert.make_id(hit.watchlist.name, item.key or item.id),
        watchlist=hit.watchlist.name,
        severity=hit.watchlist.severity,
        item=item,
        matches=hit.matches,
        rule=hit.rule,
        notify=hit.watchlist.notify,
        created_at=time.time(),
    )


def match_batch(items: Subscription, alerts: Publisher, matcher: Callable[[], Matcher], *,
                limit: int = 100, timeout: float = 0.0,
                retry_delay: float = 5.0) -> tuple[int, int]:
    """Match up to ``limit`` queued items, publish their alerts, then commit the items.
    Returns (items processed, alerts published). An item whose matching raises is retried
    after ``retry_delay``, then dead-lettered with the reason; the rest of the batch goes on.
    """
    messages = items.poll(limit, timeout)
    if not messages:
        return 0, 0
    failpoints.hit("after_claim")
    found: list[tuple[Item, list[Alert]]] = []
    done = []
    for msg in messages:
        try:
            item = Item.from_dict(msg.payload)
            hits = matcher().match(item)
        except Exception as exc:
            dead = items.retry(msg, delay=retry_delay, error=f"{type(exc).__name__}: {exc}")
            log.error("match_failed item=%s attempt=%d error=%r%s", msg.key, msg.attempts,
                      str(exc), " dead_lettered=yes" if dead else " will_retry=yes",
                      exc_info=dead)
            continue
        found.append((item, [alert_for(hit, item) for hit in hits]))
        done.append(msg)
    new = [a for _, batch in found for a in batch]
    if new:
        failpoints.hit("after_match_before_outbox")
    alerts.publish_many(ALERTS, [(a.id, a.to_dict()) for a in new])
    failpoints.hit("after_match_before_commit")
    items.commit(done)
    for item, batch in found:
        for a in batch:
            metrics.ALERTS.labels(a.watchlist).inc()
            terms = sorted({m.term_name for m in a.matches})
            log.info("item_matched item=%s watchlist=%s rule=%s terms=%s title=%r",
                     item.id, a.watchlist, a.rule, terms, item.title[:120])
    return len(messages), len(new)


Routes = Callable[[Alert], tuple[Sequence[str], Mapping[str, str]]]


def intake_batch(alerts: Subscription, store: Store, routes: Routes, *, limit: int = 100,
                 timeout: float = 0.0) -> tuple[int, int]:
    """Move alerts from the alerts queue into the store's outbox: a pending delivery per
    destination that is on, a skipped one (with the reason) per destination that is off;
    then commit them. Returns (alerts taken, how many were new): an alert id already
    stored is a dedupe hit, which is how a replay after a crash posts nothing twice."""
    messages = alerts.poll(limit, timeout)
    new = 0
    for msg in messages:
        alert = Alert.from_dict(msg.payload)
        on, off = routes(alert)
        if store.add_alert(alert, on, off):
            new += 1
        else:
            metrics.DEDUP_HITS.inc()
            log.info("alert_duplicate alert_id=%s (already stored; not queued again)", alert.id)
    if messages:
        failpoints.hit("after_intake_before_commit")
        alerts.commit(messages)
    return len(messages), new
