"""``/livez``, ``/readyz``, ``/healthz`` and ``/metrics`` on 127.0.0.1 (by default).

Served from the daemon's own event loop, so a wedged loop shows as a probe timeout, which
is what a liveness probe should see. The server knows nothing of the daemon: it is handed
``Probes``, plain callables, so it can be started (and tested) on its own.

* ``/livez``: 200 while the daemon's loops are alive; 503 when one has died.
* ``/readyz``: 503 when the store or the queue cannot be reached, or a stage loop has not
  turned for ``server.stall_after``; 200 otherwise (a failing feed is not a reason).
* ``/healthz``: the health document (``monitor.health``) as JSON, always 200 when it can be
  computed, so a dashboard can read ``status`` (ok | degraded | failing).

A store or broker that does not answer (a partition: nothing is refused, every request
waits out its timeout) must not make the probes hang or pile up. Each probe runs on a
small executor of its own, never the one the stages use; requests that arrive while one
computation runs share it; and a request waits at most ``PROBE_TIMEOUT``, then answers
``failing`` / 503 saying so (``/metrics`` serves the values it has).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from monitor import metrics
from monitor.config import ServerConfig

log = logging.getLogger("monitor.server")

#: Seconds a probe request waits for its answer. Under Kubernetes' default probe timeout
#: (1 s) an answer this late is a failed probe anyway; a dashboard gets a clear "failing".
PROBE_TIMEOUT = 3.0

Check = Callable[[], tuple[bool, list[str]]]
T = TypeVar("T")


@dataclass(frozen=True)
class Probes:
    """What the server asks the daemon. ``health``, ``ready`` and ``refresh_metrics`` may
    block on storage, so they run in a worker thread; ``live`` runs on the loop."""

    health: Callable[[], dict[str, Any]]
    ready: Check
    live: Check
    refresh_metrics: Callable[[], None]


def _check_response(ok: bool, reasons: list[str]) -> web.Response:
    return web.json_response({"ok": ok, "reasons": reasons}, status=200 if ok else 503)


class _Shared:
    """One computation of a blocking probe at a time, on the server's own threads, shared
    by every request that arrives while it runs; each request waits ``PROBE_TIMEOUT`` at
    most. Without this a dashboard polling ``/healthz`` during a broker partition started
    a new blocked thread per request, in the pool the stages use too."""

    def __init__(self, fn: Callable[[], T], executor: ThreadPoolExecutor) -> None:
        self.fn, self.executor = fn, executor
        self.running: asyncio.Future[Any] | None = None
        #: The last answer computed, and when (time.time()): what a late request is told.
        self.last: tuple[float, Any] | None = None

    async def __call__(self) -> Any:
        if self.running is None or self.running.done():
            self.running = asyncio.get_running_loop().run_in_executor(self.executor, self.fn)
            self.running.add_done_callback(self._keep)
        return await asyncio.wait_for(asyncio.shield(self.running), PROBE_TIMEOUT)

    def _keep(self, future: asyncio.Future[Any]) -> None:
        """Keep the outcome, which also marks it read: a computation every request gave
        up on is not logged by asyncio as never retrieved."""
        if not future.cancelled() and future.exception() is None:
            self.last = (time.time(), future.result())

    def late(self, what: str, reasons: Callable[[Any], list[str]]) -> list[str]:
        """Why there is no answer, and what the last answer said if it found faults."""
        said = [f"{what} not computed within {PROBE_TIMEOUT:g}s: the store or the queue "
                "is not answering"]
        if self.last is not None and (before := reasons(self.last[1])):
            said.append(f"{time.time() - self.last[0]:.0f}s ago: {'; '.join(before)}")
        return said


async def start(cfg: ServerConfig, probes: Probes) -> web.AppRunner | None:
    """Start the server; a port already taken is logged, never fatal."""
    async def livez(_: web.Request) -> web.Response:
        return _check_response(*probes.live())

    executor = ThreadPoolExecutor(max_workers=3, thread_name_prefix="probe")
    ready, health, refresh = (_Shared(probes.ready, executor), _Shared(probes.health, executor),
                              _Shared(probes.refresh_metrics, executor))

    async def readyz(_: web.Request) -> web.Response:
        try:
            return _check_response(*await ready())
        except TimeoutError:
            return _check_response(False, ready.late("readiness", lambda r: list(r[1])))

    async def healthz(_: web.Request) -> web.Response:
        try:
            return web.json_response(await health())
        except TimeoutError:
            reasons = health.late("health", lambda h: list(h.get("reasons", [])))
            return web.json_response({"status": "failing", "time": time.time(),
                                      "reasons": reasons})

    async def metrics_page(_: web.Request) -> web.Response:
        try:
            await refresh()
        except Exception as exc:  # the gauges keep their last values; the counters are live
            log.debug("metrics_refresh_failed error=%r", str(exc) or type(exc).__name__)
        body = generate_latest(metrics.REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def stop_probes(_: web.Application) -> None:
        executor.shutdown(wait=False, cancel_futures=True)

    web_app = web.Application()
    web_app.on_cleanup.append(stop_probes)
    web_app.router.add_get("/livez", livez)
    web_app.router.add_get("/readyz", readyz)
    web_app.router.add_get("/healthz", healthz)
    web_app.router.add_get("/metrics", metrics_page)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, cfg.host, cfg.port)
    try:
        await site.start()
    except OSError as exc:
        log.error("server_failed host=%s port=%d error=%r (the daemon runs on without "
                  "/livez, /readyz, /healthz and /metrics)", cfg.host, cfg.port, str(exc))
        await runner.cleanup()
        return None
    port = runner.addresses[0][1] if runner.addresses else cfg.port
    log.info("server_started url=http://%s:%d/ (livez, readyz, healthz, metrics)", cfg.host, port)
    return runner
