"""The store's versioned schema (issue 9): ``monitor db upgrade`` over SQLite and PostgreSQL
from nothing, from the previous revision and from the unversioned releases, refusal at
start of a schema older or newer than the code, and instances upgrading at once.

PostgreSQL tests use fresh schemas (``tests/harness/pg_fixtures.py``): skipped without a
server, failed under CI=true."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from monitor.cli import main
from monitor.config import Config, load_config
from monitor.store import open_store
from monitor.store import schema as schema_mod
from monitor.store.backend import Backend, PostgresBackend, SqliteBackend
from monitor.store.schema import HEAD, SchemaMismatch, found, revisions
from monitor.store.tables import metadata
from tests.harness.daemon import REPO, base_config, run_monitor, write_config
from tests.harness.pg_fixtures import PG_URL

pytestmark = pytest.mark.timeout(120)
DIALECTS = ["sqlite", "postgres"]

# --- the DDL of the releases before versioned migrations, kept here as they ran ---------------
_SQLITE_FIRST = [
    """CREATE TABLE source_state (
        source TEXT PRIMARY KEY, cursor TEXT NOT NULL DEFAULT '{}', last_poll REAL,
        last_success REAL, last_error TEXT, failures INTEGER NOT NULL DEFAULT 0,
        items_total INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE seen (
        identity TEXT PRIMARY KEY, item_key TEXT NOT NULL, first_seen REAL NOT NULL)""",
    """CREATE TABLE items (
        item_key TEXT PRIMARY KEY, source TEXT NOT NULL, payload TEXT NOT NULL,
        seen_at REAL NOT NULL)""",
    "CREATE INDEX items_seen_at ON items (seen_at)",
    """CREATE TABLE alerts (
        id TEXT PRIMARY KEY, watchlist TEXT NOT NULL, payload TEXT NOT NULL,
        created_at REAL NOT NULL)""",
    """CREATE TABLE deliveries (
        alert_id TEXT NOT NULL, destination TEXT NOT NULL, state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL, lease_until REAL,
        lease_token TEXT, ambiguous INTEGER NOT NULL DEFAULT 0, last_error TEXT,
        ref TEXT, reconciled INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL,
        updated_at REAL NOT NULL, PRIMARY KEY (alert_id, destination))""",
    "CREATE INDEX deliveries_due ON deliveries (state, next_at)",
    """CREATE TABLE destination_pause (
        destination TEXT PRIMARY KEY, until REAL NOT NULL)""",
]
_SQLITE_LAST = [
    *_SQLITE_FIRST,
    """CREATE TABLE destination_state (
        destination TEXT PRIMARY KEY, failures INTEGER NOT NULL DEFAULT 0, last_error TEXT,
        last_failure REAL, last_success REAL)""",
    *(f"ALTER TABLE source_state ADD COLUMN {name} {decl}" for name, decl in {
        "items_last": "INTEGER NOT NULL DEFAULT 0", "next_poll": "REAL", "note": "TEXT",
        "primed_at": "REAL", "primed_items": "INTEGER NOT NULL DEFAULT 0",
        "primed_alerted": "INTEGER NOT NULL DEFAULT 0", "primed_backfill": "TEXT"}.items()),
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
]
_POSTGRES_FIRST = [
    """CREATE TABLE source_state (
        source TEXT PRIMARY KEY, cursor JSONB NOT NULL DEFAULT '{}',
        last_poll DOUBLE PRECISION,
        last_success DOUBLE PRECISION, last_error TEXT, failures INTEGER NOT NULL DEFAULT 0,
        items_total BIGINT NOT NULL DEFAULT 0)""",
    """CREATE TABLE seen (
        identity TEXT PRIMARY KEY, item_key TEXT NOT NULL,
        first_seen DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE items (
        item_key TEXT PRIMARY KEY, source TEXT NOT NULL, payload JSONB NOT NULL,
        seen_at DOUBLE PRECISION NOT NULL)""",
    "CREATE INDEX items_seen_at ON items (seen_at)",
    """CREATE TABLE alerts (
        id TEXT PRIMARY KEY, watchlist TEXT NOT NULL, payload JSONB NOT NULL,
        created_at DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE deliveries (
        alert_id TEXT NOT NULL REFERENCES alerts (id), destination TEXT NOT NULL,
        state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        next_at DOUBLE PRECISION NOT NULL, lease_until DOUBLE PRECISION, lease_token TEXT,
        ambiguous BOOLEAN NOT NULL DEFAULT FALSE, last_error TEXT, ref TEXT,
        reconciled BOOLEAN NOT NULL DEFAULT FALSE, created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (alert_id, destination))""",
    "CREATE INDEX deliveries_due ON deliveries (state, next_at)",
    """CREATE TABLE destination_pause (
        destination TEXT PRIMARY KEY, until DOUBLE PRECISION NOT NULL)""",
]
_POSTGRES_LAST = [
    *_POSTGRES_FIRST,
    """CREATE TABLE destination_state (
        destination TEXT PRIMARY KEY, failures INTEGER NOT NULL DEFAULT 0, last_error TEXT,
        last_failure DOUBLE PRECISION, last_success DOUBLE PRECISION)""",
    """ALTER TABLE source_state ADD COLUMN IF NOT EXISTS items_last INTEGER NOT NULL DEFAULT 0,
        ADD COLUMN IF NOT EXISTS next_poll DOUBLE PRECISION,
        ADD COLUMN IF NOT EXISTS note TEXT,
        ADD COLUMN IF NOT EXISTS primed_at DOUBLE PRECISION,
        ADD COLUMN IF NOT EXISTS primed_items INTEGER NOT NULL DEFAULT 0,
        ADD COLUMN IF NOT EXISTS primed_alerted INTEGER NOT NULL DEFAULT 0,
        ADD COLUMN IF NOT EXISTS primed_backfill TEXT""",
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
]
OLD_DDL = {("sqlite", "first"): _SQLITE_FIRST, ("sqlite", "last"): _SQLITE_LAST,
           ("postgres", "first"): _POSTGRES_FIRST, ("postgres", "last"): _POSTGRES_LAST}

ITEM = {"id": "i1", "source": "feed", "url": "https://n.example/1", "title": "Convoy",
        "summary": "", "content": "", "published": None, "language": None, "guid": "g1",
        "key": "https://n.example/1", "source_title": ""}
ALERT = {"id": "a1", "watchlist": "w", "severity": "high", "item": ITEM, "matches": [],
         "created_at": 1000.0}


# --- databases -----------------------------------------------------------------------------------
class Db:
    """One test database: its ``store.url``, a config naming it, and raw access."""

    def __init__(self, kind: str, url: str, tmp: Path) -> None:
        self.kind, self.url, self.tmp = kind, url, tmp
        tmp.mkdir(parents=True, exist_ok=True)
        config = base_config(tmp, [], [{"name": "console", "type": "console"}])
        config["store"] = {"url": url}
        self.config_path = write_config(tmp / f"config-{uuid.uuid4().hex[:6]}.yaml", config)

    @property
    def config(self) -> Config:
        return load_config(self.config_path, require_env=False)

    def backend(self) -> Backend:
        if self.kind == "postgres":
            return PostgresBackend(self.url)
        return SqliteBackend(self.config.sqlite_path(self.url))

    def engine(self) -> sa.Engine:
        if self.kind == "postgres":
            import psycopg

            return sa.create_engine("postgresql+psycopg://", poolclass=sa.pool.NullPool,
                                    creator=lambda: psycopg.connect(self.url))
        return sa.create_engine(f"sqlite:///{self.config.sqlite_path(self.url)}",
                                poolclass=sa.pool.NullPool)

    def run(self, *statements: str, **params: Any) -> list[Any]:
        with self.engine().begin() as conn:
            rows: list[Any] = []
            for sql in statements:
                result = conn.execute(sa.text(sql), params)
                rows = list(result.all()) if result.returns_rows else rows
            return rows

    def doc(self, name: str) -> str:
        """A JSON document parameter in this database's SQL."""
        return f"CAST(:{name} AS JSONB)" if self.kind == "postgres" else f":{name}"


@pytest.fixture
def fresh_schema(postgres_url: str) -> Iterator[Callable[[], str]]:
    """Makes more fresh PostgreSQL schemas (each dropped afterwards); ``postgres_url``
    decides whether PostgreSQL is there (skip, or fail under CI=true)."""
    import psycopg

    made: list[str] = []
    admin = psycopg.connect(PG_URL, autocommit=True, connect_timeout=3)

    def make() -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        admin.execute(f"CREATE SCHEMA {name}")
        made.append(name)
        return f"{PG_URL}?options={quote(f'-csearch_path={name}')}"

    try:
        yield make
    finally:
        for name in made:
            admin.execute(f"DROP SCHEMA {name} CASCADE")
        admin.close()


@pytest.fixture(params=DIALECTS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Db:
    if request.param == "postgres":
        return Db("postgres", request.getfixturevalue("postgres_url"), tmp_path)
    return Db("sqlite", f"sqlite:///{tmp_path / 'data' / 'monitor.db'}", tmp_path)


def at_revision(db: Db, revision: str) -> None:
    """Make the database's schema as ``revision`` left it (through Alembic itself)."""
    from alembic import command

    backend = db.backend()
    try:
        with backend.migration() as conn:
            command.upgrade(schema_mod.alembic_config(conn), revision)
    finally:
        backend.close()


def version(db: Db) -> str | None:
    backend = db.backend()
    try:
        with backend.read() as conn:
            return found(conn).revision
    finally:
        backend.close()


def shape(db: Db) -> dict[str, tuple[list[str], list[str]]]:
    """table -> (columns, index names): what a database has, whatever its types."""
    with db.engine().connect() as conn:
        inspector = sa.inspect(conn)
        return {t: (sorted(c["name"] for c in inspector.get_columns(t)),
                    sorted(str(i["name"]) for i in inspector.get_indexes(t)))
                for t in inspector.get_table_names()}


def drift(db: Db) -> list[Any]:
    """Differences between the database and ``monitor/store/tables.py`` (none expected)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    def same_type(_ctx: Any, _insp: Any, _meta: Any, found: Any, wanted: Any) -> bool | None:
        # SQLite keeps JSON as TEXT and flags as INTEGER, as it always did.
        if db.kind == "sqlite" and (str(found), type(wanted).__name__) in (
                ("TEXT", "JSON"), ("INTEGER", "Boolean")):
            return False
        return None

    with db.engine().connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": same_type})
        diffs = compare_metadata(context, metadata)
    # The foreign key deliveries -> alerts is PostgreSQL's alone (tables.py names none).
    return [d for d in diffs if not (isinstance(d, tuple) and d[0] == "remove_fk")]


def upgrade_cli(db: Db, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["db", "upgrade", "--config", str(db.config_path)])
    out = capsys.readouterr()
    return code, out.out, out.err


# --- the revisions --------------------------------------------------------------------------------
def test_head_is_the_newest_revision_in_one_line_of_history() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(schema_mod.MIGRATIONS))
    assert script.get_heads() == [HEAD], "set schema.HEAD to the newest revision"
    assert revisions() == ("0001", "0002", "0003")
    assert script.get_revision("0001").down_revision is None


def test_migrations_ship_inside_the_package() -> None:
    """Package data: the revisions are modules of packages found by setuptools, so an
    installed wheel carries them (pyproject.toml: packages.find include monitor*)."""
    from setuptools import find_packages

    packages = find_packages(str(REPO), include=["monitor*"])
    assert {"monitor.store.migrations", "monitor.store.migrations.versions"} <= set(packages)
    folder = schema_mod.MIGRATIONS
    assert folder.parent == Path(schema_mod.__file__).parent
    assert (folder / "env.py").is_file()
    assert len(list((folder / "versions").glob("v0*.py"))) == len(revisions())


# --- upgrading ------------------------------------------------------------------------------------
def test_upgrade_an_empty_database(db: Db, capsys: pytest.CaptureFixture[str]) -> None:
    assert version(db) is None
    code, out, _ = upgrade_cli(db, capsys)
    assert code == 0 and "upgraded from schema empty to 0003 (0001, 0002, 0003;" in out
    assert version(db) == HEAD
    assert drift(db) == []
    code, out, _ = upgrade_cli(db, capsys)
    assert code == 0 and "is at schema 0003, the current version" in out


def test_upgrade_a_database_at_the_previous_revision(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    at_revision(db, "0001")
    assert "alerts_created_at" not in shape(db)["alerts"][1]
    db.run("INSERT INTO source_state (source, cursor) VALUES ('f', " + db.doc("cursor") + ")",
           f"INSERT INTO alerts VALUES ('a1', 'w', {db.doc('alert')}, 1000)",
           "INSERT INTO deliveries (alert_id, destination, state, next_at, created_at,"
           " updated_at) VALUES ('a1', 'slack', 'pending', 0, 1000, 1000)",
           cursor=json.dumps({"etag": '"v1"'}), alert=json.dumps(ALERT))
    with pytest.raises(SchemaMismatch, match=r"schema version 0001 and this monitor needs "
                                             r"0003: .*`monitor db upgrade`"):
        open_store(db.config)

    code, out, _ = upgrade_cli(db, capsys)
    assert code == 0 and "upgraded from schema 0001 to 0003 (0002, 0003;" in out
    assert "alerts_created_at" in shape(db)["alerts"][1] and drift(db) == []
    store = open_store(db.config)
    try:
        state = store.source_state("f")
        assert state is not None and state.cursor == {"etag": '"v1"'}
        (task,) = store.claim_deliveries(5, 60, ["slack"])
        assert task.alert.item.title == "Convoy" and task.attempts == 1
    finally:
        store.close()


@pytest.mark.parametrize("release", ["first", "last"])
def test_a_database_of_the_unversioned_releases_is_stamped_then_upgraded(
    db: Db, release: str, capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> None:
    """A store made before versioned migrations (its tables, no alembic_version): refused
    at open, then ``db upgrade`` completes it to the baseline (the first release lacked
    tables and columns added in place later), stamps it 0001 and upgrades it; its rows
    are kept and usable."""
    if db.kind == "sqlite":
        db.config.sqlite_path(db.url).parent.mkdir(parents=True, exist_ok=True)
    db.run(*OLD_DDL[db.kind, release])
    db.run("INSERT INTO source_state (source, cursor, last_success, items_total) VALUES"
           f" ('f', {db.doc('cursor')}, 5, 3)",
           "INSERT INTO seen VALUES ('key:https://n.example/1', 'https://n.example/1', 5)",
           f"INSERT INTO items VALUES ('https://n.example/1', 'feed', {db.doc('item')}, 5)",
           f"INSERT INTO alerts VALUES ('a1', 'w', {db.doc('alert')}, 6)",
           "INSERT INTO deliveries (alert_id, destination, state, next_at, created_at,"
           " updated_at) VALUES ('a1', 'slack', 'pending', 0, 6, 6)",
           cursor=json.dumps({"etag": '"v1"'}), item=json.dumps(ITEM),
           alert=json.dumps(ALERT))
    with pytest.raises(SchemaMismatch, match=r"schema version unversioned .*needs 0003"):
        open_store(db.config)

    code, out, _ = upgrade_cli(db, capsys)
    assert code == 0 and "upgraded from schema unversioned" in out and "to 0003" in out
    assert version(db) == HEAD
    other = (request.getfixturevalue("fresh_schema")() if db.kind == "postgres"
             else f"sqlite:///{db.tmp / 'other' / 'monitor.db'}")
    fresh = Db(db.kind, other, db.tmp)
    at_revision(fresh, HEAD)
    assert shape(db) == shape(fresh), "the same tables, columns and indexes as a new store"
    store = open_store(db.config)
    try:
        state = store.source_state("f")
        assert state is not None and state.cursor == {"etag": '"v1"'}
        assert state.items_total == 3 and state.items_last == 0 and state.primed
        from monitor.models import Item

        assert store.unseen([Item.from_dict(ITEM)]) == []
        (task,) = store.claim_deliveries(5, 60, ["slack"])
        assert task.alert.id == "a1" and store.mark_sent(task, "ts")
        assert store.pair_id() is None  # type: ignore[attr-defined]
        store.record_destination("slack", None)
    finally:
        store.close()


def test_a_failed_upgrade_changes_nothing(db: Db, capsys: pytest.CaptureFixture[str]) -> None:
    """One transaction: a revision that fails leaves the database at its version, and the
    operator gets one line (exit 3), not a traceback."""
    at_revision(db, "0001")
    db.run("CREATE TABLE alerts_created_at (x INTEGER)")  # the name 0002 gives its index
    code, _, err = upgrade_cli(db, capsys)
    assert code == 3 and "alerts_created_at" in err and len(err.strip().splitlines()) == 1
    assert version(db) == "0001"


# --- at start -------------------------------------------------------------------------------------
def test_an_empty_database_is_created_at_open(db: Db) -> None:
    store = open_store(db.config)
    store.close()
    assert version(db) == HEAD and drift(db) == []


def test_instances_opening_an_empty_postgres_schema_together(postgres_url: str) -> None:
    """Before versioned migrations this failed: UniqueViolation on pg_type's index."""
    from monitor.store.postgres import PostgresStore

    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            PostgresStore(postgres_url).close()
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_run_refuses_a_schema_older_or_newer_than_the_code(db: Db) -> None:
    at_revision(db, "0001")
    older = run_monitor("run", "--once", "--config", str(db.config_path))
    assert older.code == 3, older.stderr
    (line,) = older.stderr.strip().splitlines()
    assert "schema version 0001 and this monitor needs 0003" in line
    assert "run `monitor db upgrade`" in line and "postgres@" not in line

    at_revision(db, HEAD)
    db.run("UPDATE alembic_version SET version_num = '0099'")
    newer = run_monitor("run", "--once", "--config", str(db.config_path))
    assert newer.code == 3, newer.stderr
    (line,) = newer.stderr.strip().splitlines()
    assert "schema version 0099, newer than this monitor knows (it needs 0003)" in line
    assert "upgrade monitor" in line
    upgrade = run_monitor("db", "upgrade", "--config", str(db.config_path))
    assert upgrade.code == 3 and "newer than this monitor knows" in upgrade.stderr
    assert version(db) == "0099", "nothing was touched"


# --- instances upgrading at once ------------------------------------------------------------------
def _upgrade_together(config: Path, n: int = 2) -> list[subprocess.CompletedProcess[str]]:
    procs = [subprocess.Popen([sys.executable, "-m", "monitor", "db", "upgrade", "--config",
                               str(config)], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(n)]
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


def test_two_db_upgrades_at_once_on_a_fresh_postgres_schema(
    tmp_path: Path, fresh_schema: Callable[[], str]
) -> None:
    """Today's bug: two ``db upgrade`` on a fresh schema failed with UniqueViolation. The
    advisory lock makes the second wait, then find the schema current. Five rounds."""
    for round_ in range(5):
        db = Db("postgres", fresh_schema(), tmp_path / str(round_))
        results = _upgrade_together(db.config_path)
        assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
        said = sorted(r.stdout.splitlines()[0].split(" is at ")[-1].split(" upgraded ")[-1]
                      for r in results)
        assert [s.split(" (")[0] for s in said] == [
            "from schema empty to 0003", "schema 0003, the current version"], said
        assert version(db) == HEAD
        assert len(db.run("SELECT version_num FROM alembic_version")) == 1


def test_two_db_upgrades_at_once_on_a_fresh_sqlite_file(tmp_path: Path) -> None:
    db = Db("sqlite", f"sqlite:///{tmp_path / 'data' / 'monitor.db'}", tmp_path)
    results = _upgrade_together(db.config_path)
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    assert version(db) == HEAD
