"""Stores, chosen by ``store.url``: ``sqlite:///PATH`` (embedded) or
``postgresql://…`` (shared by a team's processes)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from monitor.config import POSTGRES_SCHEMES
from monitor.errors import ServiceUnavailable
from monitor.install import install_hint
from monitor.store.base import Store

if TYPE_CHECKING:
    from monitor.config import Config



def open_store(config: Config) -> Store:
    """Open the configured store.

    Raises:
        ServiceUnavailable: the database cannot be opened or reached.
    """
    url = config.store.url
    if url.startswith(POSTGRES_SCHEMES):
        try:
            from monitor.store.postgres import PostgresStore
        except ImportError as exc:  # psycopg is an optional dependency
            raise ServiceUnavailable("a postgresql:// store needs the psycopg driver; run: "
                                     f"{install_hint('postgres')}") from exc
        return PostgresStore(url)
    from monitor.store.sqlite import SqliteStore

    return SqliteStore(config.sqlite_path(url), durability=config.store.durability)
