"""The store's schema version: what ``monitor db upgrade`` changes and what opening checks.

Versions are the Alembic revisions in ``monitor/store/migrations/versions``, recorded in
the ``alembic_version`` table of the store's database (of its schema, in PostgreSQL).

* ``upgrade`` (``monitor db upgrade``): under the migration lock (SQLite's write lock;
  in PostgreSQL an advisory lock, so instances starting together run it one after the
  other and the later ones find nothing to do), in one transaction: a database made
  before versioned migrations (monitor's tables, no ``alembic_version``) is completed to
  the baseline and stamped ``0001``; then every revision up to ``HEAD`` runs.
* ``ensure`` (every open of the store: ``monitor run`` and the commands that read it):
  the schema must be ``HEAD``. An empty database (none of monitor's tables) is created at
  ``HEAD`` there and then, under the same lock, so ``make run`` on a fresh machine and a
  new PostgreSQL schema need no step. Any other version is refused (``SchemaMismatch``,
  exit 3) with one line naming the version found, the one needed, and what to run.

Why opening never upgrades a store that holds data, SQLite included: a migration is one
way (no downgrade is run for you), so it is the operator's step, taken after a backup and
with the daemons of the old release stopped; and a newer monitor started by mistake on a
production file must not leave it unreadable to the release that was running.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from monitor.errors import ServiceUnavailable, StoreError
from monitor.store.tables import metadata

if TYPE_CHECKING:
    from alembic.config import Config

    from monitor.store.backend import Backend

log = logging.getLogger(__name__)
# Alembic says at INFO what it loads and runs, a line each; our own line says what ran.
logging.getLogger("alembic").setLevel(logging.WARNING)

#: The revision this code reads and writes (the newest in migrations/versions).
HEAD = "0003"
#: The schema of the releases before versioned migrations.
BASELINE = "0001"
MIGRATIONS = Path(__file__).with_name("migrations")
_TABLES = frozenset(metadata.tables)


class SchemaMismatch(ServiceUnavailable):
    """The store's schema is not the version this code needs (exit 3). The message says
    which version was found, which is needed, and whether to run ``monitor db upgrade``
    or to upgrade monitor."""


@dataclass(frozen=True)
class Found:
    """What a database holds: its ``revision`` (None: unversioned) and whether any of
    monitor's tables are there."""

    revision: str | None
    tables: bool

    @property
    def empty(self) -> bool:
        return self.revision is None and not self.tables

    @property
    def unversioned(self) -> bool:
        return self.revision is None and self.tables

    def described(self) -> str:
        if self.empty:
            return "empty"
        if self.unversioned:
            return f"unversioned (monitor before versioned migrations: {BASELINE})"
        return str(self.revision)


@dataclass(frozen=True)
class Upgraded:
    """What ``upgrade`` did: ``before`` (as ``Found.described``), ``after`` (a revision),
    ``steps`` (the revisions run), ``seconds`` (wall time, lock wait included)."""

    before: str
    after: str
    steps: tuple[str, ...]
    seconds: float


def found(conn: sa.Connection) -> Found:
    names = set(sa.inspect(conn).get_table_names())
    revision = None
    if "alembic_version" in names:
        revision = conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
    return Found(None if revision is None else str(revision), bool(names & _TABLES))


def ensure(backend: Backend) -> None:
    """Make sure the store is at ``HEAD``, creating an empty database there.

    Raises:
        SchemaMismatch: the database is at another version (or unversioned).
        StoreError: the database failed while being read.
        ServiceUnavailable: it refused or failed the creation; nothing was created.
    """
    with backend.read() as conn:
        now = found(conn)
    if now.revision == HEAD:
        return
    if not now.empty:
        raise SchemaMismatch(mismatch(backend.where, now))
    _migrate(backend, create_only=True)


def upgrade(backend: Backend) -> Upgraded:
    """Bring the store to ``HEAD`` (``monitor db upgrade``); nothing to do is fine.

    Raises:
        SchemaMismatch: the database is at a version newer than this code knows.
        ServiceUnavailable: the database refused or failed a step (a permission, an
            object in the way, a full disk); the transaction was rolled back whole.
    """
    return _migrate(backend, create_only=False)


def mismatch(where: str, now: Found) -> str:
    """The one line for a store at another version than ``HEAD``."""
    if now.revision is not None and now.revision not in revisions():
        return (f"store {where} is at schema version {now.revision}, newer than this monitor "
                f"knows (it needs {HEAD}): upgrade monitor to the release that made it, or "
                "point store.url at another database")
    return (f"store {where} is at schema version {now.described()} and this monitor needs "
            f"{HEAD}: back it up, then run `monitor db upgrade` and start again")


def _migrate(backend: Backend, *, create_only: bool) -> Upgraded:
    from alembic import command

    start = time.monotonic()
    try:
        with backend.migration() as conn:
            now = found(conn)  # again, under the lock: another instance may have done it
            steps = _steps(now)
            work = steps is None or bool(steps) or now.unversioned
            if steps is None or (work and create_only and not now.empty):
                raise SchemaMismatch(mismatch(backend.where, now))
            if work:
                config = alembic_config(conn)
                if now.unversioned:
                    from monitor.store.migrations import baseline

                    added = baseline.adopt(conn)
                    log.info("store_schema_adopted db=%r added=%r", backend.where, added)
                    command.stamp(config, BASELINE)
                command.upgrade(config, HEAD)
    except (backend.driver_error, StoreError) as exc:
        # What the database refused (a permission, an object in the way, a full disk) is
        # the operator's to fix: one line, and the transaction left nothing behind.
        cause = exc.__cause__ if isinstance(exc, StoreError) and exc.__cause__ else exc
        said = (str(cause).strip().splitlines() or [""])[0]
        raise ServiceUnavailable(f"store {backend.where}: the schema could not be brought to "
                                 f"{HEAD}, nothing was changed: {type(cause).__name__}: "
                                 f"{said}") from exc
    done = Upgraded(now.described(), HEAD, steps, time.monotonic() - start)
    if work:
        log.info("store_schema_upgraded db=%r from=%r to=%s steps=%s seconds=%.3f",
                 backend.where, done.before, HEAD, ",".join(steps), done.seconds)
    return done


def _steps(now: Found) -> tuple[str, ...] | None:
    """The revisions that take ``now`` to ``HEAD`` (None: a version this code does not
    know). An unversioned database is adopted as the baseline, then upgraded."""
    if now.revision == HEAD:
        return ()
    order = revisions()
    if now.empty:
        return order[:order.index(HEAD) + 1]
    start = BASELINE if now.unversioned else now.revision
    if start not in order:
        return None
    return order[order.index(start) + 1:order.index(HEAD) + 1]


@cache
def revisions() -> tuple[str, ...]:
    """Every revision this code knows, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS))
    return tuple(reversed([s.revision for s in script.walk_revisions()]))


def alembic_config(conn: sa.Connection) -> Config:
    """Alembic's configuration for running the revisions on ``conn`` (in a transaction
    that ``Backend.migration`` began: Alembic then commits nothing itself)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.attributes["connection"] = conn
    return config
