"""Parsing feeds off the event loop, under a budget (RELIABILITY.md B4).

feedparser is pure Python: a 7 MB feed of 100,000 small items took 11 s of CPU and about
200 MB here, and one 8 MB item of HTML 8.6 s (its sanitizer). On the event loop that froze
every other poll, every delivery and ``/healthz`` for the whole parse. So every fetched body
is decoded, parsed and mapped to items in a **worker process**, and the loop only waits:

* *A process, not a thread*: a parser thread holds the GIL for all its pure-Python work, so
  the loop would get time slices instead of the CPU, and a thread cannot be stopped. A
  process can be killed when it overruns its budget, and killing it frees all the memory
  the parse took.
* *The budget* (``fetch.parse_budget``, 10 s) is wall time from handing the body to a worker
  until its result is back; waiting for a free worker does not count. A parse that overruns
  is killed and the poll fails with ``FetchRejected(reason="parse_budget")`` naming the
  source and URL, which the poller counts and backs off on like any refused fetch.
* *A small pool of warm workers* (2 to 4, persistent): each a fresh interpreter (``python
  -c``, feedparser and the source modules imported before it says it is ready, about 0.2 s
  and 40 MB) talking pickles over a socket pair. Not ``fork`` (unsafe from the daemon's
  threads, and it would copy its sockets and SQLite handles), and not multiprocessing's
  spawn or forkserver either: they run the daemon's ``__main__`` script again in each
  worker. A worker killed, dead, or still holding more than ``RECYCLE_RSS`` after a job
  (what a big parse left behind) is replaced by a fresh one. Workers ignore SIGINT (the
  daemon decides about a Ctrl-C) and exit when the daemon's end of their socket closes, so
  none outlives the daemon, even after SIGKILL.
* *The item cap is applied before parsing*, not after: :func:`cut_items` finds the item
  (``<item>``/``<entry>``) start tags in the raw bytes (a C-speed scan that skips CDATA and
  comments) and, when a feed has more than ``parse_cap(max_items)`` items, removes whole items
  from the middle, keeping the first and the last half of the cap with the document's head
  and tail, so what feedparser sees is still well-formed. Feeds list newest first, a few
  oldest first; keeping both ends lets the usual newest-by-date selection
  (:func:`~monitor.sources.canonical.newest`) find the newest items in either order. A feed
  with items in random order over the cap is judged on its two ends only (the warning says
  so). Measured: 100,000 items, 7.4 MB, 11.4 s of CPU and 219 MB whole; cut to 1,000,
  0.17 s (``bench/parse.py``).
  The scan understands ASCII-compatible encodings (UTF-8, Latin-1, Windows code pages, the
  legacy CJK ones); a UTF-16/32 feed is parsed whole, under the budget.

JSON bodies (JSON Feed, JSON APIs) go through the same pool and budget; their item lists are
cut the same way (:func:`keep_ends`) before the per-item mapping, which is the costly part.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from monitor import errors
from monitor.errors import FetchRejected, SourceError
from monitor.models import Item
from monitor.sources.canonical import newest

A = TypeVar("A")
R = TypeVar("R")
T = TypeVar("T")

DEFAULT_BUDGET = 10.0  # seconds; fetch.parse_budget
PARSE_FLOOR = 1_000  # a feed of up to this many items (or 2 × max_items) is parsed whole
RECYCLE_RSS = 160 * 1024 * 1024  # a worker holding more than this after a job is replaced
PRELOAD = ["monitor.sources.rss", "monitor.sources.jsonapi"]


@dataclass(frozen=True)
class ParseLimits:
    """Per-parse budget: ``budget`` seconds of wall time in a worker process."""

    budget: float = DEFAULT_BUDGET


@dataclass(frozen=True)
class Parsed:
    """What a worker sends back: the kept items, warnings for the log, and a note for
    health (see :class:`~monitor.sources.base.PollResult`)."""

    items: list[Item]
    warnings: list[str] = field(default_factory=list)
    note: str | None = None


# --- the item cap, before parsing -----------------------------------------------------------


def parse_cap(max_items: int) -> int:
    """How many items of one document are parsed at most: ``2 × max_items``, at least
    ``PARSE_FLOOR``, so a feed up to that size is parsed whole and ordered by date exactly."""
    return max(2 * max_items, PARSE_FLOOR)


# An item or entry start tag (any namespace prefix), or the start of a section whose text is
# not markup. ``<items>`` (RSS 1.0's table of contents) is not an item.
_MARK = re.compile(rb"<!\[CDATA\[|<!--|<(?:[A-Za-z_][\w.\-]*:)?(?:item|entry)(?=[\s/>])")
_SECTION_END = {b"<![CDATA[": b"]]>", b"<!--": b"-->"}


def item_starts(body: bytes) -> list[int]:
    """Offsets of the item/entry start tags in ``body``, outside CDATA and comments.

    Linear: each CDATA section or comment is skipped with one ``find``; an unterminated one
    ends the scan, as it would end any XML parser's view of markup.
    """
    starts: list[int] = []
    pos = 0
    while (found := _MARK.search(body, pos)) is not None:
        end = _SECTION_END.get(found.group())
        if end is None:
            starts.append(found.start())
            pos = found.end()
            continue
        close = body.find(end, found.end())
        if close < 0:
            break
        pos = close + len(end)
    return starts


@dataclass(frozen=True)
class Kept:
    """Which items of a document were parsed: ``total`` found, the first ``head`` and the
    last ``tail`` of them kept (all of them, ``head == total``, when nothing was cut)."""

    total: int
    head: int
    tail: int = 0

    @property
    def cut(self) -> bool:
        return self.head + self.tail < self.total


def cut_items(body: bytes, limit: int) -> tuple[bytes, Kept]:
    """Keep at most ``limit`` items of an XML feed: the first ``limit // 2`` and the last
    ``limit - limit // 2``, with everything before the first and after the last kept item
    (channel metadata, closing tags). Whole items only, so the document stays well-formed."""
    starts = item_starts(body)
    total = len(starts)
    if total <= limit:
        return body, Kept(total, total)
    head = limit // 2
    tail = limit - head
    return body[: starts[head]] + body[starts[total - tail] :], Kept(total, head, tail)


def keep_ends(elements: Sequence[T], limit: int) -> tuple[list[T], Kept]:
    """The first ``limit // 2`` and the last ``limit - limit // 2`` of ``elements`` (all of
    them when there are no more than ``limit``): the JSON twin of :func:`cut_items`."""
    total = len(elements)
    if total <= limit:
        return list(elements), Kept(total, total)
    head = limit // 2
    tail = limit - head
    return [*elements[:head], *elements[total - tail :]], Kept(total, head, tail)


def keep_newest(
    items: list[Item], max_items: int, where: str, kept: Kept | None = None
) -> tuple[list[Item], list[str]]:
    """The ``max_items`` newest of the parsed items (:func:`~monitor.sources.canonical.newest`)
    and the one warning a capped poll logs."""
    chosen = newest(items, max_items, lambda item: item.published)
    if kept is not None and kept.cut:
        return chosen, [f"{where}: kept the newest {len(chosen)} of {kept.total} items (only "
                        f"the first {kept.head} and the last {kept.tail} were parsed; "
                        f"max_items is {max_items})"]
    if len(chosen) < len(items):
        return chosen, [f"{where}: kept the newest {max_items} of {len(items)} items"]
    return chosen, []


# --- the worker process --------------------------------------------------------------------


def _rss() -> int:
    """This process's resident memory now, in bytes (0 where the platform cannot say).

    Not ``ru_maxrss``: on Linux a child keeps the high-water mark of the process it was
    forked from across ``exec``, so every worker would report the daemon's own peak.
    """
    with contextlib.suppress(OSError, ValueError, IndexError), \
            open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return 0


# A worker's first lines: only the standard library until the parent's sys.path is in place.
_BOOT = """\
import signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
from multiprocessing.connection import Connection
conn = Connection({fd})
sys.path[:] = conn.recv()
from monitor.sources.parsing import serve
serve(conn)
"""


def serve(conn: Connection) -> None:
    """A worker's life: say it is ready (its imports done), then run one job at a time
    until the daemon closes its end of the socket.

    Replies are plain tuples, never pickled exceptions: SourceError and FetchRejected take
    keyword-only or extra arguments that pickling an exception would lose.
    """
    for module in PRELOAD:
        importlib.import_module(module)  # before "ready": imports never count as parse time
    conn.send("ready")
    while True:
        try:
            fn, arg = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply: tuple[Any, ...] = ("ok", fn(arg))
        except SourceError as exc:
            reply = ("error", type(exc).__name__, exc.args, dict(vars(exc)))
        except BaseException as exc:  # a parser bug: the daemon logs it as a crash
            text = "".join(traceback.format_exception(exc))
            reply = ("crash", f"{type(exc).__name__}: {exc}", text)
        try:
            conn.send((*reply, _rss()))
        except Exception as exc:  # an unpicklable result
            conn.send(("crash", f"cannot send the result: {exc!r}", "", _rss()))


def _rebuild(name: str, args: tuple[Any, ...], attrs: dict[str, Any]) -> SourceError:
    """The worker's SourceError (or subclass) rebuilt in the daemon, attributes and all."""
    cls = getattr(errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, SourceError)):
        cls = SourceError
    exc = cls.__new__(cls)
    Exception.__init__(exc, *args)
    exc.__dict__.update(attrs)
    return exc


class ParserCrashed(RuntimeError):
    """The parse raised something that is not a SourceError: a bug, logged with the
    worker's traceback (``poll_crashed``)."""


class _Worker:
    """One worker process: ``python -c _BOOT`` on one end of a socket pair.

    A plain subprocess rather than multiprocessing's spawn or forkserver: those run the
    daemon's ``__main__`` script again in every worker (for the console script that is
    ``monitor.cli`` and all it imports; an unguarded script fails outright), and forking the
    multi-threaded daemon itself is unsafe. The worker gets nothing of the daemon but the
    one socket (``close_fds``), so it sees EOF, and exits, when the daemon is gone.
    """

    START_TIMEOUT = 60.0

    def __init__(self) -> None:
        try:
            ours, theirs = socket.socketpair()
        except OSError as exc:  # out of file descriptors, say
            raise SourceError(f"cannot start the feed parser process: {exc}") from exc
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _BOOT.format(fd=theirs.fileno())],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,  # stderr: the daemon's
                pass_fds=(theirs.fileno(),),
            )
        except OSError as exc:
            ours.close()
            raise SourceError(f"cannot start the feed parser process: {exc}") from exc
        finally:
            theirs.close()
        self.conn = Connection(ours.detach())
        try:
            self.conn.send(list(sys.path))  # import what the daemon imports
            started = self.conn.poll(self.START_TIMEOUT) and self.conn.recv() == "ready"
        except (EOFError, OSError):
            started = False
        if not started:
            self.kill()
            raise SourceError(f"the feed parser process did not start "
                              f"({_exit(self.process.returncode)}; see the log above)")

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def signal_kill(self) -> None:
        """SIGKILL only: safe from any thread; the pool thread waiting on it cleans up."""
        with contextlib.suppress(OSError):
            self.process.kill()

    def kill(self) -> None:
        self.signal_kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        self.conn.close()


class _Job:
    """One parse in flight; :meth:`cancel` kills its worker (the poll was cancelled)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.worker: _Worker | None = None
        self.cancelled = False

    def cancel(self) -> None:
        with self.lock:
            self.cancelled = True
            worker = self.worker
        if worker is not None:
            worker.signal_kill()  # from the event loop: no join, no close here


class ParserPool:
    """Up to ``workers`` parses at once, each in a worker process, each under a budget.

    Example::

        pool = ParserPool()
        parsed = await pool.run(parser.parse, fetch_result, budget=10.0, where="source=x url=…")

    ``fn`` and its argument must pickle (a bound method of a module-level dataclass does).
    Usable from any event loop (tests run many): the slots are a thread pool, one thread per
    worker, each blocking in a ``poll`` of its worker's socket for at most the budget, which
    wakes on the result or on EOF when the worker dies. The threads are the pool's own, so a
    parse never takes one of the default executor's threads the store calls need.
    """

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or max(2, min(4, os.cpu_count() or 1))
        self._threads = ThreadPoolExecutor(self.workers, thread_name_prefix="monitor-parse")
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._closed = False

    async def run(self, fn: Callable[[A], R], arg: A, *, budget: float, where: str) -> R:
        """``fn(arg)`` in a worker.

        Raises:
            FetchRejected: ``parse_budget`` when it did not finish within ``budget`` seconds
                (the worker is killed).
            SourceError: what ``fn`` raised, or the worker died (retryable).
            ParserCrashed: ``fn`` raised anything else.
        """
        loop = asyncio.get_running_loop()
        job = _Job()
        future = loop.run_in_executor(self._threads, self._call, job, fn, arg, budget, where)
        try:
            return await future
        except asyncio.CancelledError:
            job.cancel()  # a poll cancelled at shutdown must not leave a parse running
            raise

    def pids(self) -> list[int]:
        """Process ids of the live workers (for tests and diagnostics)."""
        with self._lock:
            return sorted(w.pid for w in self._all if w.alive())

    def close(self) -> None:
        """Kill every worker; later :meth:`run` calls fail."""
        with self._lock:
            self._closed = True
            workers, self._idle, self._all = list(self._all), [], set()
        for worker in workers:
            worker.kill()
        self._threads.shutdown(wait=False, cancel_futures=True)

    # --- in a pool thread ---

    def _call(self, job: _Job, fn: Callable[[A], R], arg: A, budget: float, where: str) -> R:
        try:
            worker = self._checkout(job)
        except SourceError as exc:
            raise SourceError(f"{where}: {exc}") from exc
        started = time.monotonic()
        reply, overran = None, False
        try:
            worker.conn.send((fn, arg))
            # Readable on the reply, or on EOF when the worker dies (nothing else holds
            # its end of the socket).
            overran = not worker.conn.poll(max(0.0, budget - (time.monotonic() - started)))
            if not overran:
                reply = self._receive(worker)
        except (OSError, EOFError):  # the worker died while we were sending
            pass
        took = time.monotonic() - started
        if reply is None:
            self._discard(worker)
            if overran:
                raise FetchRejected(
                    "parse_budget",
                    f"{where}: parsing did not finish within the {budget:g}s parse budget "
                    f"({_size(arg)}); the parser was stopped",
                )
            raise SourceError(f"{where}: the feed parser process died "
                              f"({_exit(worker.process.returncode)}) after {took:.1f}s")
        *outcome, rss = reply
        if rss > RECYCLE_RSS:
            self._discard(worker)  # give the memory of a big parse back to the system
        else:
            self._checkin(worker)
        if outcome[0] == "ok":
            result: R = outcome[1]
            return result
        if outcome[0] == "error":
            raise _rebuild(*outcome[1:])
        raise ParserCrashed(f"{where}: feed parser crashed: {outcome[1]}\n{outcome[2]}")

    @staticmethod
    def _receive(worker: _Worker) -> tuple[Any, ...] | None:
        try:
            reply: tuple[Any, ...] = worker.conn.recv()
        except (EOFError, OSError):
            return None
        return reply

    def _checkout(self, job: _Job) -> _Worker:
        worker, dead = None, []
        with self._lock:
            if self._closed:
                raise SourceError("the feed parser pool is closed (shutting down)")
            while self._idle and worker is None:
                candidate = self._idle.pop()
                if candidate.alive():
                    worker = candidate
                else:  # died while idle (the OOM killer, an operator): replaced below
                    self._all.discard(candidate)
                    dead.append(candidate)
        for corpse in dead:
            corpse.kill()  # reaps it and closes its socket
        if worker is None:
            worker = _Worker()
            with self._lock:
                self._all.add(worker)
        with job.lock:
            if not job.cancelled:
                job.worker = worker
                return worker
        self._checkin(worker)
        raise SourceError("parse cancelled")

    def _checkin(self, worker: _Worker) -> None:
        with self._lock:
            if not self._closed and worker in self._all:
                self._idle.append(worker)
                return
        worker.kill()

    def _discard(self, worker: _Worker) -> None:
        with self._lock:
            self._all.discard(worker)
        worker.kill()


def _size(arg: object) -> str:
    body = getattr(arg, "body", None)
    return f"{len(body)} bytes" if isinstance(body, bytes) else type(arg).__name__


def _exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


# --- the daemon's pool ---------------------------------------------------------------------

_shared: ParserPool | None = None
_shared_lock = threading.Lock()


def shared_pool() -> ParserPool:
    """The process's pool, started on first use (no worker runs until a feed is parsed)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = ParserPool()
            atexit.register(_shared.close)
        return _shared
