"""Fixtures for the fetch layer: FeedStubs and a CanaryServer per test, stopped at teardown."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness.feedstub import CanaryServer, FeedStub


@pytest.fixture
def feed_stub() -> Iterator[FeedStub]:
    """A scriptable HTTP server on 127.0.0.1:0 (see tests/harness/feedstub.py)."""
    with FeedStub() as stub:
        yield stub


@pytest.fixture
def canary() -> Iterator[CanaryServer]:
    """A connection counter on 127.0.0.2: any hit is a fetch that should have been refused."""
    with CanaryServer() as server:
        yield server


@dataclass(frozen=True)
class TlsStub:
    """An HTTPS FeedStub whose certificate names ``hostname``; ``client`` trusts it."""

    stub: FeedStub
    hostname: str
    client: ssl.SSLContext


@pytest.fixture
def tls_stub(tmp_path: Path) -> Iterator[TlsStub]:
    """An HTTPS FeedStub on 127.0.0.1 with a throw-away certificate for ``feed.test``."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=feed.test",
         "-addext", "subjectAltName=DNS:feed.test"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    with FeedStub(tls=server) as stub:
        yield TlsStub(stub, "feed.test", client)
