"""The store's tables as the code reads and writes them (the schema at ``schema.HEAD``),
and the two SQL functions that SQLite and PostgreSQL spell differently.

This describes the current schema for the queries; it never creates anything. Tables
are created and changed only by the migrations (``monitor/store/migrations``), which are
frozen history: a change here needs a new revision there, and
``tests/test_migrations.py`` fails when the two drift apart.

One type per column serves both databases (``with_variant``): JSON documents are TEXT in
SQLite and JSONB in PostgreSQL, times are REAL / DOUBLE PRECISION (epoch seconds), flags
INTEGER 0/1 / BOOLEAN.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement, ReturnTypeFromArgs

TIME: sa.types.TypeEngine[float] = sa.Double().with_variant(sqlite.REAL(), "sqlite")
DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
FLAG = sa.Boolean(create_constraint=False)

metadata = sa.MetaData()


def _zero() -> sa.TextClause:
    return sa.text("0")


source_state = sa.Table(
    "source_state", metadata,
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("cursor", DOC, nullable=False, server_default=sa.text("'{}'")),
    sa.Column("last_poll", TIME),
    sa.Column("last_success", TIME),
    sa.Column("last_error", sa.Text),
    sa.Column("failures", sa.Integer, nullable=False, server_default=_zero()),
    sa.Column("items_total", BIG, nullable=False, server_default=_zero()),
    sa.Column("items_last", sa.Integer, nullable=False, server_default=_zero()),
    sa.Column("next_poll", TIME),
    sa.Column("note", sa.Text),
    sa.Column("primed_at", TIME),
    sa.Column("primed_items", sa.Integer, nullable=False, server_default=_zero()),
    sa.Column("primed_alerted", sa.Integer, nullable=False, server_default=_zero()),
    sa.Column("primed_backfill", sa.Text),
    sa.Column("lease_until", TIME),  # a poller's lease on the source (take_poll_lease)
    sa.Column("lease_holder", sa.Text),
)

seen = sa.Table(
    "seen", metadata,
    sa.Column("identity", sa.Text, primary_key=True),
    sa.Column("item_key", sa.Text, nullable=False),
    sa.Column("first_seen", TIME, nullable=False),
)

items = sa.Table(
    "items", metadata,
    sa.Column("item_key", sa.Text, primary_key=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("payload", DOC, nullable=False),
    sa.Column("seen_at", TIME, nullable=False),
    sa.Index("items_seen_at", "seen_at"),
)

alerts = sa.Table(
    "alerts", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("watchlist", sa.Text, nullable=False),
    sa.Column("payload", DOC, nullable=False),
    sa.Column("created_at", TIME, nullable=False),
    sa.Index("alerts_created_at", "created_at"),  # revision 0002
)

deliveries = sa.Table(
    "deliveries", metadata,
    # A foreign key in PostgreSQL only (as before versioned migrations): SQLite does not
    # enforce one unless asked, and the store never deletes an alert.
    sa.Column("alert_id", sa.Text, primary_key=True),
    sa.Column("destination", sa.Text, primary_key=True),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default=_zero()),
    sa.Column("next_at", TIME, nullable=False),
    sa.Column("lease_until", TIME),
    sa.Column("lease_token", sa.Text),
    sa.Column("ambiguous", FLAG, nullable=False, server_default=sa.false()),
    sa.Column("last_error", sa.Text),
    sa.Column("ref", sa.Text),
    sa.Column("reconciled", FLAG, nullable=False, server_default=sa.false()),
    sa.Column("created_at", TIME, nullable=False),
    sa.Column("updated_at", TIME, nullable=False),
    sa.Index("deliveries_due", "state", "next_at"),
)

destination_pause = sa.Table(
    "destination_pause", metadata,
    sa.Column("destination", sa.Text, primary_key=True),
    sa.Column("until", TIME, nullable=False),
)

destination_state = sa.Table(
    "destination_state", metadata,
    sa.Column("destination", sa.Text, primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False, server_default=_zero()),
    sa.Column("last_error", sa.Text),
    sa.Column("last_failure", TIME),
    sa.Column("last_success", TIME),
)

# The pair id shared with the queue (monitor.datadir): a store and a queue that do not
# belong together are refused at start instead of losing or re-alerting items.
meta = sa.Table(
    "meta", metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


# --- what the two dialects spell differently ----------------------------------------------
class greatest(ReturnTypeFromArgs[Any]):  # named like the SQL function
    """The largest argument: ``GREATEST`` in PostgreSQL, the scalar ``max`` in SQLite."""

    inherit_cache = True


@compiles(greatest, "sqlite")
def _greatest_sqlite(element: greatest, compiler: SQLCompiler, **kw: Any) -> str:
    return f"max({compiler.process(element.clauses, **kw)})"


class with_created_at(FunctionElement[Any]):  # named like a SQL function
    """The JSON document ``doc`` with its top-level ``created_at`` set to the number
    ``value`` (``alerts retry`` gives a revived alert a fresh age)."""

    type = DOC
    inherit_cache = True

    def __init__(self, doc: Any, value: Any) -> None:
        super().__init__(doc, sa.cast(value, sa.Double))


@compiles(with_created_at, "sqlite")
def _with_created_at_sqlite(element: with_created_at, compiler: SQLCompiler, **kw: Any) -> str:
    doc, value = (compiler.process(c, **kw) for c in element.clauses)
    return f"json_set({doc}, '$.created_at', {value})"


@compiles(with_created_at, "postgresql")
def _with_created_at_postgres(element: with_created_at, compiler: SQLCompiler,
                              **kw: Any) -> str:
    doc, value = (compiler.process(c, **kw) for c in element.clauses)
    return f"jsonb_set({doc}, '{{created_at}}', to_jsonb({value}))"
