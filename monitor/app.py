"""build(config) -> App: wires store, queue, sources, matcher, outbox and scheduler.

One process runs every stage (``--role all``), or one role's (``ROLE_STAGES``: poll, match
or notify, on Kafka and PostgreSQL, any number of each). The scheduler (APScheduler 3.x on
asyncio) only decides when to poll (``monitor.poller`` owns what a poll means); matching
and delivery run as their own loops, woken when there is work, so a slow Slack never delays
a poll and a slow feed never delays an alert. Each loop leaves a heartbeat that ``/readyz`` reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
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
from monitor.engine import native
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

#: What each role runs: ``poll`` (the scheduler and the poller), ``match`` (items ->
#: alerts; the watchlists' reload), ``intake`` (alerts -> the store's outbox),
#: ``deliver`` (the outbox -> the notifiers).
ROLE_STAGES: dict[str, frozenset[str]] = {
    "all": frozenset({"poll", "match", "intake", "deliver"}),
    "poll": frozenset({"poll"}),
    "match": frozenset({"match"}),
    "notify": frozenset({"intake", "deliver"}),
}
#: How long one poll of a subscription waits for messages (SQLite answers at once; a Kafka
#: fetch arrives asynchronously).
POLL_WAIT = 0.2


def loops_for(role: str) -> list[str]:
    """The loops a role runs, by the name of their heartbeat (what ``/readyz`` checks):
    the stage loop (matching and/or intake; "intake" when it only takes alerts in),
    delivery, and the watchlists' reload (for matching). ``poll`` runs none: its
    scheduler has no heartbeat."""
    runs = ROLE_STAGES[role]
    return [name for name, on in (
        ("match" if "match" in runs else "intake", bool({"match", "intake"} & runs)),
        ("deliver", "deliver" in runs), ("reload", "match" in runs)) if on]


def make_source(sc: SourceConfig, fetcher: Fetcher, limits: FetchLimits,
                parse: ParseLimits | None = None) -> Source:
    """The source of ``sc``'s type, built by its registered plugin
    (``monitor.sources.registry``).

    Raises:
        UnknownType: no source type ``sc.type`` (a config error naming the known ones).
    """
    return SOURCES.get(sc.type).from_options(sc, SourceContext(fetcher, limits, parse))


class App:
    def __init__(self, config: Config, *, once: bool = False, role: str = "all") -> None:
        self.config = config
        self.once = once
        self.role = role
        self.runs = ROLE_STAGES[role]
        # The loops this role runs, each with its heartbeat: the stage loop (matching
        # and/or intake; its beat is "intake" for notify), delivery, the watchlists' reload.
        self.loops = loops_for(role)
        # The data directory's lock, then the store and the queue, checked to be a pair
        # (roles: neither lock, ``monitor.datadir._open_shared``).
        self.datadir, store, queue = open_paired(config, role)
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
        self.beats: dict[str, float] = dict.fromkeys(self.loops, time.monotonic())
        self.outbox = Outbox(self.store, self.notifiers, config.delivery, pacing,
                             on_progress=lambda: self.beat("deliver"))
        # Several pollers (``--role poll``) share the sources through the store's leases;
        # ``all`` is the only poller of its store (its lock), so its lease always succeeds.
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.poller = Poller(config, self.store, self.queue, once=once, holder=self.holder,
                             shared=role != "all")
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
        self._workers: dict[str, asyncio.Task[None]] = {}
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

    def match_all(self) -> tuple[int, int, int]:
        """Drain the items queue through the matcher and the alerts queue into the outbox
        (the stages this role runs). Returns (items matched, alerts published, alerts
        newly stored). Runs on ``stage_thread`` only (``in_stage_thread``)."""
        items = alerts = stored = 0
        while True:
            self.beat(self.loops[0])
            n = taken = 0
            if "match" in self.runs:
                n, a = match_batch(self.subscription(ITEMS), self.queue,
                                   lambda: self.watchlists.matcher, timeout=POLL_WAIT)
                items, alerts = items + n, alerts + a
            if "intake" in self.runs:
                taken, new = intake_batch(self.subscription(ALERTS), self.store, self.routes,
                                          timeout=POLL_WAIT)
                stored += new
            if n == 0 and taken == 0:
                return items, alerts, stored

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
            n, a, _ = await self.in_stage_thread(self.match_all)
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
        polls = "poll" in self.runs
        sources = [sc for sc in self.config.sources if sc.enabled] if polls else []
        async with Fetcher() as fetcher:
            self.scheduler = AsyncIOScheduler(timezone=UTC) if polls else None
            if self.scheduler is not None:
                self.scheduler.add_listener(self._on_job_event,
                                            EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)
            now = datetime.now(UTC)
            # First polls are staggered (no burst of every source at start), by 0.1 s, or
            # closer when that would spread them over more than the shortest interval:
            # every source has had its first poll within one interval.
            shortest = min((sc.interval for sc in sources), default=1.0)
            step = min(0.1, shortest / max(1, len(sources)))
            for i, sc in enumerate(sources):
                source = make_source(sc, fetcher, self.limits, self.parse_limits)
                first = now + timedelta(seconds=step * i)
                assert self.scheduler is not None
                self.scheduler.add_job(
                    self._poll_job, "interval", seconds=sc.interval, jitter=sc.jitter_seconds,
                    args=[source, sc], id=sc.name, name=sc.name, max_instances=1,
                    coalesce=True, misfire_grace_time=int(self.config.scheduler.misfire_grace_time),
                    next_run_time=first)
                await asyncio.to_thread(self.store.set_next_poll, sc.name, first.timestamp())
            runner = None
            if self.config.server.enabled:
                runner = await http_server.start(self.config.server, self.probes())
            if self.scheduler is not None:
                self.scheduler.start()
            log.info("started role=%s sources=%d notifiers=%s engine=%s", self.role,
                     len(sources), list(self.notifiers), native.active())
            loop_of = {"match": self._match_loop, "intake": self._match_loop,
                       "deliver": self._outbox_loop, "reload": self._reload_loop}
            self._workers = {name: asyncio.create_task(loop_of[name]()) for name in self.loops}
            await self.stop.wait()
            await self._shutdown(list(self._workers.values()))
            if polls:  # hand the sources on at once rather than when the leases expire
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self.store.release_poll_leases, self.holder)
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
        # Without a poller in this process nothing wakes the loop: the subscriptions' own
        # wait (POLL_WAIT) paces it.
        idle = 1.0 if "poll" in self.runs else 0.05
        while not self.stop.is_set():
            self.work.clear()  # before matching: a poll that lands meanwhile wakes us again
            self.beat(self.loops[0])
            try:
                _, published, stored = await self.in_stage_thread(self.match_all)
                alerts = published + stored
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
                await asyncio.wait_for(self.work.wait(), timeout=idle)

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
        # A poll-only role has no workers (and asyncio.wait refuses an empty set).
        _, pending = (await asyncio.wait(workers, timeout=deadline)) if workers else (set(), set())
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
        dead = [f"{stage} loop ended" for stage, task in self._workers.items()
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

