"""One logging setup for monitor and the libraries it uses, configured once at start-up.

Text lines are ``time level logger event key=value ...`` so an operator can grep them and a
test can assert on them. ``log.format: json`` (or ``MONITOR_LOG_FORMAT=json``, which wins)
writes one JSON object a line instead, for log shippers::

    {"time": "2026-12-02T06:28:51.042Z", "level": "WARNING", "logger": "monitor.notify",
     "event": "alert_retry", "message": "alert_retry alert_id=a1 ... error='HTTP 500' ...",
     "fields": {"alert_id": "a1", ..., "error": "HTTP 500"}}

``event`` and ``fields`` come from our message convention ``event key=value key='quoted'
...: free text``; a library's record has ``"event": null`` and no ``fields``. A traceback is
the string ``exception``, never a second line. Slack secrets are redacted by a filter on the
handler before either formatter runs, and the JSON formatter redacts every value it writes.

JSON comes from python-json-logger (``pythonjsonlogger.json.JsonFormatter``): every module
here and every library we use logs through stdlib ``logging`` with ``event key=value``
messages, so swapping the handler's formatter is the smallest change; structlog would add a
second logging API and a processor chain that we would only use to render stdlib records.
"""

from __future__ import annotations

import ast
import logging
import os
import re
import sys
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from pythonjsonlogger.json import JsonEncoder
from pythonjsonlogger.json import JsonFormatter as _LibJsonFormatter

from monitor.notify.redact import SDK_LOGGER_NAME, install_redaction, redact

FORMAT_ENV = "MONITOR_LOG_FORMAT"
FORMATS = ("text", "json")

# Our messages: ``event key=value key='repr' key=[list] ...: free text``.
_FIRST_WORD = re.compile(r"\s*(\S*)")
_QUOTED = r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\""
_PAIR = re.compile(
    rf"""\s+(?P<key>[A-Za-z_][A-Za-z0-9_.-]*)=
    (?:(?P<quoted>{_QUOTED})
      |(?P<bracketed>\[(?:[^\[\]'"]|{_QUOTED})*\]|\{{(?:[^{{}}'"]|{_QUOTED})*\}})
      |(?P<bare>\S*?))
    (?P<colon>:?)(?=\s|$)""",
    re.VERBOSE | re.DOTALL,
)


def _utc_seconds(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))


class _UtcFormatter(logging.Formatter):
    """UTC with a ``Z`` so lines from hosts in different time zones sort and compare."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _utc_seconds(record) + "Z"


def parse_message(message: str) -> tuple[str, dict[str, str]]:
    """Split one of our messages into its event and its ``key=value`` fields.

    Pairs are read left to right and stop at the first word that is not one, or after a
    value followed by ``:`` (the free text starts there), so ``key=value`` text inside the
    free part is never taken for a field. Quoted values are unquoted as Python's ``repr``
    quoted them; lists and dicts (``names=['a', 'b']``) stay as their text.
    """
    first = _FIRST_WORD.match(message)
    word = first.group(1) if first else ""
    event = word.rstrip(":")
    fields: dict[str, str] = {}
    pos = first.end() if first and not word.endswith(":") else len(message)
    while (pair := _PAIR.match(message, pos)) is not None:
        fields[pair["key"]] = _unquote(pair["quoted"]) if pair["quoted"] else (
            pair["bracketed"] or pair["bare"] or ""
        )
        pos = pair.end()
        if pair["colon"]:
            break
    return event, fields


def _unquote(literal: str) -> str:
    try:
        value = ast.literal_eval(literal)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return literal[1:-1]
    return value if isinstance(value, str) else literal[1:-1]


def _is_ours(logger_name: str) -> bool:
    """Only monitor's own loggers follow the ``event key=value`` convention; the SDK logs
    under a monitor name (SDK_LOGGER_NAME) but in its own words."""
    if logger_name == SDK_LOGGER_NAME or logger_name.startswith(SDK_LOGGER_NAME + "."):
        return False
    return logger_name == "monitor" or logger_name.startswith("monitor.")


class JsonFormatter(_LibJsonFormatter):
    """One JSON object a line: ``time``, ``level``, ``logger``, ``event``, ``message``,
    ``fields`` (ours only), then ``exception``/``stack`` and any ``extra=`` attributes.

    Every string written is passed through ``redact`` again: the handler's RedactingFilter
    has already cleaned the record, but this formatter renders the traceback from
    ``exc_info`` itself and serialises extras of any type, so it must not depend on a
    filter having run.
    """

    def __init__(self) -> None:
        super().__init__(rename_fields={"exc_info": "exception", "stack_info": "stack"})
        self._encoder = JsonEncoder()

    def add_fields(
        self,
        log_data: dict[str, Any],
        record: logging.LogRecord,
        message_dict: dict[str, Any],
    ) -> None:
        message = str(getattr(record, "message", ""))
        log_data["time"] = f"{_utc_seconds(record)}.{int(record.msecs):03d}Z"
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        event, fields = parse_message(message) if _is_ours(record.name) else (None, None)
        log_data["event"] = event
        log_data["message"] = message
        if fields is not None:
            log_data["fields"] = fields
        rest: dict[str, Any] = {}
        super().add_fields(rest, record, message_dict)
        for key, value in rest.items():  # an extra= attribute never hides a core field
            log_data.setdefault(key, value)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        cleaned = self._clean(log_data)
        return cleaned if isinstance(cleaned, dict) else log_data

    def _clean(self, value: Any, depth: int = 0) -> Any:
        if value is None or isinstance(value, (bool, int, float)):
            return value
        if isinstance(value, str):
            return redact(value)
        if depth > 20:  # a self-referencing extra: give up on structure, keep it safe
            return redact(repr(value))
        if isinstance(value, dict):
            return {str(k): self._clean(v, depth + 1) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._clean(v, depth + 1) for v in value]
        try:
            encoded = self._encoder.default(value)
        except Exception:  # an unencodable extra must not lose the record
            encoded = f"<unencodable {type(value).__name__}>"
        if isinstance(encoded, (dict, list, tuple)):
            return self._clean(encoded, depth + 1)
        return redact(str(encoded))


def choose_format(configured: str, environ: Mapping[str, str] | None = None) -> str:
    """The format to use: ``MONITOR_LOG_FORMAT`` when it names one, else ``configured``.

    The environment wins so an operator (or a container platform) can switch a deployed
    config to JSON without editing it.
    """
    env = os.environ if environ is None else environ
    wanted = (env.get(FORMAT_ENV) or "").strip().lower()
    return wanted if wanted in FORMATS else configured


def _log_uncaught(
    kind: type[BaseException], value: BaseException, tb: TracebackType | None
) -> None:
    """A crash in JSON mode is one more parseable line (a log shipper would otherwise split
    the traceback into one record per line); Ctrl-C keeps Python's own short report."""
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, tb)
        return
    logging.getLogger("monitor").critical(
        "crashed error=%r", f"{kind.__name__}: {value}", exc_info=(kind, value, tb)
    )


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Route every logger to one stderr handler, in ``fmt`` unless the environment says
    otherwise, with Slack secrets redacted and library chatter kept down.

    The Slack SDK logs under SDK_LOGGER_NAME: at DEBUG its request/response lines stay
    (redacted, and with its own errors demoted to DEBUG, see ``redact.SdkDemotingFilter``);
    at any other level that logger is closed, which also spares the SDK building those
    lines. Either way a failed send is one line, the outbox's.
    """
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {FORMATS}, not {fmt!r}")
    chosen = choose_format(fmt)
    handler = logging.StreamHandler(sys.stderr)
    if chosen == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(_UtcFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("apscheduler", "urllib3", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # kafka-python logs every refused reconnect at ERROR (with tracebacks) while a broker is
    # down; the queue says so once itself (storage_failing / storage_recovered).
    logging.getLogger("kafka").setLevel(logging.NOTSET if root.level <= logging.DEBUG
                                        else logging.CRITICAL)
    # Our clients log through SDK_LOGGER_NAME; the slack_sdk modules' own loggers stay shut.
    logging.getLogger("slack_sdk").setLevel(logging.CRITICAL)
    debug = root.level <= logging.DEBUG
    logging.getLogger(SDK_LOGGER_NAME).setLevel(logging.NOTSET if debug else logging.CRITICAL)
    install_redaction()
    # In JSON mode every stderr line must parse: warnings and a crash become records too.
    logging.captureWarnings(chosen == "json")
    if chosen == "json":
        sys.excepthook = _log_uncaught
    unknown = (os.environ.get(FORMAT_ENV) or "").strip()
    if unknown and unknown.lower() not in FORMATS:
        logging.getLogger("monitor").warning(
            "log_format_ignored %s=%r: expected one of %s; using %s",
            FORMAT_ENV, unknown, "/".join(FORMATS), chosen,
        )
