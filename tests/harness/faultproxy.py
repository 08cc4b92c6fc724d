"""FaultProxy: a TCP proxy on 127.0.0.1 that a test puts between the daemon and a real server
(a Kafka-protocol broker, an HTTP stub) to break the network while the daemon runs.

The daemon is a subprocess and the tests are synchronous, so the proxy runs its own event loop
in a background thread. Each public method hands its work to that loop and waits until it is
done: a fault is in force, and the connections it closes are closed, when the method returns.

Faults:

* ``blackhole()``: a partition. Connections are accepted and held, nothing is answered and
  nothing flows. Turning it off closes what was blackholed: those byte streams lost data.
* ``refuse()``: a service down behind a load balancer: accepted, then closed at once.
* ``reset_peers()``: every connection reset (RST) at once, as a crashed peer or a NAT does.
* ``latency(seconds)``: each chunk held back by ``seconds``, in both directions, in order.

The proxy connects upstream only when a client connects, so it can listen (and a Kafka broker
can advertise its port) before the upstream server exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import threading
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

_CHUNK = 64 * 1024
#: Chunks read ahead of the writer, per direction: enough for a delayed stream to keep moving,
#: few enough that a client that stops reading still pushes back on the sender.
_QUEUED = 16
#: Seconds a public method waits for the loop. A proxy stuck longer is a bug, not a fault.
_TIMEOUT = 5.0

#: (monotonic time the chunk is due, chunk); b"" is the end of the stream.
_Chunks = asyncio.Queue[tuple[float, bytes]]


@dataclass(eq=False)
class _Conn:
    """A client connection, with what it takes to end it from outside: its task and sockets."""

    client: asyncio.StreamWriter
    task: asyncio.Task[Any]
    upstream: asyncio.StreamWriter | None = None
    blackholed: bool = False

    def abort(self, *, reset: bool = False) -> None:
        """Abort, not close: a fault does not wait to flush what a peer has yet to read."""
        if reset:
            sock = self.client.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):  # already closed: nothing left to reset
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.client.transport.abort()
        if self.upstream is not None:
            self.upstream.transport.abort()


class FaultProxy:
    """Forwards 127.0.0.1:``port`` to ``upstream_host:upstream_port``, with faults on demand.

    ``port=0`` binds a free port in ``start()`` (no race with another test taking it); pass a
    port when it must be known before the proxy starts.
    """

    def __init__(self, upstream_host: str, upstream_port: int, *, port: int = 0) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._conns: set[_Conn] = set()
        self._blackhole = False
        self._refuse = False
        self._latency = 0.0
        self._stopping = False
        self._connections = 0
        self._bytes = 0

    @property
    def connections(self) -> int:
        """Client connections accepted so far, refused and blackholed ones included: how often
        the daemon tried, which is what a retry or reconnect test counts."""
        return self._connections

    @property
    def open_connections(self) -> int:
        return len(self._conns)

    @property
    def bytes_forwarded(self) -> int:
        """Bytes handed on, both directions; bytes a blackhole swallowed are not counted."""
        return self._bytes

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        if self._loop is not None:
            raise RuntimeError("FaultProxy is already running")
        loop = asyncio.new_event_loop()
        self._loop, self._stopping = loop, False
        self._thread = threading.Thread(
            target=_run_loop, args=(loop,), name="faultproxy", daemon=True
        )
        self._thread.start()
        try:
            self._server = self._call(self._listen())
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Safe to call twice, or after a failed start: teardown code calls it unconditionally."""
        loop, thread = self._loop, self._thread
        self._loop = None
        self._thread = None
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(_TIMEOUT)
        except TimeoutError:
            log.warning("FaultProxy on port %d did not close its connections in time", self.port)
        finally:
            with contextlib.suppress(RuntimeError):  # the loop has already gone
                loop.call_soon_threadsafe(loop.stop)
            thread.join(_TIMEOUT)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- faults ----------------------------------------------------------------------------

    def blackhole(self, on: bool = True) -> None:
        self._call(self._set_blackhole(on))

    def refuse(self, on: bool = True) -> None:
        self._call(self._set_refuse(on))

    def reset_peers(self) -> None:
        self._call(self._close(self._conns, reset=True))

    def latency(self, seconds: float) -> None:
        """Chunks already in flight keep the delay they were read with, so order is kept."""
        if seconds < 0:
            raise ValueError(f"latency must be >= 0, not {seconds}")
        self._call(self._set_latency(seconds))

    # -- the loop's side -------------------------------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the proxy's loop and wait: the test thread never touches its state."""
        if self._loop is None:
            coro.close()
            raise RuntimeError("FaultProxy is not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(_TIMEOUT)

    async def _listen(self) -> asyncio.Server:
        server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = int(server.sockets[0].getsockname()[1])
        return server

    async def _shutdown(self) -> None:
        self._stopping = True  # a connection accepted from now on closes itself
        if self._server is not None:
            self._server.close()
            self._server = None
        await self._close(self._conns)

    async def _set_blackhole(self, on: bool) -> None:
        self._blackhole = on
        if on:
            for conn in self._conns:
                conn.blackholed = True
        else:
            await self._close(conn for conn in self._conns if conn.blackholed)

    async def _set_refuse(self, on: bool) -> None:
        self._refuse = on
        if on:
            await self._close(self._conns)

    async def _set_latency(self, seconds: float) -> None:
        self._latency = seconds

    async def _close(self, conns: Iterable[_Conn], *, reset: bool = False) -> None:
        """Wait for the connections' tasks to end, so they are gone when the caller returns."""
        doomed = list(conns)
        for conn in doomed:
            conn.abort(reset=reset)
            conn.task.cancel()
        if doomed:
            await asyncio.wait([conn.task for conn in doomed], timeout=_TIMEOUT / 2)

    async def _serve(self, reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        """One client connection, accept to close. Whatever goes wrong ends it alone: a peer
        that resets or an upstream that is down is the normal business of a fault proxy."""
        self._connections += 1
        task = asyncio.current_task()
        if self._stopping or self._refuse or task is None:
            client.transport.abort()
            return
        conn = _Conn(client, task, blackholed=self._blackhole)
        self._conns.add(conn)
        try:
            if conn.blackholed:
                await _swallow(reader)
            else:
                await self._forward(conn, reader)
        except asyncio.CancelledError:
            # Only _close() cancels this task, having closed the sockets. Ending normally keeps
            # Python 3.11's start_server from logging the cancelled task as an unhandled error.
            pass
        except Exception as exc:
            log.debug("FaultProxy connection ended: %r", exc)
            conn.abort()
        finally:
            self._conns.discard(conn)
            client.close()  # after a clean end of both directions: flushes what is buffered
            if conn.upstream is not None:
                conn.upstream.close()

    async def _forward(self, conn: _Conn, client_reader: asyncio.StreamReader) -> None:
        """Two directions, each a reader and a writer; an error in any of the four ends them all
        (the connection is broken), while an EOF ends only its own direction (half-close)."""
        upstream_reader, conn.upstream = await asyncio.open_connection(
            self.upstream_host, self.upstream_port
        )
        async with asyncio.TaskGroup() as tasks:
            for src, dst in ((client_reader, conn.upstream), (upstream_reader, conn.client)):
                chunks: _Chunks = asyncio.Queue(_QUEUED)
                tasks.create_task(self._read(conn, src, chunks))
                tasks.create_task(self._write(conn, chunks, dst))

    async def _read(self, conn: _Conn, src: asyncio.StreamReader, chunks: _Chunks) -> None:
        """Read chunks as they come and stamp each with when it is due, so latency delays every
        chunk by the same amount instead of throttling the stream to a chunk per delay."""
        loop = asyncio.get_running_loop()
        while chunk := await src.read(_CHUNK):
            if not conn.blackholed:
                await chunks.put((loop.time() + self._latency, chunk))
        await chunks.put((loop.time() + self._latency, b""))  # EOF, in its place in the stream

    async def _write(self, conn: _Conn, chunks: _Chunks, dst: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due, chunk = await chunks.get()
            if (delay := due - loop.time()) > 0:
                await asyncio.sleep(delay)
            if not chunk:
                # A blackhole swallows the FIN too; blackhole(False) closes the connection.
                if not conn.blackholed and dst.can_write_eof():
                    dst.write_eof()
                return
            if conn.blackholed:  # turned on while the chunk was queued
                continue
            self._bytes += len(chunk)
            dst.write(chunk)
            await dst.drain()


async def _swallow(reader: asyncio.StreamReader) -> None:
    """Hold a connection made during a blackhole open and answer nothing, as a partition would,
    until blackhole(False) or stop() closes it. Reading keeps the client's sends going nowhere."""
    while await reader.read(_CHUNK):
        pass
    await asyncio.get_running_loop().create_future()


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())  # getaddrinfo threads
        loop.close()
