"""The exception tree. Adapters translate third-party errors at their boundary.

    MonitorError
    ├── ConfigError          invalid config.yaml or watchlist; carries file:line:col problems
    ├── SourceError          a poll failed; ``retryable`` says whether a later poll may succeed
    │   └── FetchRejected    the fetch layer refused a response (size, encoding, address, XML)
    ├── NotifyError          a send failed; ``retryable`` / ``retry_after`` / ``ambiguous``
    └── ServiceUnavailable   a queue or store cannot be reached (exit code 3 at start-up)
        └── StoreError       a read or write of the store or a queue failed (disk full, I/O
                             error, locked past the busy timeout, connection lost)
"""

from __future__ import annotations

from dataclasses import dataclass


class MonitorError(Exception):
    """Base of every error monitor raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One problem in a file, printed as ``file:line:col: message``."""

    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class ConfigError(MonitorError):
    """A config or watchlist file is invalid. Every problem is collected before raising."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class SourceError(MonitorError):
    """A poll failed. ``retryable`` is False when a person has to act (404, 401, not a feed)."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        self.retryable = retryable
        super().__init__(message)


class FetchRejected(SourceError):
    """The fetch layer refused a response; ``reason`` is a short machine-readable word
    (``max_bytes``, ``encoding``, ``deadline``, ``blocked_address``, ``scheme``,
    ``too_many_redirects``, ``xml_entities``, ``http_status``, ``parse_budget``)."""

    def __init__(self, reason: str, message: str, *, retryable: bool = True) -> None:
        self.reason = reason
        super().__init__(f"{message} (reason={reason})", retryable=retryable)


class NotifyError(MonitorError):
    """A send failed.

    ``retryable``: a later attempt may succeed (429, 5xx, connection errors).
    ``retry_after``: seconds the destination asked us to wait, if it said so.
    ``ambiguous``: the destination may have accepted the message although we saw no reply.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        ambiguous: bool = False,
    ) -> None:
        self.retryable = retryable
        self.retry_after = retry_after
        self.ambiguous = ambiguous
        super().__init__(message)


class ServiceUnavailable(MonitorError):
    """A required queue or store cannot be reached."""


class StoreError(ServiceUnavailable):
    """A storage operation failed: the one type SQLite's and psycopg's operational errors
    become at the store's edge (``monitor.sqlite_util``, ``monitor.store.postgres``).

    A ServiceUnavailable, because that is what it means to the caller: the data cannot be
    recorded now, so a command exits 3 and the daemon's health says ``failing``; the loops
    keep their schedule and try again. Errors that are bugs (a constraint or a malformed
    statement) are not translated: they stay crashes with a traceback.
    """
