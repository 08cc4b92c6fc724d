"""build(config) -> App: wires store, queue, sources, matcher, outbox and scheduler.

One process runs every stage. The scheduler (APScheduler 3.x on asyncio) only polls;
matching and delivery run as their own loops, woken when there is work, so a slow Slack
never delays a poll and a slow feed never delays an alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from monitor import metrics
from monitor import server as http_server
from monitor.config import Config, SourceConfig
from monitor.engine.base import Matcher
from monitor.engine.matcher import compile_watchlists
from monitor.engine.watchlist import load_each, watchlist_files
from monitor.errors import FetchRejected, MonitorError, Problem, SourceError
from monitor.health import queue_depths
from monitor.models import Alert, Watchlist
from monitor.notify.base import Notifier
from monitor.notify.console import ConsoleNotifier
from monitor.notify.outbox import Outbox, TokenBucket
from monitor.notify.slack import SlackWebApiNotifier, SlackWebhookNotifier
from monitor.queue.base import Queue
from monitor.queue.sqlite import SqliteQueue
from monitor.sources.base import Source
from monitor.sources.fetch import Fetcher, FetchLimits
from monitor.sources.jsonapi import GDELT_FIELDS, GDELT_ITEMS, JsonApiSource
from monitor.sources.rss import RssSource
from monitor.stages import intake_batch, match_batch, poll
from monitor.store import open_store
from monitor.store.base import Store

log = logging.getLogger("monitor")


def build_notifiers(config: Config) -> dict[str, Notifier]:
    """Console is always on; a Slack notifier whose secret is empty is switched off with
    one clear warning, so the default config runs on a machine without credentials."""
    notifiers: dict[str, Notifier] = {}
    for n in config.notifiers:
        if n.type == "console":
            notifiers[n.name] = ConsoleNotifier(name=n.name)
        elif n.secret("token"):
            notifiers[n.name] = SlackWebApiNotifier(
                name=n.name, token=n.secret("token"), channel=n.channel or "",
                api_url=n.api_url, timeout=n.timeout)
        elif n.secret("webhook_url"):
            notifiers[n.name] = SlackWebhookNotifier(
                name=n.name, webhook_url=n.secret("webhook_url"), timeout=n.timeout)
        else:
            log.warning("notifier_off name=%s: no Slack credentials; set SLACK_BOT_TOKEN "
                        "(with a channel) or SLACK_WEBHOOK_URL to switch it on", n.name)
    return notifiers


class WatchlistSet:
    """The watchlists in force and their compiled matcher. A file that becomes invalid
    keeps its last good version (its problems are logged); a deleted file stops."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = list(paths)
        self.by_file: dict[str, Watchlist] = {}
        self.fingerprint: tuple[tuple[str, int, int], ...] = ()
        self.matcher: Matcher = compile_watchlists([])

    def scan(self) -> tuple[tuple[str, int, int], ...]:
        out = []
        for f in watchlist_files(self.paths):
            try:
                st = f.stat()
            except OSError:
                continue
            out.append((str(f), st.st_mtime_ns, st.st_size))
        return tuple(out)

    def load(self) -> list[Problem]:
        """(Re)load every file; returns the problems of files that were rejected."""
        self.fingerprint = self.scan()
        problems: list[Problem] = []
        fresh: dict[str, Watchlist] = {}
        for path, wl, found in load_each(Path(f) for f, _, _ in self.fingerprint):
            file = str(path)
            if wl is not None:
                fresh[file] = wl
                continue
            problems.extend(found)
            if file in self.by_file:
                fresh[file] = self.by_file[file]
                log.error("watchlist_rejected file=%s: the previous version of %r stays "
                          "in force until this file is fixed", file, self.by_file[file].name)
        for gone in set(self.by_file) - set(fresh):
            log.warning("watchlist_removed file=%s name=%s: its rules stop", gone,
                        self.by_file[gone].name)
        self.by_file = fresh
        self.matcher = compile_watchlists(list(fresh.values()))
        return problems

    @property
    def watchlists(self) -> list[Watchlist]:
        return list(self.by_file.values())


def make_source(sc: SourceConfig, fetcher: Fetcher, limits: FetchLimits) -> Source:
    if sc.type == "gdelt":
        return JsonApiSource(sc.name, sc.url, fetcher, items=sc.items or GDELT_ITEMS,
                             fields=sc.fields or GDELT_FIELDS, limits=limits,
                             max_items=sc.max_items)
    if sc.type == "json":
        return JsonApiSource(sc.name, sc.url, fetcher, items=sc.items or "", fields=sc.fields or {},
                             limits=limits, max_items=sc.max_items)
    return RssSource(sc.name, sc.url, fetcher, limits=limits, max_items=sc.max_items)


class App:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.store: Store = open_store(config)
        self.queue: Queue = SqliteQueue(config.resolve(config.queue.path),
                                        durability=config.store.durability)
        self.watchlists = WatchlistSet(config.rule_paths)
        self.notifiers = build_notifiers(config)
        pacing = {n.name: TokenBucket(n.rate_per_second, n.burst)
                  for n in config.notifiers if n.type == "slack" and n.name in self.notifiers}
        self.outbox = Outbox(self.store, self.notifiers, config.delivery, pacing)
        f = config.fetch
        self.limits = FetchLimits(
            connect_timeout=f.connect_timeout, read_timeout=f.read_timeout,
            total_deadline=f.total_deadline, max_wire_bytes=f.max_bytes,
            max_decoded_bytes=f.max_bytes, max_redirects=f.max_redirects,
            allow_private=f.allow_private)
        self.work = asyncio.Event()  # items were queued: match now
        self.deliver = asyncio.Event()  # alerts were stored: deliver now
        self.stop = asyncio.Event()
        self._polls: set[asyncio.Task[bool]] = set()
        self.scheduler: AsyncIOScheduler | None = None  # only the long-running mode has one

    # --- stages ------------------------------------------------------------------------
    def destinations(self, alert: Alert) -> list[str]:
        wanted = alert.notify or tuple(self.notifiers)
        unknown = [d for d in wanted if d not in self.notifiers]
        if unknown:
            log.warning("alert_destination_off alert_id=%s destinations=%s: not configured or "
                        "switched off", alert.id, unknown)
        return [d for d in wanted if d in self.notifiers]

    async def poll_source(self, source: Source, sc: SourceConfig) -> bool:
        started = time.monotonic()
        try:
            result, fresh = await poll(source, self.store, self.queue)
        except MonitorError as exc:
            retryable = exc.retryable if isinstance(exc, SourceError) else True
            metrics.POLLS.labels(source.name, "failed").inc()
            if isinstance(exc, FetchRejected):
                metrics.FETCH_REJECTED.labels(source.name, exc.reason).inc()
            failures = await asyncio.to_thread(
                self.store.record_poll, source.name, cursor=None, error=str(exc), items=0)
            delay = min(sc.interval * 2 ** (failures - 1), self.config.scheduler.backoff_max)
            delay = max(sc.interval, delay) * random.uniform(0.9, 1.1)
            log.warning("poll_failed source=%s error=%r retryable=%s failures=%d next_poll=%.0fs",
                        source.name, str(exc), "yes" if retryable else "no", failures, delay)
            self._reschedule(source.name, delay)
            return False
        except Exception as exc:  # a bug in one source must not stop the others
            metrics.POLLS.labels(source.name, "failed").inc()
            log.exception("poll_crashed source=%s error=%r", source.name, str(exc))
            await asyncio.to_thread(self.store.record_poll, source.name, cursor=None,
                                    error=f"{type(exc).__name__}: {exc}", items=0)
            return False
        metrics.POLLS.labels(source.name, "ok").inc()
        metrics.ITEMS_NEW.labels(source.name).inc(fresh)
        for warning in result.warnings:
            log.warning("poll_warning source=%s %s", source.name, warning)
        log.info("polled source=%s items=%d new=%d not_modified=%s took=%.2fs", source.name,
                 len(result.items), fresh, result.not_modified, time.monotonic() - started)
        if fresh:
            self.work.set()
        return True

    def _reschedule(self, job_id: str, delay: float) -> None:
        job = self.scheduler.get_job(job_id) if self.scheduler else None
        if job is not None:
            job.modify(next_run_time=datetime.now(UTC) + timedelta(seconds=delay))

    def match_all(self) -> tuple[int, int]:
        """Drain the items queue through the matcher and the alerts queue into the outbox."""
        items = alerts = 0
        while True:
            n, a = match_batch(self.queue, lambda: self.watchlists.matcher,
                               lease=self.config.delivery.lease)
            items, alerts = items + n, alerts + a
            new = intake_batch(self.queue, self.store, self.destinations)
            if n == 0 and new == 0:
                return items, alerts

    # --- lifecycle ---------------------------------------------------------------------
    def load_watchlists(self) -> list[Problem]:
        problems = self.watchlists.load()
        names = [w.name for w in self.watchlists.watchlists]
        terms = sum(len(w.terms) for w in self.watchlists.watchlists)
        log.info("watchlists_loaded count=%d terms=%d names=%s", len(names), terms, names)
        return problems

    async def run_once(self) -> None:
        """Poll every source once, drain the queues, deliver, return."""
        sources = [sc for sc in self.config.sources if sc.enabled]
        async with Fetcher() as fetcher:
            await asyncio.gather(*(self.poll_source(make_source(sc, fetcher, self.limits), sc)
                                   for sc in sources))
        deadline = time.monotonic() + self.config.delivery.drain_timeout
        items, alerts = await self.drain_queues(deadline)
        log.info("matched items=%d alerts=%d", items, alerts)
        await self.drain_outbox(max(0.0, deadline - time.monotonic()))

    async def drain_queues(self, deadline: float) -> tuple[int, int]:
        """Match until both queues are empty, including messages still leased by a worker
        that died (they come back when the lease expires)."""
        items = alerts = 0
        while True:
            n, a = await asyncio.to_thread(self.match_all)
            items, alerts = items + n, alerts + a
            depths = await asyncio.to_thread(self.queue_depths)
            if not any(depths.values()) or self.stop.is_set():
                return items, alerts
            if time.monotonic() > deadline:
                log.warning("drain_timeout queued=%s: left for the next run", depths)
                return items, alerts
            await self._sleep(0.2)

    async def drain_outbox(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.stop.is_set():
            await self.outbox.run_due(self.stop)
            due = await asyncio.to_thread(self.store.next_delivery_due, self.outbox.destinations)
            if due is None:
                return
            wait = max(0.05, due - time.time())
            if time.monotonic() + wait > deadline:
                counts = await asyncio.to_thread(self.store.delivery_counts)
                log.warning("drain_timeout pending=%d: left queued for the next run",
                            counts.get("pending", 0) + counts.get("sending", 0))
                return
            await self._sleep(min(wait, 1.0))

    async def run_forever(self) -> None:
        sources = [sc for sc in self.config.sources if sc.enabled]
        async with Fetcher() as fetcher:
            self.scheduler = AsyncIOScheduler(timezone=UTC)
            self.scheduler.add_listener(self._on_job_event,
                                        EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)
            now = datetime.now(UTC)
            for i, sc in enumerate(sources):
                source = make_source(sc, fetcher, self.limits)
                self.scheduler.add_job(
                    self._poll_job, "interval", seconds=sc.interval, jitter=sc.jitter_seconds,
                    args=[source, sc], id=sc.name, name=sc.name, max_instances=1,
                    coalesce=True, misfire_grace_time=int(self.config.scheduler.misfire_grace_time),
                    next_run_time=now + timedelta(seconds=0.1 * i))
            runner = await http_server.start(self) if self.config.server.enabled else None
            self.scheduler.start()
            log.info("started sources=%d notifiers=%s", len(sources), list(self.notifiers))
            workers = [asyncio.create_task(self._match_loop()),
                       asyncio.create_task(self._outbox_loop()),
                       asyncio.create_task(self._reload_loop())]
            await self.stop.wait()
            await self._shutdown(workers)
            if runner is not None:
                await runner.cleanup()

    async def _poll_job(self, source: Source, sc: SourceConfig) -> None:
        task = asyncio.create_task(self.poll_source(source, sc))
        self._polls.add(task)
        try:
            await task
        except asyncio.CancelledError:
            log.info("poll_cancelled source=%s (shutting down)", source.name)
        finally:
            self._polls.discard(task)

    def _on_job_event(self, event: JobExecutionEvent) -> None:
        kind = "job_max_instances" if event.code == EVENT_JOB_MAX_INSTANCES else "job_missed"
        if event.code == EVENT_JOB_MAX_INSTANCES:
            metrics.JOB_MAX_INSTANCES.labels(event.job_id).inc()
        log.warning("%s source=%s: a previous poll is still running or the run was late",
                    kind, event.job_id)

    async def _match_loop(self) -> None:
        while not self.stop.is_set():
            self.work.clear()  # before matching: a poll that lands meanwhile wakes us again
            try:
                _, alerts = await asyncio.to_thread(self.match_all)
            except Exception as exc:  # a full disk or a locked database must not end the loop
                log.error("match_loop_error error=%r (retrying in 1 s)", str(exc),
                          exc_info=not isinstance(exc, MonitorError))
                alerts = 0
            if alerts:
                self.deliver.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.work.wait(), timeout=1.0)

    async def _outbox_loop(self) -> None:
        while not self.stop.is_set():
            self.deliver.clear()
            try:
                await self.outbox.run_due(self.stop)
            except Exception as exc:  # the same: log, wait, try again
                log.error("outbox_error error=%r (retrying)", str(exc),
                          exc_info=not isinstance(exc, MonitorError))
            # New alerts wake the outbox at once; retries that come due are picked up
            # within half a second.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.deliver.wait(), timeout=0.5)

    async def _reload_loop(self) -> None:
        while not self.stop.is_set():
            await self._sleep(self.config.rules.reload_interval)
            if self.watchlists.scan() == self.watchlists.fingerprint:
                continue
            problems = await asyncio.to_thread(self.watchlists.load)
            if problems:
                metrics.CONFIG_RELOAD_FAILURES.inc()
            for p in problems:
                log.error("config_reload ok=no %s", p)
            log.info("config_reload ok=%s watchlists=%s", "no" if problems else "yes",
                     [w.name for w in self.watchlists.watchlists])

    async def _shutdown(self, workers: list[asyncio.Task[None]]) -> None:
        started = time.monotonic()
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        polls = list(self._polls)
        for task in polls:
            task.cancel()
        deadline = self.config.scheduler.shutdown_deadline
        _, pending = await asyncio.wait(workers, timeout=deadline)
        for worker in pending:
            worker.cancel()
        log.info("shutdown polls_cancelled=%d workers_abandoned=%d took=%.1fs", len(polls),
                 len(pending), time.monotonic() - started)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when the daemon is asked to stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), timeout=seconds)

    def queue_depths(self) -> dict[str, int]:
        return queue_depths(self.queue)

    def close(self) -> None:
        self.outbox.close()
        self.queue.close()
        self.store.close()
