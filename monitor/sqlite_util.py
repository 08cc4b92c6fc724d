"""One place that opens SQLite the way monitor needs it: WAL, a busy timeout, and a lock
so the asyncio loop's worker threads can share one connection safely."""

from __future__ import annotations

import os
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
            st = os.stat(path)
        except (sqlite3.Error, OSError) as exc:
            raise ServiceUnavailable(f"cannot open SQLite database {path}: {exc}") from exc
        self.identity = (st.st_dev, st.st_ino)
        self.lock = threading.RLock()

    def ping(self, timeout: float = 5.0) -> None:
        """Raise ServiceUnavailable unless the file we opened is still at ``path`` and
        answers a read. A deleted or replaced file keeps working through our open handle,
        which is exactly the danger: everything written from then on is lost at restart.
        """
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise ServiceUnavailable(f"SQLite database {self.path} is gone "
                                     f"({exc.strerror or exc})") from None
        if (st.st_dev, st.st_ino) != self.identity:
            raise ServiceUnavailable(f"SQLite database {self.path} was replaced by another "
                                     "file while open")
        if not self.lock.acquire(timeout=timeout):
            raise ServiceUnavailable(f"SQLite database {self.path} busy for over {timeout:g}s")
        try:
            self.conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        except sqlite3.Error as exc:
            raise ServiceUnavailable(f"SQLite database {self.path}: {exc}") from None
        finally:
            self.lock.release()

    def add_columns(self, table: str, columns: dict[str, str]) -> None:
        """Add columns a newer version needs to a table an older version created."""
        with self.lock:
            have = {str(row[1]) for row in self.conn.execute(f"PRAGMA table_info({table})")}
            for name, decl in columns.items():
                if name not in have:
                    self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {decl}")

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
