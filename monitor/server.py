"""``/livez``, ``/readyz``, ``/healthz`` and ``/metrics`` on 127.0.0.1 (by default).

Served from the daemon's own event loop, so a wedged loop shows as a probe timeout, which
is what a liveness probe should see. The server knows nothing of the daemon: it is handed
``Probes``, plain callables, so it can be started (and tested) on its own.

* ``/livez``: 200 while the daemon's loops are alive; 503 when one has died.
* ``/readyz``: 503 when the store or the queue cannot be reached, or a stage loop has not
  turned for ``server.stall_after``; 200 otherwise (a failing feed is not a reason).
* ``/healthz``: the health document (``monitor.health``) as JSON, always 200 when it can be
  computed, so a dashboard can read ``status`` (ok | degraded | failing).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from monitor import metrics
from monitor.config import ServerConfig

log = logging.getLogger("monitor.server")

Check = Callable[[], tuple[bool, list[str]]]


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


async def start(cfg: ServerConfig, probes: Probes) -> web.AppRunner | None:
    """Start the server; a port already taken is logged, never fatal."""
    async def livez(_: web.Request) -> web.Response:
        return _check_response(*probes.live())

    async def readyz(_: web.Request) -> web.Response:
        return _check_response(*await asyncio.to_thread(probes.ready))

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response(await asyncio.to_thread(probes.health))

    async def metrics_page(_: web.Request) -> web.Response:
        await asyncio.to_thread(probes.refresh_metrics)
        body = generate_latest(metrics.REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    web_app = web.Application()
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
