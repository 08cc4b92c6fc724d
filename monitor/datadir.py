"""A deployment's files: one daemon at a time, and a store and a queue that belong together.

**The lock.** ``monitor run`` (and ``monitor db recover``) takes an exclusive
``fcntl.flock`` on ``monitor.lock`` in every folder that holds one of its SQLite files
(the queue's folder, and the store's when the store is SQLite), and writes its PID there;
with a PostgreSQL store it also takes the session-level advisory lock ``monitor:all`` (per
database and schema). The roles (``run --role poll|match|notify``, Kafka and PostgreSQL
only) take neither lock: several of each share the work (``_open_shared``). A second
``all`` daemon exits 3 naming the PID that holds it. Read-only commands (``check``,
``status``, ``db check``) take no lock.

**The pair.** The store and the queue each keep the same random *pair id* (a ``meta``
table in both). At start the daemon runs ``PRAGMA quick_check`` on the SQLite files and
compares the ids; it refuses (exit 3, one line naming the file and the way out) when the
queue is missing, new or another's (the items seen but not yet matched were in the old
one), when the store is missing, empty or another's while its queue is not (every item
would alert again), or when a file is damaged. ``monitor db recover`` re-queues the items
seen since the last matched one into the queue and pairs the two again.

**The watch.** While the daemon runs, a thread stats the files every second and logs
``data_file_gone`` / ``data_file_replaced`` once per file: the daemon keeps writing to the
deleted file through its open handle, and that work is lost at restart.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from monitor.config import POSTGRES_SCHEMES, Config, parse_backfill, parse_duration
from monitor.errors import ServiceUnavailable
from monitor.models import Item
from monitor.queue.base import ITEMS

if TYPE_CHECKING:
    from monitor.queue.base import Queue
    from monitor.queue.sqlite import SqliteQueue
    from monitor.store.base import Store

log = logging.getLogger("monitor")

LOCK_FILE = "monitor.lock"
#: ``db recover`` re-queues from this long before the newest alerted item was seen, so an
#: item still in the queue beside it (retried, or claimed by a worker that died) is not
#: missed. Re-matching an item that already alerted is harmless: its alert id is stored.
RECOVER_MARGIN = 300.0
WATCH_INTERVAL = 1.0

MISSING, EMPTY, PRESENT = "missing", "empty", "present"


class StartRefused(ServiceUnavailable):
    """The data directory must not be used as it is (exit 3): a file is missing, damaged
    or not its partner's. The message names the file and says how to recover."""


class DataDirInUse(StartRefused):
    """Another monitor process holds the data directory's lock."""

    def __init__(self, message: str, pid: int | None) -> None:
        self.pid = pid
        super().__init__(message)


@runtime_checkable
class PairedStore(Protocol):
    """What the pairing needs from a store (SqliteStore and PostgresStore have it)."""

    def pair_id(self) -> str | None: ...
    def set_pair_id(self, pair: str) -> None: ...
    def has_records(self) -> bool: ...
    def last_matched_seen_at(self) -> float | None: ...
    def seen_items_since(self, since: float) -> list[tuple[float, Item]]: ...


# --- judging a pair ------------------------------------------------------------------------
@dataclass(frozen=True)
class Side:
    """What one half of the pair says about itself. ``count``: for the queue, messages
    held; for the store, 1 if it records anything, else 0. ``file``: the SQLite file before
    it was opened (``missing``, ``empty`` at 0 bytes, or ``present``)."""

    role: str
    where: str
    pair: str | None
    count: int
    file: str = PRESENT

    @property
    def blank(self) -> bool:
        return self.pair is None and self.count == 0

    def described(self) -> str:
        if self.file == MISSING:
            return f"{self.role} {self.where} is missing"
        if self.file == EMPTY:
            return f"{self.role} {self.where} is empty (0 bytes)"
        return f"{self.role} {self.where} is {'new' if self.blank else 'not paired'}"


@dataclass(frozen=True)
class Verdict:
    """``ok``: the pair may be used; ``pair``: a new id to write to both first (a fresh
    data directory, or files from before pairing existed). Otherwise ``lost`` names the
    half that is gone (``queue``, ``store`` or ``pair`` when both are present but are not
    partners) and ``problem`` is the one line to print."""

    ok: bool
    pair: str | None = None
    lost: str = ""
    problem: str = ""


def short(pair: str | None) -> str:
    return f"pair {pair[:8]}" if pair else "unpaired"


def judge(store: Side, queue: Side) -> Verdict:
    """Whether a store and a queue belong together (pure: tests call it directly)."""
    if store.pair is not None and store.pair == queue.pair:
        return Verdict(True)
    recover = ("stop every monitor on this data directory, then run `monitor db recover` to "
               "re-queue the items seen since the last matched one and pair them (alerts "
               "already delivered are not sent again)")
    if store.pair is None and queue.pair is None:
        if store.count or queue.count == 0:  # fresh, or both from before pairing existed
            return Verdict(True, pair=uuid.uuid4().hex)
    elif queue.pair is None and queue.count == 0 and store.count == 0:
        return Verdict(True, pair=store.pair)  # a first pairing cut short: nothing was seen
    if store.blank:
        waiting = f", {queue.count} messages waiting" if queue.count else ""
        return Verdict(False, lost="store", problem=(
            f"{store.described()} but queue {queue.where} belongs to a store that recorded "
            f"what was seen and alerted ({short(queue.pair)}{waiting}): starting would alert "
            f"old items again; restore {store.where} from a backup, or run `monitor db recover "
            "--new-store` to keep a new store whose sources start by marking their feeds' "
            "current items seen"))
    if queue.pair is None:
        return Verdict(False, lost="queue", problem=(
            f"{queue.described()} but store {store.where} was paired with a queue "
            f"({short(store.pair)}): the items seen but not yet matched were in the old "
            f"queue; {recover}"))
    return Verdict(False, lost="pair", problem=(
        f"store {store.where} ({short(store.pair)}) and queue {queue.where} "
        f"({short(queue.pair)}) do not belong together: one was replaced by another copy; "
        f"put back the matching file, or {recover}"))


# --- files ---------------------------------------------------------------------------------
def file_state(path: Path) -> str:
    try:
        return EMPTY if path.stat().st_size == 0 else PRESENT
    except FileNotFoundError:
        return MISSING


def integrity_problems(path: Path, *, full: bool = False, limit: int = 20) -> list[str]:
    """``PRAGMA quick_check`` (``integrity_check`` with ``full``) of an existing SQLite
    file: the problems SQLite reports, [] when it says ok."""
    pragma = "integrity_check" if full else "quick_check"
    try:
        conn = sqlite3.connect(str(path), timeout=30.0)
        try:
            rows = conn.execute(f"PRAGMA {pragma}({int(limit)})").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:  # "file is not a database", "malformed", ...
        return [str(exc)]
    problems = [str(r[0]) for r in rows]
    return [] if problems == ["ok"] else problems


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _safe_url(url: str) -> str:
    return "PostgreSQL " + (url.split("@")[-1] if "@" in url else url).split("?")[0]


class FileWatch:
    """Logs once per file when a SQLite file the daemon has open is deleted or replaced
    (and once more, at INFO, if that very file is put back)."""

    def __init__(self, files: dict[str, Path], interval: float = WATCH_INTERVAL) -> None:
        self.files = files
        self.ids = {role: _identity(path) for role, path in files.items()}
        self.reported: set[str] = set()
        self.ticks = 0
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="datadir-watch", daemon=True)

    def start(self) -> FileWatch:
        self._thread.start()
        return self

    def check(self) -> None:
        for role, path in self.files.items():
            now = _identity(path)
            if role in self.reported and now == self.ids[role]:
                self.reported.discard(role)
                log.info("data_file_back role=%s file=%s (the file the daemon has open is "
                         "at its path again)", role, path)
            if role in self.reported or now == self.ids[role]:
                continue
            self.reported.add(role)
            event = "data_file_gone" if now is None else "data_file_replaced"
            log.error("%s role=%s file=%s (the daemon keeps using the file it opened, and what "
                      "it writes there is lost at restart, which will refuse to start; stop "
                      "the daemon, then run `monitor db recover`%s)", event, role, path,
                      " or restore the store from a backup" if role == "store" else "")
        self.ticks += 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.check()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


class DataDir:
    """The files of one deployment: where they are, the lock over them, the watch."""

    def __init__(self, config: Config, role: str = "all") -> None:
        self.config = config
        self.role = role
        self.queue_path = config.resolve(config.queue.path)
        url = config.store.url
        self.pg_url = url if url.startswith(POSTGRES_SCHEMES) else None
        self.store_path = None if self.pg_url else config.sqlite_path(url)
        self.store_where = _safe_url(url) if self.pg_url else str(self.store_path)
        files = [self.queue_path] + ([self.store_path] if self.store_path else [])
        self.folders = list(dict.fromkeys(p.parent for p in files))
        self._fds: list[int] = []
        self._pg: Any = None
        self._watch: FileWatch | None = None

    @property
    def lock_name(self) -> str:
        return f"monitor:{self.role}"

    # --- the lock ----------------------------------------------------------------------
    def lock(self, doing: str = "start") -> None:
        """Take every folder's lock, or raise DataDirInUse naming the holder's PID."""
        try:
            for folder in self.folders:
                self._fds.append(self._flock(folder, doing))
        except BaseException:
            self.release()
            raise

    def _flock(self, folder: Path, doing: str) -> int:
        path = folder / LOCK_FILE
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ServiceUnavailable(f"cannot open the lock file {path}: "
                                     f"{exc.strerror or exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            who = f"PID {pid}" if pid else "PID unknown"
            raise DataDirInUse(
                f"{_lead(doing)}data directory {folder} is in use by another monitor "
                f"({who}, lock {path}); stop that one first (kill -TERM {pid or '<pid>'}), "
                "or give this one its own data directory", pid) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return fd

    def lock_postgres(self, doing: str = "start") -> None:
        """The PostgreSQL store's session-level advisory lock, on a connection of its own
        (held until ``release``), keyed by the role and the store's database and schema."""
        if self.pg_url is None or self._pg is not None:
            return
        import psycopg

        me = f"monitor pid={os.getpid()} host={socket.gethostname()}"
        try:
            conn = psycopg.connect(self.pg_url, autocommit=True, connect_timeout=10,
                                   application_name=me[:63])
            try:
                row = conn.execute("SELECT hashtextextended(%s || '@' || COALESCE("
                                   "current_schema(), ''), 0)", (self.lock_name,)).fetchone()
                key = int(row[0]) if row else 0
                got = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
                holder = None if got and got[0] else _pg_holder(conn, key)
            except BaseException:
                conn.close()
                raise
        except psycopg.Error as exc:
            raise ServiceUnavailable(f"cannot open the PostgreSQL store: {type(exc).__name__}: "
                                     f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc
        if holder is not None:
            conn.close()
            pid, who = holder
            raise DataDirInUse(
                f"{_lead(doing)}the {self.store_where} store is in use by another monitor "
                f"({who}; advisory lock '{self.lock_name}'); stop that one first, or give "
                "this one its own database or schema", pid)
        self._pg = conn

    # --- the watch and the end ---------------------------------------------------------
    def watch(self, interval: float = WATCH_INTERVAL) -> None:
        files = {"queue": self.queue_path}
        if self.store_path is not None:
            files["store"] = self.store_path
        self._watch = FileWatch(files, interval).start()

    def release(self) -> None:
        if self._watch is not None:
            self._watch.stop()
            self._watch = None
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # closing the descriptor drops the flock
        self._fds = []
        if self._pg is not None:
            with contextlib.suppress(Exception):
                self._pg.close()
            self._pg = None

    # --- the files ---------------------------------------------------------------------
    def file_states(self) -> dict[str, str]:
        states = {"queue": file_state(self.queue_path)}
        states["store"] = file_state(self.store_path) if self.store_path else PRESENT
        return states

    def damaged(self, role: str, *, full: bool = False) -> list[str]:
        path = self.queue_path if role == "queue" else self.store_path
        if path is None or file_state(path) != PRESENT:
            return []
        return integrity_problems(path, full=full)

    def side(self, role: str, opened: PairedStore | SqliteQueue | None,
             states: dict[str, str]) -> Side:
        """What the store or the queue says about itself; ``opened`` None: a file that is
        missing or empty (not opened, so as not to create it)."""
        where = self.store_where if role == "store" else str(self.queue_path)
        if opened is None:
            return Side(role, where, None, 0, states[role])
        count = (int(opened.has_records()) if isinstance(opened, PairedStore)
                 else opened.message_count())
        return Side(role, where, opened.pair_id(), count, states[role])


def _lead(doing: str) -> str:
    return "" if doing == "start" else f"cannot {doing}: "


def _read_pid(fd: int) -> int | None:
    for _ in range(20):  # the holder writes its PID right after locking: wait a moment
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if text.isdigit():
            return int(text)
        time.sleep(0.01)
    return None


def _pg_holder(conn: Any, key: int) -> tuple[int | None, str]:
    """(PID, words) of the monitor holding the advisory lock ``key``."""
    row = conn.execute(
        "SELECT a.application_name, a.pid, a.client_addr::text FROM pg_locks l"
        " JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory'"
        " AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname ="
        " current_database()) AND l.classid::bigint = %s AND l.objid::bigint = %s"
        " AND l.objsubid = 1", ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF)).fetchone()
    if row is None:
        return None, "PID unknown"
    name, backend, addr = row
    words = dict(p.split("=", 1) for p in str(name or "").split() if "=" in p)
    if str(name or "").startswith("monitor ") and words.get("pid", "").isdigit():
        return int(words["pid"]), f"PID {words['pid']} on {words.get('host', '?')}"
    return None, f"PostgreSQL backend {backend} from {addr or 'a local socket'}"


# --- start-up ------------------------------------------------------------------------------
def _look(config: Config, data: DataDir, states: dict[str, str], doing: str = "start"
          ) -> tuple[Store | None, SqliteQueue | None, Verdict]:
    """Open the files that exist and judge the pair. A missing or empty SQLite file is
    not opened (that would create it), so a refusal leaves it as it was and the next look
    still says so; the caller creates it once the verdict allows."""
    from monitor.queue.sqlite import SqliteQueue
    from monitor.store import open_store

    store: Store | None = None
    queue: SqliteQueue | None = None
    try:
        if states["store"] == PRESENT:
            store = open_store(config)
            data.lock_postgres(doing)
        if states["queue"] == PRESENT:
            queue = SqliteQueue(data.queue_path, durability=config.store.durability)
        verdict = Verdict(True)  # a store without a pair id (none today) is not judged
        if store is None or isinstance(store, PairedStore):
            verdict = judge(data.side("store", store, states), data.side("queue", queue, states))
        return store, queue, verdict
    except BaseException:
        _close(queue, store)
        raise


def _close(*opened: Any) -> None:
    for thing in opened:
        if thing is not None:
            with contextlib.suppress(Exception):
                thing.close()


def open_paired(config: Config, role: str = "all") -> tuple[DataDir, Store, Queue]:
    """Lock the data directory, check the SQLite files, open the store and the queue, and
    make sure they belong together (pairing a fresh pair). Everything is released again
    when it raises. A Kafka queue has no file to pair: the store is opened alone and the
    topics are created if missing.

    Raises:
        DataDirInUse: another monitor holds the lock.
        StartRefused: a file is damaged, missing or not its partner's.
        ServiceUnavailable: a database cannot be opened or reached, or the broker.
    """
    from monitor.queue.sqlite import SqliteQueue
    from monitor.store import open_store

    if role != "all":
        return _open_shared(config, role)
    if config.queue.backend != "sqlite":
        return _open_unpaired(config)
    data = DataDir(config)
    data.lock()
    store: Store | None = None
    queue: SqliteQueue | None = None
    try:
        states = data.file_states()  # before opening creates anything
        for role, how in (("store", "restore it from a backup"),
                          ("queue", "run `monitor db recover` (it moves the damaged file "
                                    "aside and re-queues the items seen since the last "
                                    "matched one)")):
            problems = data.damaged(role)
            if problems:
                path = data.store_path if role == "store" else data.queue_path
                raise StartRefused(f"{role} {path} is damaged (quick_check: {problems[0]}); "
                                   f"{how}; `monitor db check` lists every problem")
        store, queue, verdict = _look(config, data, states)
        if not verdict.ok:
            raise StartRefused(verdict.problem)
        if store is None:
            store = open_store(config)
        if queue is None:
            queue = SqliteQueue(data.queue_path, durability=config.store.durability)
        queue.lease = config.delivery.lease
        if isinstance(store, PairedStore) and verdict.pair:
            store.set_pair_id(verdict.pair)  # the store first: see judge()
            queue.set_pair_id(verdict.pair)
            log.info("datadir_paired store=%s queue=%s %s", data.store_where, data.queue_path,
                     short(verdict.pair))
        data.watch()
        return data, store, queue
    except BaseException:
        _close(queue, store)
        data.release()
        raise


def _open_unpaired(config: Config) -> tuple[DataDir, Store, Queue]:
    """The store and a queue that keeps no pair id (Kafka: its state is the broker's)."""
    from monitor.queue import open_queue
    from monitor.store import open_store

    data = DataDir(config)
    data.lock()
    store: Store | None = None
    try:
        problems = data.damaged("store")
        if problems:
            raise StartRefused(f"store {data.store_path} is damaged (quick_check: "
                               f"{problems[0]}); restore it from a backup; `monitor db check` "
                               "lists every problem")
        store = open_store(config)
        data.lock_postgres()
        queue = open_queue(config)
        data.watch()
        return data, store, queue
    except BaseException:
        _close(store)
        data.release()
        raise


def _open_shared(config: Config, role: str) -> tuple[DataDir, Store, Queue]:
    """A role (``run --role poll|match|notify``: Kafka and PostgreSQL, checked by the
    caller): no file lock and no advisory lock, since any number of each role share the
    work: matchers and notifiers through the consumer groups, notifiers' deliveries
    through the outbox's claims (FOR UPDATE SKIP LOCKED), pollers' sources through the
    store's source leases."""
    from monitor.queue import open_queue
    from monitor.store import open_store

    store = open_store(config)
    try:
        return DataDir(config, role), store, open_queue(config)
    except BaseException:
        _close(store)
        raise


# --- db check --------------------------------------------------------------------------------
def check_report(config: Config) -> tuple[bool, list[str]]:
    """``monitor db check``: ``integrity_check`` of each SQLite file and whether the store
    and the queue belong together, as lines for a person. Takes no lock and creates no
    file; (True, lines) when nothing is wrong."""
    from monitor.queue.sqlite import SqliteQueue
    from monitor.store import open_store

    data = DataDir(config)
    states = data.file_states()
    lines: list[str] = []
    damaged = False
    kafka = config.queue.backend == "kafka"
    for role, path in (("store", data.store_path), ("queue", None if kafka else data.queue_path)):
        if path is None:
            continue
        if states[role] != PRESENT:
            lines.append(f"{states[role]}: {role} {path} "
                         + ("does not exist" if states[role] == MISSING else "is 0 bytes"))
            continue
        problems = data.damaged(role, full=True)
        damaged |= bool(problems)
        lines += [f"damaged: {role} {path}: {p}" for p in problems] or [
            f"ok: {role} {path} ({path.stat().st_size:,} bytes): integrity_check ok"]
    if damaged:
        return False, [*lines, "pairing not checked: a file is damaged (restore the store "
                               "from a backup; `monitor db recover` rebuilds a queue)"]
    if kafka:
        return _check_kafka(config, data, lines)
    sides = []
    for role in ("store", "queue"):
        opened: Store | SqliteQueue | None = None
        if states[role] == PRESENT:  # never create a file here
            opened = open_store(config) if role == "store" else SqliteQueue(data.queue_path)
        try:
            if opened is not None and not isinstance(opened, PairedStore | SqliteQueue):
                return True, [*lines, "pairing not checked: this store keeps no pair id"]
            if role == "store" and data.pg_url:
                lines.insert(0, f"ok: store {data.store_where}: reachable (its integrity is "
                                "the server's to check)")
            sides.append(data.side(role, opened, states))
        finally:
            if opened is not None:
                opened.close()
    store, queue = sides
    verdict = judge(store, queue)
    if verdict.ok and verdict.pair is None:
        lines.append(f"ok: store and queue belong together ({short(store.pair)}; "
                     f"{queue.count} messages in the queue)")
    elif verdict.ok:
        lines.append("ok: store and queue are not paired yet: the next `monitor run` pairs "
                     "them")
    else:
        lines.append(f"not paired: {verdict.problem}")
    return verdict.ok, lines


def _check_kafka(config: Config, data: DataDir, lines: list[str]) -> tuple[bool, list[str]]:
    """``db check`` with a Kafka queue: the store answers, the broker answers, the topics
    exist, and what waits in each (the groups' lag) and in the dead-letter topic. There is
    no pairing: the broker, not a file beside the store, keeps the queue."""
    from monitor.queue import open_queue
    from monitor.queue.base import TOPICS
    from monitor.store import open_store

    ok = True
    if data.pg_url:
        try:
            open_store(config).close()
            lines.insert(0, f"ok: store {data.store_where}: reachable (its integrity is the "
                            "server's to check)")
        except ServiceUnavailable as exc:
            lines.insert(0, f"unreachable: store {data.store_where}: {exc}")
            ok = False
    q = config.queue
    where = f"kafka {q.bootstrap_servers} (topics {q.topic_prefix}.*)"
    try:
        queue = open_queue(config, create=False)
    except ServiceUnavailable as exc:
        return False, [*lines, f"unreachable: queue {where}: {exc}"]
    try:
        admin = queue.admin
        admin.ping()
        waiting = {t: admin.depth(t) for t in TOPICS}
        dead = sum(len(admin.dead(t)) for t in TOPICS)
    except ServiceUnavailable as exc:
        return False, [*lines, f"unreachable: queue {where}: {exc}"]
    finally:
        queue.close()
    lines.append(f"ok: queue {where}: reachable; waiting "
                 + ", ".join(f"{t} {n}" for t, n in waiting.items())
                 + f"; dead-lettered {dead} (the broker keeps the queue: no pairing to check)")
    return ok, lines


# --- db recover ------------------------------------------------------------------------------
@dataclass
class Recovered:
    """What ``db recover`` did. ``refused``: nothing was done, and why (exit 1)."""

    lost: str = ""
    requeued: int = 0
    since: float | None = None
    moved: list[Path] | None = None
    pair: str | None = None
    primed: list[str] | None = None
    refused: str = ""


Prime = Callable[["Store", "SqliteQueue"], list[str]]


def parse_since(text: str, now: float | None = None) -> float:
    """``2h`` / ``7d`` (that long ago) or an ISO-8601 time (UTC unless it says) -> epoch."""
    now = time.time() if now is None else now
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError("expected a duration such as 30m, 2h or 7d, or a time such as "
                         "2025-01-31T12:00") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def recover(config: Config, data: DataDir, *, since: float | None = None,
            new_store: bool = False, prime: Prime | None = None) -> Recovered:
    """Make the store and the queue a pair again; the caller holds ``data``'s lock.

    A damaged queue is moved aside. A lost queue (missing, new or another's) gets the items
    seen since the last matched one (or since ``since``) queued again; the matcher's alert
    ids make a repeat harmless. A lost store is kept new only with ``new_store``: ``prime``
    then marks the feeds' current items seen. Either way both get a new pair id, so a stale
    copy of either file put back later is refused.
    """
    from monitor.queue.sqlite import SqliteQueue
    from monitor.store import open_store

    problems = data.damaged("store")
    if problems:
        return Recovered(refused=f"store {data.store_path} is damaged (quick_check: "
                                 f"{problems[0]}): recover cannot repair a store; restore it "
                                 "from a backup")
    moved = _move_aside(data.queue_path) if data.damaged("queue") else []
    states = data.file_states()
    store, queue, verdict = _look(config, data, states, "recover")
    try:
        if store is not None and not isinstance(store, PairedStore):
            return Recovered(refused="this store keeps no pair id: nothing to recover")
        lost = "queue" if moved else verdict.lost
        if new_store != (lost == "store"):
            return Recovered(lost=lost, refused=(
                f"--new-store: store {data.store_where} is not new or empty: nothing done"
                if new_store else verdict.problem))
        if verdict.ok and verdict.pair is None and since is None and not moved:
            return Recovered()  # nothing is wrong
        if store is None:
            store = open_store(config)
        if queue is None:
            queue = SqliteQueue(data.queue_path, durability=config.store.durability)
        assert isinstance(store, PairedStore)
        done = Recovered(lost=lost, moved=moved)
        if new_store:
            done.primed = prime(store, queue) if prime else []
        elif lost or since is not None:
            if since is None:
                last = store.last_matched_seen_at()
                since = 0.0 if last is None else last - RECOVER_MARGIN
            done.since = since
            done.requeued = requeue(store, queue, since)
        done.pair = uuid.uuid4().hex
        store.set_pair_id(done.pair)
        queue.set_pair_id(done.pair)
        log.info("datadir_recovered lost=%s requeued=%d %s", lost or "none", done.requeued,
                 short(done.pair))
        return done
    finally:
        _close(queue, store)


def requeue(store: PairedStore, queue: SqliteQueue, since: float) -> int:
    """Queue the items seen since ``since`` for matching again, except those a source's
    first poll marked seen without queuing (its backlog, older than its backfill)."""
    from monitor.sources.canonical import published_timestamp

    rows = []
    primed: dict[str, tuple[float, float] | None] = {}
    for seen_at, item in store.seen_items_since(since):
        if item.source not in primed:
            primed[item.source] = _priming(store, item.source)
        first = primed[item.source]
        if first is not None and seen_at <= first[0]:
            stamp = published_timestamp(item.published)
            if stamp is None or stamp < first[0] - first[1]:
                continue  # primed, never queued: re-queuing it would alert the backlog
        rows.append((item.key or item.id, item.to_dict()))
    return queue.publish_many(ITEMS, rows) if rows else 0


def _priming(store: Any, source: str) -> tuple[float, float] | None:
    """(when the source's first poll was recorded, its backfill in seconds), if known."""
    state = store.source_state(source)
    if state is None or state.primed_at is None or not state.primed_backfill:
        return None
    try:
        return float(state.primed_at), parse_backfill(state.primed_backfill)
    except ValueError:
        return None


def _move_aside(path: Path) -> list[Path]:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    moved = []
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{path}{suffix}")
        if src.exists():
            dst = Path(f"{path}.damaged-{stamp}{suffix}")
            src.rename(dst)
            moved.append(dst)
    return moved
