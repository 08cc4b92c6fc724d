"""build(config) -> App: wires store, queue, sources, matcher, outbox and scheduler.

One process runs every stage. The scheduler (APScheduler 3.x on asyncio) only decides when
to poll (``monitor.poller`` owns what a poll means); matching and delivery run as their own
loops, woken when there is work, so a slow Slack never delays a poll and a slow feed never
delays an alert. Each loop leaves a heartbeat that ``/readyz`` reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from monitor import metrics
from monitor import server as http_server
from monitor.config import Config, SourceConfig
from monitor.datadir import open_paired
from monitor.errors import MonitorError, Problem, StoreError
from monitor.health import health, queue_depths
from monitor.models import Alert
from monitor.notify.build import build_notifiers
from monitor.notify.outbox import Outbox, TokenBucket
from monitor.poller import Poller
from monitor.queue.base import ALERTS, ITEMS, Queue, Subscription
from monitor.sources.base import Source
from monitor.sources.fetch import Fetcher, FetchLimits
from monitor.sources.parsing import ParseLimits
from monitor.sources.registry import SOURCES, SourceContext
from monitor.stages import intake_batch, match_batch
from monitor.store.base import Store
from monitor.watchset import WatchlistSet

log = logging.getLogger("monitor")

STAGES = ("match", "deliver", "reload")
#: How long one poll of a subscription waits for messages (SQLite answers at once; a Kafka
#: fetch arrives asynchronously).
POLL_WAIT = 0.2


def make_source(sc: SourceConfig, fetcher: Fetcher, limits: FetchLimits,
                parse: ParseLimits | None = None) -> Source:
    """The source of ``sc``'s type, built by its registered plugin
    (``monitor.sources.registry``).

    Raises:
        UnknownType: no source type ``sc.type`` (a config error naming the known ones).
    """
    return SOURCES.get(sc.type).from_options(sc, SourceContext(fetcher, limits, parse))


class App:
    def __init__(self, config: Config, *, once: bool = False) -> None:
        self.config = config
        self.once = once
        # The data directory's lock, then the store and the queue, checked to be a pair.
        self.datadir, store, queue = open_paired(config)
        self.store: Store = store
        self.queue: Queue = queue  # the publisher; subscriptions live on the stage thread
        # Matching and intake run on this one thread, always the same: it owns the
        # subscriptions (a Kafka consumer must not move between threads).
        self.stage_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stages")
        self._subs: dict[str, Subscription] = {}
        self.notifiers, self.plans = build_notifiers(config)
        self.plan_of = {p.name: p for p in self.plans}
        self.watchlists = WatchlistSet(config.rule_paths, [n.name for n in config.notifiers])
        pacing = {n.name: TokenBucket(*rate) for n in config.notifiers
                  if n.name in self.notifiers and (rate := n.pacing()) is not None}
        self.beats: dict[str, float] = dict.fromkeys(STAGES, time.monotonic())
        self.outbox = Outbox(self.store, self.notifiers, config.delivery, pacing,
                             on_progress=lambda: self.beat("deliver"))
        self.poller = Poller(config, self.store, self.queue, once=once)
        f = config.fetch
        self.limits = FetchLimits(
            connect_timeout=f.connect_timeout, read_timeout=f.read_timeout,
            total_deadline=f.total_deadline, max_wire_bytes=f.max_bytes,
            max_decoded_bytes=f.max_bytes, max_redirects=f.max_redirects,
            allow_private=f.allow_private)
        self.parse_limits = ParseLimits(budget=f.parse_budget)  # parsing runs off the loop
        self.work = asyncio.Event()  # items were queued: match now
        self.deliver = asyncio.Event()  # alerts were stored: deliver now
        self.stop = asyncio.Event()
        self._polls: set[asyncio.Task[None]] = set()
        self._workers: list[asyncio.Task[None]] = []
        self.scheduler: AsyncIOScheduler | None = None  # only the long-running mode has one

    # --- stages ------------------------------------------------------------------------
    def routes(self, alert: Alert) -> tuple[list[str], Mapping[str, str]]:
        """Where an alert goes: the notifiers its watchlist names (or all), split into
        those that are on and those that are off, with the reason (kept as skipped)."""
        wanted = alert.notify or tuple(self.plan_of)
        plans = self.plan_of
        on = [d for d in wanted if d in self.notifiers]
        off = {d: plans[d].skip_reason for d in wanted if d in plans and not plans[d].on}
        return on, off

    def match_all(self) -> tuple[int, int]:
        """Drain the items queue through the matcher and the alerts queue into the outbox.
        Runs on ``stage_thread`` only (``in_stage_thread``)."""
        items = alerts = 0
        while True:
            self.beat("match")
            n, a = match_batch(self.subscription(ITEMS), self.queue,
                               lambda: self.watchlists.matcher, timeout=POLL_WAIT)
            items, alerts = items + n, alerts + a
            taken, _ = intake_batch(self.subscription(ALERTS), self.store, self.routes,
                                    timeout=POLL_WAIT)
            if n == 0 and taken == 0:
                return items, alerts

    def subscription(self, topic: str) -> Subscription:
        """The stage thread's subscription to ``topic`` (its role's group), made on first
        use, on that thread."""
        if topic not in self._subs:
            self._subs[topic] = self.queue.subscribe(topic)
        return self._subs[topic]

    async def in_stage_thread(self, fn: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.stage_thread, fn)

    def _close_subscriptions(self) -> None:
        subs, self._subs = list(self._subs.values()), {}
        for sub in subs:
            try:
                sub.close()
            except Exception as exc:  # closing must not stop the rest from closing
                log.warning("subscription_close_failed group=%s error=%r", sub.group, str(exc))

    def beat(self, stage: str) -> None:
        self.beats[stage] = time.monotonic()

    # --- lifecycle ---------------------------------------------------------------------
    def load_watchlists(self) -> list[Problem]:
        problems = self.watchlists.load()
        names = [w.name for w in self.watchlists.watchlists]
        terms = sum(len(w.terms) for w in self.watchlists.watchlists)
        log.info("watchlists_loaded count=%d terms=%d names=%s", len(names), terms, names)
        return problems

    async def run_once(self) -> None:
        """Poll every source once, drain the queues, deliver, return: within
        ``delivery.drain_timeout``; what is left stays queued for the next run."""
        sources = [sc for sc in self.config.sources if sc.enabled]
        async with Fetcher() as fetcher:
            await asyncio.gather(*(
                self.poller.poll(make_source(sc, fetcher, self.limits, self.parse_limits), sc)
                for sc in sources))
        for sc in sources:
            await asyncio.to_thread(self.store.set_next_poll, sc.name, None)
        deadline = time.monotonic() + self.config.delivery.drain_timeout
        items, alerts = await self.drain_queues(deadline)
        log.info("matched items=%d alerts=%d", items, alerts)
        await self.drain_outbox(deadline)

    async def drain_queues(self, deadline: float) -> tuple[int, int]:
        """Match until both queues are empty, including messages still leased by a worker
        that died (they come back when the lease expires)."""
        items = alerts = 0
        while True:
            n, a = await self.in_stage_thread(self.match_all)
            items, alerts = items + n, alerts + a
            depths = await asyncio.to_thread(queue_depths, self.queue.admin)
            if not any(depths.values()) or self.stop.is_set():
                return items, alerts
            if time.monotonic() > deadline:
                log.warning("drain_timeout queued=%s: left for the next run", depths)
                return items, alerts
            await self._sleep(0.2)

    async def drain_outbox(self, deadline: float) -> None:
        while not self.stop.is_set():
            await self.outbox.run_due(self.stop, deadline)
            due = await asyncio.to_thread(self.store.next_delivery_due, self.outbox.destinations)
            if due is None:
                return
            wait = max(0.05, due - time.time())
            if time.monotonic() + min(wait, 0.05) >= deadline:
                counts = await asyncio.to_thread(self.store.delivery_counts)
                log.warning("drain_timeout pending=%d: left queued for the next run",
                            counts.get("pending", 0) + counts.get("sending", 0))
                return
            await self._sleep(min(wait, 1.0, max(0.05, deadline - time.monotonic())))

    async def run_forever(self) -> None:
        sources = [sc for sc in self.config.sources if sc.enabled]
        async with Fetcher() as fetcher:
            self.scheduler = AsyncIOScheduler(timezone=UTC)
            self.scheduler.add_listener(self._on_job_event,
                                        EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)
            now = datetime.now(UTC)
            for i, sc in enumerate(sources):
                source = make_source(sc, fetcher, self.limits, self.parse_limits)
                first = now + timedelta(seconds=0.1 * i)
                self.scheduler.add_job(
                    self._poll_job, "interval", seconds=sc.interval, jitter=sc.jitter_seconds,
                    args=[source, sc], id=sc.name, name=sc.name, max_instances=1,
                    coalesce=True, misfire_grace_time=int(self.config.scheduler.misfire_grace_time),
                    next_run_time=first)
                await asyncio.to_thread(self.store.set_next_poll, sc.name, first.timestamp())
            runner = None
            if self.config.server.enabled:
                runner = await http_server.start(self.config.server, self.probes())
            self.scheduler.start()
            log.info("started sources=%d notifiers=%s", len(sources), list(self.notifiers))
            self._workers = [asyncio.create_task(self._match_loop()),
                             asyncio.create_task(self._outbox_loop()),
                             asyncio.create_task(self._reload_loop())]
            await self.stop.wait()
            await self._shutdown(self._workers)
            if runner is not None:
                await runner.cleanup()

    async def _poll_job(self, source: Source, sc: SourceConfig) -> None:
        task = asyncio.create_task(self._poll(source, sc))
        self._polls.add(task)
        try:
            await task
        except asyncio.CancelledError:
            log.info("poll_cancelled source=%s (shutting down)", source.name)
        finally:
            self._polls.discard(task)

    async def _poll(self, source: Source, sc: SourceConfig) -> None:
        outcome = await self.poller.poll(source, sc)
        job = self.scheduler.get_job(sc.name) if self.scheduler else None
        if job is None:
            return
        if outcome.delay is not None:
            job.modify(next_run_time=datetime.now(UTC) + timedelta(seconds=outcome.delay))
        if outcome.new:
            self.work.set()
        with contextlib.suppress(Exception):  # status's next poll is a courtesy
            when = job.next_run_time.timestamp() if job.next_run_time else None
            await asyncio.to_thread(self.store.set_next_poll, sc.name, when)

    def _on_job_event(self, event: JobExecutionEvent) -> None:
        kind = "job_max_instances" if event.code == EVENT_JOB_MAX_INSTANCES else "job_missed"
        if event.code == EVENT_JOB_MAX_INSTANCES:
            metrics.JOB_MAX_INSTANCES.labels(event.job_id).inc()
        log.warning("%s source=%s: a previous poll is still running or the run was late",
                    kind, event.job_id)

    async def _match_loop(self) -> None:
        while not self.stop.is_set():
            self.work.clear()  # before matching: a poll that lands meanwhile wakes us again
            self.beat("match")
            try:
                _, alerts = await self.in_stage_thread(self.match_all)
            except StoreError as exc:  # said once by the store (storage_failing); retried
                log.debug("match_loop_store_error error=%r (retrying in 1 s)", str(exc))
                alerts = 0
            except Exception as exc:  # nothing must end the loop
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
            self.beat("deliver")
            try:
                await self.outbox.run_due(self.stop)
            except StoreError as exc:  # said once by the store (storage_failing); retried
                log.debug("outbox_store_error error=%r (retrying)", str(exc))
            except Exception as exc:  # the same: log, wait, try again
                log.error("outbox_error error=%r (retrying)", str(exc),
                          exc_info=not isinstance(exc, MonitorError))
            # New alerts wake the outbox at once; retries that come due are picked up
            # within half a second.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.deliver.wait(), timeout=0.5)

    async def _reload_loop(self) -> None:
        while not self.stop.is_set():
            self.beat("reload")
            await self._sleep(min(self.config.rules.reload_interval, 5.0))
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

    # --- probes ------------------------------------------------------------------------
    def probes(self) -> http_server.Probes:
        return http_server.Probes(health=self.health, ready=self.ready, live=self.live,
                                  refresh_metrics=self.refresh_metrics)

    def health(self) -> dict[str, Any]:
        return health(self.config, self.store, self.queue.admin, self.plans,
                      self.watchlists.view())

    def live(self) -> tuple[bool, list[str]]:
        dead = [f"{stage} loop ended" for stage, task in zip(STAGES, self._workers, strict=False)
                if task.done() and not self.stop.is_set()]
        return not dead, dead

    def ready(self) -> tuple[bool, list[str]]:
        reasons = []
        for name, ping in (("store", self.store.ping), ("queue", self.queue.admin.ping)):
            try:
                ping()
            except MonitorError as exc:
                reasons.append(f"{name}: {exc}")
            except Exception as exc:  # whatever the driver raises, the answer is "not ready"
                reasons.append(f"{name}: {type(exc).__name__}: {exc}")
        now = time.monotonic()
        stall = self.config.server.stall_after
        for stage, last in self.beats.items():
            if now - last > stall:
                reasons.append(f"{stage} loop has not turned for {now - last:.0f}s")
        ok, dead = self.live()
        return not reasons and ok, reasons + dead

    def refresh_metrics(self) -> None:
        for name, depth in queue_depths(self.queue.admin).items():
            metrics.QUEUE_DEPTH.labels(name).set(depth)
        for state, n in self.store.delivery_counts().items():
            metrics.DELIVERY_ROWS.labels(state).set(n)

    def close(self) -> None:
        self.outbox.close()
        closing = self.stage_thread.submit(self._close_subscriptions)
        try:  # on the thread that used them; a match still running is waited for a while
            closing.result(timeout=self.config.scheduler.shutdown_deadline)
        except Exception as exc:
            log.warning("subscriptions_not_closed error=%r (what they did not commit is "
                        "delivered again)", str(exc) or type(exc).__name__)
        self.stage_thread.shutdown(wait=False)
        self.queue.close()
        self.store.close()
        self.datadir.release()

