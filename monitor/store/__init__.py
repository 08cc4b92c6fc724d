"""Stores, chosen by ``store.url``: ``sqlite:///PATH`` (embedded) or
``postgresql://…`` (shared by a team's processes). One SQL body serves both
(``monitor.store.sql``); its schema is versioned (``monitor.store.schema``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from monitor.config import POSTGRES_SCHEMES
from monitor.errors import ServiceUnavailable
from monitor.install import install_hint
from monitor.store.base import Store

if TYPE_CHECKING:
    from monitor.config import Config
    from monitor.store.backend import Backend
    from monitor.store.schema import Upgraded


def open_store(config: Config) -> Store:
    """Open the configured store, at the schema version this code needs (an empty
    database is created at it).

    Raises:
        SchemaMismatch: the database is at another version (run ``monitor db upgrade``).
        ServiceUnavailable: the database cannot be opened or reached.
    """
    url = config.store.url
    if url.startswith(POSTGRES_SCHEMES):
        _need_psycopg()
        from monitor.store.postgres import PostgresStore

        return PostgresStore(url)
    from monitor.store.sqlite import SqliteStore

    return SqliteStore(config.sqlite_path(url), durability=config.store.durability)


def upgrade_store(config: Config) -> tuple[str, Upgraded]:
    """``monitor db upgrade``: bring the store's schema to this code's version, under the
    migration lock. Returns (the database as a person names it, what was done).

    Raises:
        SchemaMismatch: the database is newer than this code.
        ServiceUnavailable: the database cannot be opened or reached.
    """
    from monitor.store import schema

    backend = _backend(config)
    try:
        return backend.where, schema.upgrade(backend)
    finally:
        backend.close()


def _backend(config: Config) -> Backend:
    url = config.store.url
    if url.startswith(POSTGRES_SCHEMES):
        _need_psycopg()
        from monitor.store.backend import PostgresBackend

        return PostgresBackend(url)
    from monitor.store.backend import SqliteBackend

    return SqliteBackend(config.sqlite_path(url), durability=config.store.durability)


def _need_psycopg() -> None:
    try:
        import psycopg  # noqa: F401 - an optional dependency
    except ImportError as exc:
        raise ServiceUnavailable("a postgresql:// store needs the psycopg driver; run: "
                                 f"{install_hint('postgres')}") from exc
