"""One poll's whole outcome, in one place: fetch and queue (``stages.poll``), then record
success or failure, count it, log it once, and say when to poll next.

The scheduler only decides *when*; everything a poll means (priming a new source, the
failure count, the backoff, the metrics and the log line an operator greps for) lives
here, with the one backoff policy the daemon uses for sources.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass

from monitor import metrics
from monitor.config import Config, SourceConfig
from monitor.errors import FetchRejected, MonitorError, SourceError, StoreError
from monitor.queue.base import Queue
from monitor.sources.base import Source
from monitor.stages import Polled, poll
from monitor.store.base import Store

log = logging.getLogger("monitor")


@dataclass(frozen=True)
class PollOutcome:
    """``delay``: seconds to the next poll when it is not the usual interval (backoff);
    ``skipped``: another poller holds the source's lease, so this run did nothing."""

    ok: bool
    new: int = 0
    delay: float | None = None
    skipped: bool = False


#: A lease ends this much before the source's next interval (a tenth of it, at most 5 s):
#: when its holder dies another poller takes the source over within one interval. The
#: holder itself renews its lease whenever it runs, expired or not, so a live holder keeps
#: its sources; another poller takes one over only when its run falls in that margin.
LEASE_MARGIN = 0.1
LEASE_MARGIN_MAX = 5.0
#: The daemon never starts two polls of one source closer than this share of its interval:
#: the scheduler keeps a source's run times on its grid, so a run that a busy host started
#: late would otherwise be followed at once by the next, on time (seen 0.4 s apart on a
#: 2 s interval). The late run stands for both.
MIN_GAP = 0.5


def lease_until(now: float, interval: float) -> float:
    return now + interval - min(interval * LEASE_MARGIN, LEASE_MARGIN_MAX)


def backoff_delay(interval: float, failures: int, cap: float) -> float:
    """After the n-th failure in a row, wait interval × 2^(n−1), capped, never less than
    the interval, with ±10% jitter so sources that failed together do not retry together."""
    delay = min(interval * 2 ** max(0, failures - 1), cap)
    return float(max(interval, delay) * random.uniform(0.9, 1.1))


class Poller:
    """Polls sources for the daemon. ``once``: a single pass (``run --once``), so there is
    no next poll to announce."""

    def __init__(self, config: Config, store: Store, queue: Queue, *, once: bool = False,
                 holder: str = "", shared: bool = False):
        self.config = config
        self.store = store
        self.queue = queue
        self.once = once
        self.holder = holder
        self.shared = shared
        self._last_start: dict[str, float] = {}  # source -> monotonic start of its last poll

    async def poll(self, source: Source, sc: SourceConfig) -> PollOutcome:
        """Take the source's lease (when the poller has a ``holder`` name: the daemon),
        then poll. ``shared`` (several ``--role poll`` instances on one store): a lease
        another poller holds skips this run; otherwise the lease is always taken (one
        cheap statement). A shared lease lasts the interval plus the longest a poll may
        take, and is set to the interval from the end when the poll ends: however late
        or slow the fetch (a loaded host, a slow feed), no other poller fetches the
        source again until an interval after it. A poller that dies mid-poll hands the
        source on once that lease expires."""
        started = time.monotonic()
        last = self._last_start.get(source.name)
        if self.holder and not self.once and last is not None and \
                started - last < sc.interval * MIN_GAP:
            log.debug("poll_skipped source=%s (its last poll started %.1fs ago: a late run "
                      "is not followed by an early one)", source.name, started - last)
            return PollOutcome(True, 0, skipped=True)
        try:
            # While the poll runs the lease also covers its longest fetch and parse, so
            # that it cannot lapse under a poll that is slow (a loaded host, a slow feed)
            # and let another poller in; the renewal at the end sets it to the interval.
            f = self.config.fetch
            running = f.total_deadline + f.parse_budget if self.shared else 0.0
            taken = not self.holder or await asyncio.to_thread(
                self.store.take_poll_lease, source.name, self.holder,
                lease_until(time.time(), sc.interval) + running, shared=self.shared)
            if not taken:
                metrics.POLLS.labels(source.name, "skipped").inc()
                log.debug("poll_skipped source=%s (another poller holds its lease)",
                          source.name)
                return PollOutcome(True, 0, skipped=True)
            self._last_start[source.name] = started
            polled = await poll(source, self.store, self.queue, self.config.backfill(sc))
        except MonitorError as exc:
            outcome = await self._failed(source, sc, exc, crashed=False)
        except Exception as exc:  # a bug in one source must not stop the others
            outcome = await self._failed(source, sc, exc, crashed=True)
        else:
            self._succeeded(source, polled, time.monotonic() - started)
            outcome = PollOutcome(True, polled.queued)
        if self.shared and self.holder:
            await self._renew(source, outcome.delay or sc.interval)
        return outcome

    async def _renew(self, source: Source, interval: float) -> None:
        """Hold the lease until the next run is due (a backoff's too: no other poller
        hammers a failing source meanwhile). A failed renewal only shortens the lease."""
        try:
            await asyncio.to_thread(self.store.take_poll_lease, source.name, self.holder,
                                    lease_until(time.time(), interval), shared=True)
        except Exception as exc:  # the store said so once (storage_failing); harmless
            log.debug("poll_lease_renew_failed source=%s error=%r", source.name, str(exc))

    def _succeeded(self, source: Source, polled: Polled, took: float) -> None:
        result = polled.result
        metrics.POLLS.labels(source.name, "ok").inc()
        metrics.ITEMS_NEW.labels(source.name).inc(polled.queued)
        for warning in result.warnings:
            log.warning("poll_warning source=%s %s", source.name, warning)
        if polled.primed is not None:
            p = polled.primed
            log.info("source_primed source=%s items=%d primed=%d alerted=%d backfill=%s "
                     "(first poll: only items published within the backfill window go on "
                     "to matching)", source.name, p.items, p.items - p.alerted, p.alerted,
                     p.backfill)
        log.info("polled source=%s items=%d new=%d not_modified=%s took=%.2fs", source.name,
                 len(result.items), polled.queued, result.not_modified, took)

    async def _failed(self, source: Source, sc: SourceConfig, exc: Exception,
                      crashed: bool) -> PollOutcome:
        metrics.POLLS.labels(source.name, "failed").inc()
        if isinstance(exc, FetchRejected):
            metrics.FETCH_REJECTED.labels(source.name, exc.reason).inc()
        error = f"{type(exc).__name__}: {exc}" if crashed else str(exc)
        try:
            failures = await asyncio.to_thread(self.store.record_poll, source.name,
                                               cursor=None, error=error, items=0)
        except StoreError as store_exc:  # the store said so once (storage_failing)
            log.debug("poll_record_failed source=%s error=%r", source.name, str(store_exc))
            failures = 1
        except Exception as store_exc:  # a storage error must not end the poll job
            log.error("poll_record_failed source=%s error=%r", source.name, str(store_exc))
            failures = 1
        # Storage failing is not the source's fault: keep its schedule (no backoff), so
        # the first poll after the fault clears is at most one interval away.
        delay = None if isinstance(exc, StoreError) else backoff_delay(
            sc.interval, failures, self.config.scheduler.backoff_max)
        retryable = exc.retryable if isinstance(exc, SourceError) else True
        when = "" if self.once else f" next_poll={sc.interval if delay is None else delay:.0f}s"
        if crashed:
            log.error("poll_crashed source=%s error=%r failures=%d%s", source.name, error,
                      failures, when, exc_info=exc)
        else:
            log.warning("poll_failed source=%s error=%r retryable=%s failures=%d%s",
                        source.name, error, "yes" if retryable else "no", failures, when)
        return PollOutcome(False, 0, delay)
