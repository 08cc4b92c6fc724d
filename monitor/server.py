"""``/healthz`` and ``/metrics`` on 127.0.0.1 (by default): what an operator's probe and
Prometheus read. Served from the daemon's own event loop, so a wedged loop shows as a
probe timeout, which is exactly what a liveness probe should see."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from monitor import metrics
from monitor.health import health

if TYPE_CHECKING:
    from monitor.app import App

log = logging.getLogger("monitor.server")


def refresh_gauges(app: App) -> None:
    for name, depth in app.queue_depths().items():
        metrics.QUEUE_DEPTH.labels(name).set(depth)
    for state, n in app.store.delivery_counts().items():
        metrics.DELIVERY_ROWS.labels(state).set(n)


async def start(app: App) -> web.AppRunner | None:
    """Start the server; a port already taken is logged, never fatal."""
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response(
            await asyncio.to_thread(health, app.config, app.store, app.queue))

    async def metrics_page(_: web.Request) -> web.Response:
        await asyncio.to_thread(refresh_gauges, app)
        body = generate_latest(metrics.REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    web_app = web.Application()
    web_app.router.add_get("/healthz", healthz)
    web_app.router.add_get("/metrics", metrics_page)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    cfg = app.config.server
    site = web.TCPSite(runner, cfg.host, cfg.port)
    try:
        await site.start()
    except OSError as exc:
        log.error("server_failed host=%s port=%d error=%r (the daemon runs on without "
                  "/healthz and /metrics)", cfg.host, cfg.port, str(exc))
        await runner.cleanup()
        return None
    port = runner.addresses[0][1] if runner.addresses else cfg.port
    log.info("server_started url=http://%s:%d/ (healthz, metrics)", cfg.host, port)
    return runner
