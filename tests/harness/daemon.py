"""Run the real ``monitor`` command as a subprocess against a config written by the test,
sampling its memory, so acceptance tests exercise exactly what an operator runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[2]


def write_config(path: Path, data: dict[str, Any]) -> Path:
    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    with path.open("w", encoding="utf-8") as fh:
        yaml.dump(data, fh)
    return path


def base_config(
    tmp: Path,
    sources: list[dict[str, Any]],
    notifiers: list[dict[str, Any]],
    rules: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "sources": sources,
        "queue": {"path": str(tmp / "data" / "queue.db")},
        "store": {"url": f"sqlite:///{tmp / 'data' / 'monitor.db'}"},
        "rules": {"paths": [rules or str(REPO / "rules")]},
        "notifiers": notifiers,
        "fetch": {"total_deadline": "5s", "read_timeout": "3s", "connect_timeout": "2s"},
        "delivery": {"backoff_initial": "0.2s", "backoff_max": "1s", "drain_timeout": "60s"},
        "log_level": "INFO",
        "server": {"port": 0},
    }
    for key, value in extra.items():
        config[key] = value if not isinstance(value, dict) else config.get(key, {}) | value
    return config


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str
    seconds: float
    peak_rss: int


def _env(env: dict[str, str] | None) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    return base | (env or {})


def _sample(proc: psutil.Process, peak: list[int], done: threading.Event) -> None:
    while not done.is_set():
        try:
            peak[0] = max(peak[0], proc.memory_info().rss)
        except psutil.Error:
            return
        done.wait(0.02)


def run_monitor(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Result:
    """Run ``python -m monitor ARGS`` to completion, with its peak RSS."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", *args],
        cwd=REPO,
        env=_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak, done = [0], threading.Event()
    sampler = threading.Thread(target=_sample, args=(psutil.Process(proc.pid), peak, done))
    sampler.start()
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        done.set()
        sampler.join()
        if proc.poll() is None:
            proc.kill()
    return Result(proc.returncode, out, err, time.monotonic() - started, peak[0])


class Daemon:
    """``monitor run`` in the background; ``stop()`` sends SIGTERM and waits. Output goes
    to files, not pipes, so a chatty daemon can never block on a full pipe."""

    def __init__(self, config: Path, env: dict[str, str] | None = None,
                 args: tuple[str, ...] = ()) -> None:
        self._out = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 - closed in stop()
        self._err = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(config), *args],
            cwd=REPO, env=_env(env), stdout=self._out, stderr=self._err, text=True,
        )
        self.pid = self.proc.pid

    def log_text(self) -> str:
        """The child's stderr so far, read without moving the shared file offset (the
        child writes through the same open file description)."""
        fd = self._err.fileno()
        size = os.fstat(fd).st_size
        return os.pread(fd, size, 0).decode("utf-8", "replace") if size else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> Result:
        started = time.monotonic()
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        outputs = []
        for fh in (self._out, self._err):
            fh.seek(0)
            outputs.append(fh.read())
            fh.close()
        return Result(self.proc.returncode, outputs[0], outputs[1], time.monotonic() - started, 0)
