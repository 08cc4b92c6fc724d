"""One place that opens SQLite the way monitor needs it: WAL, a busy timeout, and a lock
so the asyncio loop's worker threads can share one connection safely."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from monitor import failpoints
from monitor.errors import ServiceUnavailable
from monitor.storefault import Fault

#: sqlite3 errors that are bugs in our SQL or data, not the storage failing: never
#: translated into StoreError, so they keep their traceback.
_BUGS = (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.DataError,
         sqlite3.NotSupportedError)


def _enter_wal(conn: sqlite3.Connection, busy_timeout: float) -> None:
    """Switch to WAL, waiting out other processes doing the same. On a fresh file the
    switch reads then writes the header: two processes opening it at once (two ``db
    upgrade``, a daemon and ``check``) both hold the read lock and want the write lock,
    and SQLite answers one of them "database is locked" at once, without the busy
    handler, to break the deadlock. Retrying is the documented remedy."""
    deadline = time.monotonic() + busy_timeout
    pause = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL").fetchall()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


class SqliteDb:
    """A serialised connection. ``durability='full'`` survives power loss (slower);
    ``normal`` (WAL + synchronous=NORMAL) survives a crash of the process, and its
    ``tx(durable=True)`` transactions survive an OS crash or power loss too.

    Storage errors (``sqlite3.OperationalError`` and the like: disk full, I/O error, locked
    past the busy timeout) leave ``tx``, ``read`` and ``query`` as ``StoreError``, reported
    once to ``self.fault`` (see ``monitor.storefault``)."""

    #: ``tx(durable=True)`` switches to synchronous=FULL under ``durability: normal``.
    #: Only bench/faults.py turns this off, to measure what it costs and what it saves.
    durable_writes = True

    def __init__(self, path: Path, *, durability: str = "normal", busy_timeout: float = 30.0):
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(
                str(path), timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
            _enter_wal(self.conn, busy_timeout)
            sync = "FULL" if durability == "full" else "NORMAL"
            self.conn.execute(f"PRAGMA synchronous={sync}")
            self.conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            st = os.stat(path)
        except (sqlite3.Error, OSError) as exc:
            raise ServiceUnavailable(f"cannot open SQLite database {path}: {exc}") from exc
        self.identity = (st.st_dev, st.st_ino)
        self.lock = threading.RLock()
        self.durability = durability
        self.fault = Fault(str(path))

    def ping(self, timeout: float = 5.0) -> None:
        """Raise ServiceUnavailable unless the file we opened is still at ``path`` and
        answers a read. A deleted or replaced file keeps working through our open handle,
        which is exactly the danger: everything written from then on is lost at restart.
        """
        self.fault.check()
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
        with self.tx() as conn:
            have = {str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})")}
            for name, decl in columns.items():
                if name not in have:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {decl}")

    @contextmanager
    def tx(self, *, durable: bool = False,
           failpoint: str | None = None) -> Iterator[sqlite3.Connection]:
        """A write transaction taken up front (BEGIN IMMEDIATE), so two writers never
        deadlock on a lock upgrade; rolled back on any error.

        ``durable``: commit with ``synchronous=FULL`` even under ``durability: normal``:
        the WAL is fsynced before this returns, and with it every commit before it, so the
        transaction survives an OS crash or power loss. For the writes a later act depends
        on (a delivery claimed before it is posted, a post recorded as sent, a message
        published before the other file records that it was). The setting can only change
        outside a transaction, so it is switched around this one and switched back.

        ``failpoint``: a ``monitor.failpoints`` name hit inside the transaction.
        """
        switch = durable and self.durable_writes and self.durability != "full"
        with self.lock:
            try:
                if switch:
                    self.conn.execute("PRAGMA synchronous=FULL")
                try:
                    self.conn.execute("BEGIN IMMEDIATE")
                    before = self.conn.total_changes
                    if failpoint:
                        failpoints.hit(failpoint)
                    yield self.conn
                    self.conn.execute("COMMIT")
                except BaseException:
                    self._rollback()
                    raise
                finally:
                    if switch:
                        with suppress(sqlite3.Error):  # if it stays FULL, it errs safe
                            self.conn.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as exc:
                if isinstance(exc, _BUGS):
                    raise
                raise self.fault.failed(exc, write=True) from exc
            self.fault.succeeded(wrote=self.conn.total_changes > before)

    def _rollback(self) -> None:
        # SQLite may already have rolled back (a full disk, an I/O error): nothing to undo.
        if self.conn.in_transaction:
            with suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """The connection, for reads, with storage errors translated as in ``tx``."""
        with self.lock:
            try:
                yield self.conn
            except sqlite3.Error as exc:
                if isinstance(exc, _BUGS):
                    raise
                raise self.fault.failed(exc, write=False) from exc
            self.fault.succeeded(wrote=False)

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with self.read() as conn:
            return list(conn.execute(sql, params).fetchall())

    def close(self) -> None:
        with self.lock:
            self.conn.close()
