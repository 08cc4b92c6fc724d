"""One place that opens SQLite the way monitor needs it: WAL, a busy timeout, and a lock
so the asyncio loop's worker threads can share one connection safely."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from monitor.errors import ServiceUnavailable


class SqliteDb:
    """A serialised connection. ``durability='full'`` survives power loss (slower);
    ``normal`` (WAL + synchronous=NORMAL) survives a crash of the process."""

    def __init__(self, path: Path, *, durability: str = "normal", busy_timeout: float = 30.0):
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(
                str(path), timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
            self.conn.execute("PRAGMA journal_mode=WAL")
            sync = "FULL" if durability == "full" else "NORMAL"
            self.conn.execute(f"PRAGMA synchronous={sync}")
            self.conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        except (sqlite3.Error, OSError) as exc:
            raise ServiceUnavailable(f"cannot open SQLite database {path}: {exc}") from exc
        self.lock = threading.RLock()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken up front (BEGIN IMMEDIATE), so two writers never
        deadlock on a lock upgrade; rolled back on any error."""
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with self.lock:
            return list(self.conn.execute(sql, params).fetchall())

    def close(self) -> None:
        with self.lock:
            self.conn.close()
