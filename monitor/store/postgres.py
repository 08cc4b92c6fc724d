"""The shared store for a team: PostgreSQL, with the same SQL as the SQLite store
(``monitor.store.sql``). Claims use ``FOR UPDATE SKIP LOCKED``, so several notifier
processes share the outbox without claiming one delivery twice."""

from __future__ import annotations

from typing import Any

from monitor.store.backend import PostgresBackend
from monitor.store.sql import SqlStore


class PostgresStore(SqlStore):
    def __init__(self, url: str, *, connect_timeout: float = 10.0) -> None:
        self.postgres = PostgresBackend(url, connect_timeout=connect_timeout)
        super().__init__(self.postgres)

    @property
    def conn(self) -> Any:
        """The psycopg connection underneath (its ``info.backend_pid``, for tests)."""
        return self.postgres.driver_connection
