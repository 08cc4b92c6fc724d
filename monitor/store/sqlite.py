"""The embedded store: one SQLite file (WAL) for feed state, seen items, alerts and
deliveries. The SQL is ``monitor.store.sql``'s, shared with PostgreSQL; the file is
opened and guarded by ``monitor.sqlite_util.SqliteDb`` (``self.db``), as the queue's is."""

from __future__ import annotations

from pathlib import Path

from monitor.sqlite_util import SqliteDb
from monitor.store.backend import SqliteBackend
from monitor.store.sql import WRITE, SqlStore

__all__ = ["WRITE", "SqliteStore"]


class SqliteStore(SqlStore):
    def __init__(self, path: Path, *, durability: str = "normal") -> None:
        self.sqlite = SqliteBackend(path, durability=durability)
        super().__init__(self.sqlite)

    @property
    def db(self) -> SqliteDb:
        """The file's connection, lock and fault (tests trace its statements)."""
        return self.sqlite.db
