"""FeedStub and CanaryServer: real loopback servers for the fetch-layer tests (RELIABILITY.md §3).

FeedStub is a threaded HTTP/1.1 server on 127.0.0.1:0 whose paths are scripted one by one
(``stub.serve(...)``, ``stub.redirect(...)``, ``stub.gzip_bomb(...)``, …). It records every
request and counts the bytes it sent, so a test can assert what a client asked for and how
much of a hostile body it actually pulled. Every loop in a behaviour is bounded by a byte or
time budget and by the stub's stop event, so a broken client can never wedge the suite.

``FeedStub(tls=context)`` serves HTTPS with a test certificate (see ``tls_stub`` fixture).

CanaryServer listens on another loopback address (127.0.0.2) and only counts connections:
any hit means a fetch got through that should have been refused.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Behaviour = Callable[["_Handler"], None]
MiB = 1024 * 1024
LAST_MODIFIED = "Fri, 14 Feb 2025 10:00:00 GMT"


@dataclass(frozen=True)
class Request:
    """One request as the stub saw it; header names are lower-case."""

    method: str
    path: str
    headers: dict[str, str]
    time: float


@dataclass
class _Stats:
    requests: list[Request] = field(default_factory=list)
    bytes_sent: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # an idle keep-alive connection or a stalled reader frees its thread
    server: _Server

    def do_GET(self) -> None:
        stub = self.server.stub
        path = self.path.split("?", 1)[0]
        stub._record(
            Request(
                "GET", self.path, {k.lower(): v for k, v in self.headers.items()}, time.monotonic()
            )
        )
        behaviour = stub._routes.get(path)
        if behaviour is None:
            self.send_bytes(404, b"not found", "text/plain")
            return
        try:
            behaviour(self)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log."""

    # --- building blocks used by behaviours ---

    @property
    def stop(self) -> threading.Event:
        return self.server.stub._stop

    def write(self, data: bytes) -> None:
        self.wfile.write(data)
        self.wfile.flush()
        self.server.stub._count(self.path.split("?", 1)[0], len(data))

    def head(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.flush()

    def send_bytes(self, status: int, body: bytes, content_type: str, **extra: str) -> None:
        self.head(status, {"Content-Type": content_type, "Content-Length": str(len(body)), **extra})
        self.write(body)

    def write_chunk(self, data: bytes) -> None:
        self.write(b"%x\r\n%s\r\n" % (len(data), data))

    def reset(self) -> None:
        """Close with RST instead of FIN (SO_LINGER 0)."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    stub: FeedStub


# --- behaviours ------------------------------------------------------------------------------


def _serve(body: bytes, content_type: str, etag: bool, extra: dict[str, str]) -> Behaviour:
    tag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'

    def behaviour(h: _Handler) -> None:
        headers = dict(extra)
        if etag:
            headers |= {"ETag": tag, "Last-Modified": LAST_MODIFIED}
            match = h.headers.get("If-None-Match")  # when present, it alone decides (RFC 9110)
            if match == tag or (
                match is None and h.headers.get("If-Modified-Since") == LAST_MODIFIED
            ):
                h.head(304, {**headers, "Content-Length": "0"})
                return
        h.send_bytes(200, body, content_type, **headers)

    return behaviour


def _bomb_stream(encoding: str, decoded_size: int) -> Callable[[], Any]:
    """Yield a gzip/zlib stream of ``decoded_size`` zero bytes, about 1 KB per MiB.

    After a full flush, deflate output for the same input is identical, so one compressed
    MiB is repeated instead of compressing a GiB; the trailer's checksum is only computed if
    a client ever reads that far.
    """

    def generate() -> Any:
        block = bytes(MiB)
        comp = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        segment = comp.compress(block) + comp.flush(zlib.Z_FULL_FLUSH)
        yield b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" if encoding == "gzip" else b"\x78\xda"
        for _ in range(decoded_size // MiB):
            yield segment
        yield b"\x03\x00"  # final empty deflate block
        crc, adler = 0, 1
        for _ in range(decoded_size // MiB):
            crc, adler = zlib.crc32(block, crc), zlib.adler32(block, adler)
        if encoding == "gzip":
            yield struct.pack("<II", crc, decoded_size & 0xFFFFFFFF)
        else:
            yield struct.pack(">I", adler)

    return generate


class FeedStub:
    """A scriptable feed server on 127.0.0.1:0. Use as a context manager or call stop()."""

    def __init__(self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> None:
        self._routes: dict[str, Behaviour] = {}
        self._stats = _Stats()
        self._stop = threading.Event()
        self._server = _Server((host, 0), _Handler)
        self._server.stub = self
        self.scheme = "https" if tls else "http"
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        address = self._server.server_address
        self.host: str = str(address[0])
        self.port: int = int(address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, daemon=True, kwargs={"poll_interval": 0.05}
        )
        self._thread.start()

    def __enter__(self) -> FeedStub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def url(self, path: str) -> str:
        return f"{self.scheme}://{self.host}:{self.port}{path}"

    # --- observation ---

    @property
    def requests(self) -> list[Request]:
        with self._stats.lock:
            return list(self._stats.requests)

    def requests_for(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path.split("?", 1)[0] == path]

    def bytes_sent(self, path: str) -> int:
        with self._stats.lock:
            return self._stats.bytes_sent.get(path, 0)

    def _record(self, request: Request) -> None:
        with self._stats.lock:
            self._stats.requests.append(request)

    def _count(self, path: str, n: int) -> None:
        with self._stats.lock:
            self._stats.bytes_sent[path] = self._stats.bytes_sent.get(path, 0) + n

    # --- scripting: normal responses ---

    def route(self, path: str, behaviour: Behaviour) -> str:
        """Install any behaviour (a function of the handler); returns the path's URL."""
        self._routes[path] = behaviour
        return self.url(path)

    def serve(
        self,
        path: str,
        body: bytes,
        content_type: str = "application/rss+xml",
        *,
        etag: bool = True,
        headers: dict[str, str] | None = None,
    ) -> str:
        """Serve ``body``; with ``etag`` answer 304 to a matching conditional GET. Calling
        again replaces the body (a feed that changed between polls)."""
        return self.route(path, _serve(body, content_type, etag, headers or {}))

    def status(
        self,
        path: str,
        code: int,
        body: bytes = b"",
        content_type: str = "text/html",
        headers: dict[str, str] | None = None,
    ) -> str:
        return self.route(path, lambda h: h.send_bytes(code, body, content_type, **(headers or {})))

    def redirect(self, path: str, location: str, code: int = 302) -> str:
        return self.route(
            path, lambda h: h.head(code, {"Location": location, "Content-Length": "0"})
        )

    def redirect_chain(self, prefix: str, hops: int, final: str) -> str:
        """``prefix/0`` -> ``prefix/1`` -> … -> ``final`` (``hops`` redirects in all)."""
        for i in range(hops):
            nxt = self.url(f"{prefix}/{i + 1}") if i + 1 < hops else final
            self.redirect(f"{prefix}/{i}", nxt)
        return self.url(f"{prefix}/0")

    # --- scripting: hostile bodies ---

    def compressed_bomb(
        self, path: str, encoding: str = "gzip", decoded_size: int = 1024 * MiB
    ) -> str:
        """``encoding`` is gzip or deflate; about 1 MB on the wire decodes to 1 GiB."""
        generate = _bomb_stream(encoding, decoded_size)

        def behaviour(h: _Handler) -> None:
            h.head(
                200,
                {
                    "Content-Type": "application/rss+xml",
                    "Content-Encoding": encoding,
                    "Transfer-Encoding": "chunked",
                },
            )
            for piece in generate():
                if h.stop.is_set():
                    break
                h.write_chunk(piece)
            h.write(b"0\r\n\r\n")

        return self.route(path, behaviour)

    def stacked_encoding(self, path: str, layers: str = "gzip, gzip, deflate") -> str:
        body = zlib.compress(zlib.compress(b"<rss/>"))
        return self.route(
            path,
            lambda h: h.send_bytes(
                200, body, "application/rss+xml", **{"Content-Encoding": layers}
            ),
        )

    def endless(self, path: str, max_bytes: int = 64 * MiB) -> str:
        """A chunked stream of valid ``<item>`` XML with no end (bounded by ``max_bytes``)."""
        piece = b"<item><title>endless</title><link>http://example.com/x</link></item>\n" * 200

        def behaviour(h: _Handler) -> None:
            # A small send buffer makes bytes_sent track what the client really pulled.
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
            h.head(200, {"Content-Type": "application/rss+xml", "Transfer-Encoding": "chunked"})
            h.write_chunk(b"<?xml version='1.0'?><rss version='2.0'><channel>")
            sent = 0
            while sent < max_bytes and not h.stop.is_set():
                h.write_chunk(piece)
                sent += len(piece)
            h.close_connection = True

        return self.route(path, behaviour)

    def huge_length(self, path: str, length: int = 5_000_000_000) -> str:
        def behaviour(h: _Handler) -> None:
            h.head(200, {"Content-Type": "application/rss+xml", "Content-Length": str(length)})
            h.write(b"<rss>" + b" " * 65536)
            h.close_connection = True

        return self.route(path, behaviour)

    # --- scripting: hostile timing ---

    def slowloris(self, path: str, interval: float = 1.0, max_seconds: float = 30.0) -> str:
        """Headers at once, then one byte every ``interval`` seconds."""

        def behaviour(h: _Handler) -> None:
            h.head(200, {"Content-Type": "application/rss+xml", "Content-Length": "100000"})
            deadline = time.monotonic() + max_seconds
            while time.monotonic() < deadline and not h.stop.wait(interval):
                h.write(b" ")
            h.close_connection = True

        return self.route(path, behaviour)

    def hang(self, path: str, max_seconds: float = 30.0) -> str:
        """Accept the request and never answer."""

        def behaviour(h: _Handler) -> None:
            h.stop.wait(max_seconds)
            h.close_connection = True

        return self.route(path, behaviour)

    def reset_mid_body(self, path: str, body: bytes) -> str:
        def behaviour(h: _Handler) -> None:
            h.head(200, {"Content-Type": "application/rss+xml", "Content-Length": str(len(body))})
            h.write(body[: len(body) // 2])
            time.sleep(0.05)
            h.reset()

        return self.route(path, behaviour)

    def short_body(self, path: str, body: bytes, claimed: int | None = None) -> str:
        """Claim a longer Content-Length than sent, then close."""

        def behaviour(h: _Handler) -> None:
            h.head(
                200,
                {
                    "Content-Type": "application/rss+xml",
                    "Content-Length": str(claimed or len(body) * 2),
                },
            )
            h.write(body)
            h.close_connection = True

        return self.route(path, behaviour)


class CanaryServer:
    """Counts TCP connections on a second loopback address; answers any request with a
    small body containing ``CANARY_TEXT`` so a leak would also show up in content."""

    CANARY_TEXT = "CANARY-SERVER-LEAK"

    def __init__(self, host: str = "127.0.0.2", port: int = 0) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self._sock.listen(16)
        self._sock.settimeout(0.05)
        self.host, self.port = self._sock.getsockname()[:2]
        self._hits = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def hits(self) -> int:
        with self._lock:
            return self._hits

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def _run(self) -> None:
        body = self.CANARY_TEXT.encode()
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            with self._lock:
                self._hits += 1
            with conn:
                conn.settimeout(1)
                try:
                    conn.recv(65536)
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\n"
                        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
                    )
                except OSError:
                    pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()

    def __enter__(self) -> CanaryServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
