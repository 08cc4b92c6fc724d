"""FaultProxy (tests/harness/faultproxy.py) against a real threaded echo server on 127.0.0.1.

Every socket has a timeout, and conditions are polled with a deadline, so a broken proxy
fails a test instead of hanging it.
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Iterator

import pytest

from tests.harness.faultproxy import FaultProxy
from tests.harness.probes import free_port, wait_until

TIMEOUT = 2.0


class _EchoServer(socketserver.ThreadingTCPServer):
    """Echoes until EOF, then closes; counts what it saw so a test can tell what got through."""

    allow_reuse_address = True
    daemon_threads = True
    block_on_close = False

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), _EchoHandler)
        self.lock = threading.Lock()
        self.accepted = 0
        self.open = 0
        self.received = bytearray()

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _EchoHandler(socketserver.BaseRequestHandler):
    server: _EchoServer

    def handle(self) -> None:
        echo = self.server
        with echo.lock:
            echo.accepted += 1
            echo.open += 1
        self.request.settimeout(10)
        try:
            while data := self.request.recv(65536):
                with echo.lock:
                    echo.received += data
                self.request.sendall(data)
        except OSError:
            pass
        finally:
            with echo.lock:
                echo.open -= 1


@contextlib.contextmanager
def echo_server(port: int = 0) -> Iterator[_EchoServer]:
    server = _EchoServer(port)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)


@pytest.fixture(autouse=True)
def quiet_loop(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """The proxy's loop logs what nobody handled (a task's exception, a cancelled handler): a
    bug even when the sockets behaved, and one no socket assertion would see."""
    yield
    records = [*caplog.get_records("setup"), *caplog.get_records("call"), *caplog.records]
    assert [r.getMessage() for r in records if r.levelno >= logging.WARNING] == []


@pytest.fixture
def echo() -> Iterator[_EchoServer]:
    with echo_server() as server:
        yield server


@pytest.fixture
def proxy(echo: _EchoServer) -> Iterator[FaultProxy]:
    with FaultProxy("127.0.0.1", echo.port) as p:
        yield p


def connect(proxy: FaultProxy) -> socket.socket:
    return socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT)


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


def roundtrip(sock: socket.socket, data: bytes = b"ping") -> bytes:
    sock.sendall(data)
    return recv_exactly(sock, len(data))


def is_closed(sock: socket.socket, timeout: float = TIMEOUT) -> bool:
    """The peer closed (FIN) or reset the connection within ``timeout``, sending nothing."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def is_silent(sock: socket.socket, seconds: float) -> bool:
    """Nothing arrives for ``seconds`` and the connection stays open."""
    sock.settimeout(seconds)
    try:
        sock.recv(1)
    except TimeoutError:
        return True
    except ConnectionResetError:
        return False
    finally:
        sock.settimeout(TIMEOUT)
    return False


def test_bytes_pass_both_ways_and_are_counted(proxy: FaultProxy, echo: _EchoServer) -> None:
    payload = random.Random(1).randbytes(1024 * 1024)  # many chunks, back-pressure both ways
    with connect(proxy) as a, connect(proxy) as b:
        sender = threading.Thread(target=a.sendall, args=(payload,), daemon=True)
        sender.start()
        assert recv_exactly(a, len(payload)) == payload
        sender.join(TIMEOUT)
        assert roundtrip(b, b"hello") == b"hello"
        assert proxy.bytes_forwarded == 2 * (len(payload) + len(b"hello"))
        assert wait_until(lambda: proxy.connections == 2, TIMEOUT)
        assert proxy.open_connections == 2
        assert echo.accepted == 2
    assert wait_until(lambda: proxy.open_connections == 0, TIMEOUT)
    assert proxy.connections == 2


def test_half_close_passes_eof_on_both_ways(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        sock.sendall(b"last words")
        sock.shutdown(socket.SHUT_WR)  # the echo server answers, then closes on this EOF
        assert recv_exactly(sock, 64) == b"last words"
        assert sock.recv(1) == b""
    assert wait_until(lambda: proxy.open_connections == 0, TIMEOUT)


def test_blackhole_silences_connections_until_off_then_closes_them(
    proxy: FaultProxy, echo: _EchoServer
) -> None:
    with connect(proxy) as old:
        assert roundtrip(old, b"before") == b"before"
        proxy.blackhole()
        old.sendall(b"lost")
        with connect(proxy) as new:  # accepted, though nothing will come of it
            new.sendall(b"lost too")
            assert is_silent(old, 0.5)
            assert is_silent(new, 0.05)
            assert wait_until(lambda: proxy.connections == 2, TIMEOUT)
            assert echo.accepted == 1  # the new connection was never made upstream
            assert bytes(echo.received) == b"before"

            proxy.blackhole(False)
            assert is_closed(old)
            assert is_closed(new)
    with connect(proxy) as fresh:
        assert roundtrip(fresh, b"after") == b"after"


def test_refuse_closes_existing_and_new_connections_until_off(
    proxy: FaultProxy, echo: _EchoServer
) -> None:
    with connect(proxy) as old:
        assert roundtrip(old) == b"ping"
        proxy.refuse()
        assert is_closed(old)
    with connect(proxy) as new:
        assert is_closed(new)
    assert wait_until(lambda: proxy.connections == 2, TIMEOUT)
    assert echo.accepted == 1
    proxy.refuse(False)
    with connect(proxy) as again:
        assert roundtrip(again) == b"ping"


def test_reset_peers_resets_clients_and_closes_upstream(
    proxy: FaultProxy, echo: _EchoServer
) -> None:
    with connect(proxy) as sock:
        assert roundtrip(sock) == b"ping"
        proxy.reset_peers()
        assert proxy.open_connections == 0
        with pytest.raises(ConnectionResetError):
            sock.recv(1)
    assert wait_until(lambda: echo.open == 0, TIMEOUT)
    with connect(proxy) as again:
        assert roundtrip(again) == b"ping"


def test_a_client_resetting_mid_stream_leaves_the_proxy_serving(proxy: FaultProxy) -> None:
    rude = connect(proxy)
    rude.sendall(b"x" * 100_000)
    rude.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    rude.close()  # RST, with the echo still in flight towards it
    assert wait_until(lambda: proxy.open_connections == 0, TIMEOUT)
    with connect(proxy) as polite:
        assert roundtrip(polite) == b"ping"


def test_latency_delays_both_directions_until_turned_off(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        proxy.latency(0.3)
        start = time.monotonic()
        assert roundtrip(sock) == b"ping"
        assert 0.55 <= time.monotonic() - start < 3.0

        proxy.latency(0)
        start = time.monotonic()
        assert roundtrip(sock) == b"ping"
        assert time.monotonic() - start < 0.25


def test_latency_delays_a_stream_in_order_without_throttling_it(proxy: FaultProxy) -> None:
    payload = random.Random(7).randbytes(1024 * 1024)  # aperiodic: a reordered chunk shows
    with connect(proxy) as sock:
        proxy.latency(0.25)
        start = time.monotonic()
        sender = threading.Thread(target=sock.sendall, args=(payload,), daemon=True)
        sender.start()
        received = recv_exactly(sock, len(payload))
        elapsed = time.monotonic() - start
        sender.join(TIMEOUT)
    assert received == payload
    # Every chunk is delayed 0.25 s each way, but chunks travel together: holding back one
    # 64 KiB chunk after the other would take 16 x 0.25 s each way.
    assert 0.5 <= elapsed < 2.0


def test_unreachable_upstream_closes_the_client_and_serves_once_it_is_up() -> None:
    upstream_port, proxy_port = free_port(), free_port()
    with FaultProxy("127.0.0.1", upstream_port, port=proxy_port) as proxy:
        assert proxy.port == proxy_port
        with connect(proxy) as early:
            assert is_closed(early)
        assert wait_until(lambda: proxy.open_connections == 0, TIMEOUT)
        with echo_server(upstream_port), connect(proxy) as late:
            assert roundtrip(late) == b"ping"
        assert proxy.connections == 2


def test_stop_closes_client_connections_and_is_idempotent(echo: _EchoServer) -> None:
    proxy = FaultProxy("127.0.0.1", echo.port).start()
    with connect(proxy) as sock:
        assert roundtrip(sock) == b"ping"
        proxy.stop()
        assert is_closed(sock)
    proxy.stop()
    with pytest.raises(ConnectionRefusedError):
        connect(proxy).close()
    assert wait_until(lambda: echo.open == 0, TIMEOUT)
    with pytest.raises(RuntimeError):
        proxy.blackhole()
