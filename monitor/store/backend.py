"""Where the one SQL store meets each database: its connection, transactions and errors.

``SqlStore`` (``monitor.store.sql``) runs the same SQLAlchemy Core statements on either
backend; what differs between SQLite and PostgreSQL lives here and nowhere else.

* **SQLite** (``SqliteBackend``): the file is opened by ``monitor.sqlite_util.SqliteDb``,
  as the queue's is: WAL, the busy timeout, ``durability``, BEGIN IMMEDIATE,
  ``tx(durable=True)`` (synchronous=FULL for that commit), the ``store_write`` failpoint,
  StoreError at the edge with one line per fault (``monitor.storefault``) and ``ping``'s
  check that the file is still the one opened. SQLAlchemy runs on that very connection (a
  pool of one that never opens another), so all of it stays as it was, shared with the
  queue. SQLAlchemy's wrapper is taken off the driver's errors so ``SqliteDb`` judges
  them as before.
* **PostgreSQL** (``PostgresBackend``): one connection; psycopg's operational errors
  become StoreError at the edge, bugs (constraint, syntax) keep their type. Commits are
  durable by the server's ``synchronous_commit``, so ``durable`` asks nothing more. A
  connection that drops is not opened again (health stays ``failing`` until a restart,
  as before: RELIABILITY.md, storage faults).

Each serialises its one connection with a lock: the daemon's worker threads share it.
Reads run outside an explicit transaction in SQLite (as before) and in a short one that
is rolled back in PostgreSQL.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.pool import NullPool, StaticPool

from monitor.errors import ServiceUnavailable
from monitor.sqlite_util import SqliteDb
from monitor.storefault import Fault

log = logging.getLogger("monitor.store")

#: The PostgreSQL advisory lock (per database and schema) that serialises schema changes.
SCHEMA_LOCK = "monitor:schema"
Insert = sqlite.Insert | postgresql.Insert


class Backend(ABC):
    """One database connection as the store uses it."""

    dialect: str  #: ``sqlite`` or ``postgresql``
    where: str  #: how to name the database to a person (never a password)
    connection: sa.Connection
    #: The driver's base error class (what a bug, untranslated, may be).
    driver_error: type[Exception]

    @abstractmethod
    def tx(self, *, durable: bool = False,
           failpoint: str | None = None) -> AbstractContextManager[sa.Connection]:
        """A write transaction, committed on leaving, rolled back on an error. ``durable``:
        it must survive an OS crash once committed (see ``SqliteDb.tx``); ``failpoint``: a
        ``monitor.failpoints`` name hit inside it (SQLite).

        Raises:
            StoreError: the database failed (disk full, I/O error, locked, connection lost).
        """

    @abstractmethod
    def read(self) -> AbstractContextManager[sa.Connection]:
        """The connection for reads, with errors translated as in ``tx``."""

    @abstractmethod
    def migration(self) -> AbstractContextManager[sa.Connection]:
        """A write transaction holding the lock that serialises schema changes (SQLite's
        write lock; a PostgreSQL advisory lock), begun in SQLAlchemy's terms too, so that
        Alembic runs inside it instead of committing on its own."""

    @abstractmethod
    def ping(self) -> None:
        """See ``Store.ping``."""

    @abstractmethod
    def close(self) -> None: ...

    def insert(self, table: sa.Table) -> Insert:
        """An INSERT that can say ON CONFLICT (both databases spell it the same way)."""
        return sqlite.insert(table) if self.dialect == "sqlite" else postgresql.insert(table)

    def _settle(self) -> None:
        """End the transaction SQLAlchemy began on its own for a read (or whose driver
        transaction already ended), so the next ``tx`` can begin."""
        if self.connection.in_transaction():
            with suppress(sa.exc.SQLAlchemyError, sqlite3.Error):
                self.connection.rollback()


def _unwrapped(exc: sa.exc.DBAPIError) -> BaseException:
    """The driver's own error inside SQLAlchemy's wrapper, noting the statement."""
    orig: BaseException = exc.orig if isinstance(exc.orig, BaseException) else exc
    if orig is not exc and exc.statement:
        orig.add_note(f"[SQL: {exc.statement}]")
    return orig


@contextmanager
def _driver_errors() -> Iterator[None]:
    try:
        yield
    except sa.exc.DBAPIError as exc:
        raise _unwrapped(exc) from None


class SqliteBackend(Backend):
    dialect = "sqlite"
    driver_error = sqlite3.Error

    def __init__(self, path: Path, *, durability: str = "normal") -> None:
        self.db = SqliteDb(path, durability=durability)
        self.where = str(path)
        engine = sa.create_engine("sqlite://", creator=lambda: self.db.conn,
                                  poolclass=StaticPool)
        try:
            self.connection = engine.connect()
        except sa.exc.DBAPIError as exc:
            self.db.close()
            raise ServiceUnavailable(f"cannot open SQLite database {path}: "
                                     f"{_unwrapped(exc)}") from exc

    @contextmanager
    def tx(self, *, durable: bool = False,
           failpoint: str | None = None) -> Iterator[sa.Connection]:
        with self.db.lock:
            try:
                with self.db.tx(durable=durable, failpoint=failpoint), _driver_errors():
                    yield self.connection
            finally:
                self._settle()  # SqliteDb committed or rolled back: nothing left to do

    @contextmanager
    def read(self) -> Iterator[sa.Connection]:
        with self.db.lock:
            try:
                with self.db.read(), _driver_errors():
                    yield self.connection
            finally:
                self._settle()

    @contextmanager
    def migration(self) -> Iterator[sa.Connection]:
        # BEGIN IMMEDIATE takes the write lock first: a second upgrader waits for it (the
        # busy timeout), then finds the work done.
        with self.tx(durable=True) as conn:
            conn.begin()
            yield conn

    def ping(self) -> None:
        self.db.ping()

    def close(self) -> None:
        with self.db.lock:
            with suppress(sa.exc.SQLAlchemyError, sqlite3.Error):
                self.connection.close()
            self.db.close()


class PostgresBackend(Backend):
    dialect = "postgresql"

    def __init__(self, url: str, *, connect_timeout: float = 10.0) -> None:
        import psycopg  # the optional driver: open_store names the install command

        self.driver_error = psycopg.Error
        self._bugs = (psycopg.IntegrityError, psycopg.ProgrammingError, psycopg.DataError,
                      psycopg.NotSupportedError)
        self.where = "PostgreSQL " + (url.split("@")[-1] if "@" in url else url).split("?")[0]
        self.fault = Fault("PostgreSQL store")  # never the URL: it may carry a password
        self.lock = threading.RLock()
        timeout = max(1, int(connect_timeout))
        # libpq reads the URL itself, exactly as given (options=-csearch_path=…, service
        # files, sslmode), rather than SQLAlchemy re-spelling it.
        self.engine = sa.create_engine(
            "postgresql+psycopg://", poolclass=NullPool,
            creator=lambda: psycopg.connect(url, connect_timeout=timeout))
        try:
            self.connection = self.engine.connect()
        except sa.exc.DBAPIError as exc:
            raise ServiceUnavailable(f"cannot open the PostgreSQL store: "
                                     f"{_say(_unwrapped(exc))}") from exc

    @property
    def driver_connection(self) -> Any:
        """The psycopg connection underneath (its backend PID, for tests and logs)."""
        return self.connection.connection.driver_connection

    @contextmanager
    def _guard(self, *, write: bool) -> Iterator[None]:
        with self.lock:  # taken first: the fault is only ever touched under the lock
            try:
                self._reconnect_if_lost()
                yield
            except sa.exc.DBAPIError as exc:
                orig = _unwrapped(exc)
                if isinstance(orig, self._bugs):
                    raise orig from None
                raise self.fault.failed(orig, write=write) from exc
            finally:
                self._settle()
            # PostgreSQL does not say cheaply whether a transaction changed anything: any
            # write transaction that commits counts as proof that writes work again.
            self.fault.succeeded(wrote=write)

    @contextmanager
    def tx(self, *, durable: bool = False,
           failpoint: str | None = None) -> Iterator[sa.Connection]:
        with self._guard(write=True), self.connection.begin():
            yield self.connection

    @contextmanager
    def read(self) -> Iterator[sa.Connection]:
        with self._guard(write=False):
            yield self.connection

    @contextmanager
    def migration(self) -> Iterator[sa.Connection]:
        with self.tx() as conn:
            # Held to the end of the transaction: instances starting together upgrade one
            # after the other, and the later ones find the schema current.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtextextended("
                                 ":name || '@' || COALESCE(current_schema(), ''), 0))"),
                         {"name": SCHEMA_LOCK})
            yield conn

    def ping(self) -> None:
        if not self.lock.acquire(timeout=5.0):
            raise ServiceUnavailable("PostgreSQL store busy for over 5s")
        try:
            self.fault.check()
            self._reconnect_if_lost()
            self.connection.exec_driver_sql("SELECT 1").fetchall()
        except sa.exc.DBAPIError as exc:
            raise ServiceUnavailable(f"PostgreSQL store unreachable: "
                                     f"{_say(_unwrapped(exc))}") from None
        finally:
            self._settle()
            self.lock.release()

    def _reconnect_if_lost(self) -> None:
        """A connection the server dropped (a restart, a failover, an idle timeout) is
        replaced by a new one, here, between transactions, never inside one: a transaction
        cut off by the drop has failed for its caller, who retries it whole.

        Raises:
            sqlalchemy.exc.DBAPIError: the server cannot be reached yet (the caller's guard
                turns it into the store's fault; the next call tries again).
        """
        if not self.connection.invalidated:
            return
        with suppress(sa.exc.SQLAlchemyError):
            self.connection.close()
        self.connection = self.engine.connect()
        log.info("store_reconnected store=%s", self.where)

    def close(self) -> None:
        with self.lock, suppress(sa.exc.SQLAlchemyError):
            self.connection.close()


def _say(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"
