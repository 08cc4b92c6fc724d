"""A storage fault, said once: the state behind ``StoreError``.

Each SQLite connection (``monitor.db``, ``queue.db``) and the PostgreSQL store keeps one
``Fault``. The edge that translates a driver's error into ``StoreError`` reports it here:

* the first failed operation logs ERROR ``storage_failing`` (once, however many loops
  retry and however often); later failures log at DEBUG only;
* while the fault is set, ``ping`` raises it, so ``/healthz`` says ``failing`` and
  ``/readyz`` answers 503;
* a write that changes something clears it and logs INFO ``storage_recovered`` (once).
  A fault that began on a read is also cleared by a read that works; one that began on a
  write is not (reads keep working on a full disk), so health does not flap.
"""

from __future__ import annotations

import logging
import threading
import time

from monitor.errors import StoreError

log = logging.getLogger("monitor.store")


class Fault:
    def __init__(self, name: str) -> None:
        self.name = name  # what to call the database in logs: never a URL with a password
        self.error: str | None = None
        self.since: float | None = None
        self.failures = 0
        self._from_read = False
        self._lock = threading.Lock()

    def failed(self, exc: BaseException, *, write: bool) -> StoreError:
        """Record a failed operation; returns the StoreError to raise in its place."""
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        with self._lock:
            began = self.error is None
            if began:
                self.since, self.failures, self._from_read = time.time(), 0, not write
            elif write:
                self._from_read = False
            self.error = text
            self.failures += 1
        if began:
            log.error("storage_failing db=%r error=%r: nothing can be recorded there; every "
                      "loop retries, /readyz is 503 until a write succeeds", self.name, text)
        else:
            log.debug("storage_still_failing db=%r error=%r", self.name, text)
        return StoreError(f"{self.name}: {text}")

    def succeeded(self, *, wrote: bool) -> None:
        """An operation worked; ``wrote``: it changed something (proof writes work)."""
        if self.error is None:  # the usual case, without taking the lock
            return
        with self._lock:
            if self.error is None or not (wrote or self._from_read):
                return
            since, failures = self.since or time.time(), self.failures
            self.error = self.since = None
        log.info("storage_recovered db=%r after=%.1fs failures=%d", self.name,
                 time.time() - since, failures)

    def check(self) -> None:
        """Raise StoreError while the fault lasts (for ``ping``)."""
        error, since = self.error, self.since
        if error is not None:
            ago = time.time() - (since or time.time())
            raise StoreError(f"{self.name}: {error} (failing for {ago:.0f}s, "
                             f"{self.failures} operations failed)")
