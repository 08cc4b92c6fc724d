"""The durable outbox: takes (alert, destination) deliveries from the store and sends them.

Retries, Retry-After, pacing and dead-lettering live here, not in the notifiers and not in
the Slack SDK (whose handlers sleep as long as asked and log webhook URLs). One destination
is served by one sequential lane, so a destination that asked us to wait is not hammered,
and a slow destination never holds up another.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from monitor import failpoints, metrics
from monitor.config import DeliveryConfig
from monitor.errors import NotifyError, StoreError
from monitor.notify.base import Notifier
from monitor.store.base import DeliveryTask, Store

log = logging.getLogger("monitor.notify")


class TokenBucket:
    """Per-destination pacing: ``rate`` messages a second with bursts of ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, float(burst)
        self.tokens, self.stamp = float(burst), time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def peek(self) -> float:
        """Seconds until a token is available, without taking it."""
        self._refill()
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def wait_time(self) -> float:
        """Take a token; returns how long to wait before using it (it may be borrowed)."""
        wait = self.peek()
        self.tokens -= 1
        return wait


@dataclass
class OutboxStats:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    reconciled: int = 0
    possible_duplicates: int = 0


def backoff(attempt: int, initial: float, cap: float) -> float:
    """Exponential backoff with full jitter (AWS architecture blog): spreads retries of
    many alerts so an outage's end is not met by a thundering herd."""
    ceiling = min(cap, initial * (2 ** max(0, attempt - 1)))
    return random.uniform(initial / 2, max(initial / 2, ceiling))


class Outbox:
    def __init__(
        self,
        store: Store,
        notifiers: Mapping[str, Notifier],
        config: DeliveryConfig,
        pacing: Mapping[str, TokenBucket] | None = None,
        on_progress: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.notifiers = dict(notifiers)
        self.config = config
        self.pacing = dict(pacing or {})
        self.stats = OutboxStats()
        # Called after every claim or delivery: proof of life for the readiness probe,
        # which would otherwise take a long paced drain for a stalled loop.
        self.on_progress = on_progress or (lambda: None)

    @property
    def destinations(self) -> list[str]:
        return list(self.notifiers)

    async def run_due(self, stop: asyncio.Event | None = None,
                      deadline: float | None = None) -> int:
        """Send everything due now, one lane per destination. Returns the number sent.

        ``deadline`` (``time.monotonic()``): start no send that pacing would begin after
        it; what is left stays pending for the next run (``run --once`` must end).
        """
        lanes = [self._lane(name, stop, deadline) for name in self.notifiers]
        return sum(await asyncio.gather(*lanes))

    async def _lane(self, destination: str, stop: asyncio.Event | None,
                    deadline: float | None) -> int:
        sent = 0
        bucket = self.pacing.get(destination)
        while stop is None or not stop.is_set():
            self.on_progress()
            wait = bucket.peek() if bucket is not None else 0.0
            if deadline is not None and time.monotonic() + wait >= deadline:
                break
            if wait:
                await asyncio.sleep(wait)
            try:
                tasks = await asyncio.to_thread(
                    self.store.claim_deliveries, 1, self.config.lease, [destination]
                )
                if not tasks:
                    break
                if bucket is not None:
                    await asyncio.sleep(bucket.wait_time())
                sent += await self.deliver(tasks[0])
            except StoreError as exc:
                # The store logged the fault once (storage_failing). Nothing is posted
                # unless its claim was recorded; a post whose "sent" could not be recorded
                # stays `sending` and is reconciled once its lease expires. Try again on
                # the caller's next turn.
                log.debug("outbox_store_error destination=%s error=%r", destination, str(exc))
                break
        return sent

    async def deliver(self, task: DeliveryTask) -> int:
        notifier = self.notifiers[task.destination]
        alert = task.alert
        if task.ambiguous:
            try:
                found = await asyncio.to_thread(notifier.reconcile, alert)
            except NotifyError as exc:  # cannot check now: check again later, never re-post
                exc.ambiguous = True
                await self._failed(task, exc)
                return 0
            if found is not None:
                await asyncio.to_thread(self.store.mark_sent, task, found.ref, reconciled=True)
                self.stats.reconciled += 1
                metrics.DELIVERIES.labels(task.destination, "reconciled").inc()
                log.info("alert_reconciled alert_id=%s destination=%s (already posted; not "
                         "sending again)", alert.id, task.destination)
                return 0
            self.stats.possible_duplicates += 1
            metrics.POSSIBLE_DUPLICATES.labels(task.destination).inc()
            log.warning("alert_possible_duplicate alert_id=%s destination=%s: an earlier "
                        "attempt may have been posted; this destination cannot confirm, "
                        "sending again", alert.id, task.destination)
        if alert.created_at and time.time() - alert.created_at > self.config.max_age:
            await self._dead(task, f"not delivered within max_age {self.config.max_age:.0f}s")
            return 0
        try:
            delivery = await asyncio.to_thread(notifier.send, alert)
        except NotifyError as exc:
            await self._failed(task, exc)
            return 0
        except Exception as exc:  # a notifier bug must not kill the lane; retry later
            log.debug("notifier raised", exc_info=True)
            await self._failed(task, NotifyError(f"{type(exc).__name__}: {exc}", retryable=True))
            return 0
        failpoints.hit("after_send_before_ack")
        # "Sent" first: it is what prevents a second post; the destination's health after.
        try:
            recorded = await asyncio.to_thread(self.store.mark_sent, task, delivery.ref)
        except StoreError:
            log.warning("alert_sent_unrecorded alert_id=%s destination=%s: posted, but the "
                        "store could not record it; once the store works the delivery is "
                        "reconciled, not posted again (Web API)", alert.id, task.destination)
            raise
        if not recorded:
            log.warning("lease_lost alert_id=%s destination=%s: another worker owns this "
                        "delivery now", alert.id, task.destination)
        self.stats.sent += 1
        metrics.DELIVERIES.labels(task.destination, "sent").inc()
        log.info("alert_sent alert_id=%s destination=%s watchlist=%s attempts=%d title=%r",
                 alert.id, task.destination, alert.watchlist, task.attempts,
                 alert.item.title[:120])
        await asyncio.to_thread(self.store.record_destination, task.destination, None)
        return 1

    async def _failed(self, task: DeliveryTask, exc: NotifyError) -> None:
        if exc.retry_after is None:  # being rate limited is not the destination failing
            await asyncio.to_thread(self.store.record_destination, task.destination, str(exc))
        if not exc.retryable:
            await self._dead(task, str(exc))
            return
        if exc.retry_after is not None and exc.retry_after > 0:
            delay = exc.retry_after
            await asyncio.to_thread(
                self.store.pause_destination, task.destination, time.time() + delay
            )
        else:
            delay = backoff(task.attempts, self.config.backoff_initial, self.config.backoff_max)
        await asyncio.to_thread(
            self.store.mark_retry, task, delay=delay, error=str(exc), ambiguous=exc.ambiguous
        )
        self.stats.retried += 1
        metrics.DELIVERIES.labels(task.destination, "retry").inc()
        log.warning("alert_retry alert_id=%s destination=%s attempt=%d error=%r retry_in=%.1fs%s",
                    task.alert.id, task.destination, task.attempts, str(exc), delay,
                    " ambiguous=yes" if exc.ambiguous else "")

    async def _dead(self, task: DeliveryTask, reason: str) -> None:
        await asyncio.to_thread(self.store.mark_dead, task, reason)
        self.stats.dead += 1
        metrics.DELIVERIES.labels(task.destination, "dead").inc()
        log.error("alert_dead alert_id=%s destination=%s reason=%r (kept as dead; "
                  "`monitor alerts retry` sends it again)", task.alert.id, task.destination, reason)

    def close(self) -> None:
        for notifier in self.notifiers.values():
            notifier.close()
