"""Revision 0001, frozen: the schema as monitor made it before versioned migrations.

Until then each store created its tables with ``CREATE TABLE IF NOT EXISTS`` and added
newer columns in place when it opened, so a database of that time holds some prefix of
this schema: the first release had no ``destination_state``, no ``meta`` and none of the
``source_state`` columns after ``items_total``. ``adopt`` completes such a database to
exactly this schema before it is stamped 0001, which is what opening it with the last
unversioned release would have done.

The types are spelled per database, as the old DDL did: TEXT / JSONB documents, REAL /
DOUBLE PRECISION times, INTEGER / BOOLEAN flags, and a foreign key from deliveries to
alerts in PostgreSQL only.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

REVISION = "0001"


def metadata(dialect: str) -> sa.MetaData:
    """The baseline's tables for ``dialect`` (``sqlite`` or ``postgresql``)."""
    lite = dialect == "sqlite"
    time: sa.types.TypeEngine[float] = sqlite.REAL() if lite else postgresql.DOUBLE_PRECISION()
    doc = sa.Text() if lite else postgresql.JSONB()
    big = sa.Integer() if lite else sa.BigInteger()
    flag = sa.Integer() if lite else sa.Boolean(create_constraint=False)
    zero, false = sa.text("0"), sa.text("0" if lite else "false")
    alert_ref = [] if lite else [sa.ForeignKey("alerts.id")]

    md = sa.MetaData()
    sa.Table(
        "source_state", md,
        sa.Column("source", sa.Text, primary_key=True),
        sa.Column("cursor", doc, nullable=False, server_default=sa.text("'{}'")),
        sa.Column("last_poll", time),
        sa.Column("last_success", time),
        sa.Column("last_error", sa.Text),
        sa.Column("failures", sa.Integer, nullable=False, server_default=zero),
        sa.Column("items_total", big, nullable=False, server_default=zero),
        # Added in place by the unversioned releases after the first:
        sa.Column("items_last", sa.Integer, nullable=False, server_default=zero),
        sa.Column("next_poll", time),
        sa.Column("note", sa.Text),
        sa.Column("primed_at", time),
        sa.Column("primed_items", sa.Integer, nullable=False, server_default=zero),
        sa.Column("primed_alerted", sa.Integer, nullable=False, server_default=zero),
        sa.Column("primed_backfill", sa.Text),
    )
    sa.Table(
        "seen", md,
        sa.Column("identity", sa.Text, primary_key=True),
        sa.Column("item_key", sa.Text, nullable=False),
        sa.Column("first_seen", time, nullable=False),
    )
    sa.Table(
        "items", md,
        sa.Column("item_key", sa.Text, primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("payload", doc, nullable=False),
        sa.Column("seen_at", time, nullable=False),
        sa.Index("items_seen_at", "seen_at"),
    )
    sa.Table(
        "alerts", md,
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("watchlist", sa.Text, nullable=False),
        sa.Column("payload", doc, nullable=False),
        sa.Column("created_at", time, nullable=False),
    )
    sa.Table(
        "deliveries", md,
        sa.Column("alert_id", sa.Text, *alert_ref, primary_key=True),
        sa.Column("destination", sa.Text, primary_key=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=zero),
        sa.Column("next_at", time, nullable=False),
        sa.Column("lease_until", time),
        sa.Column("lease_token", sa.Text),
        sa.Column("ambiguous", flag, nullable=False, server_default=false),
        sa.Column("last_error", sa.Text),
        sa.Column("ref", sa.Text),
        sa.Column("reconciled", flag, nullable=False, server_default=false),
        sa.Column("created_at", time, nullable=False),
        sa.Column("updated_at", time, nullable=False),
        sa.Index("deliveries_due", "state", "next_at"),
    )
    sa.Table(
        "destination_pause", md,
        sa.Column("destination", sa.Text, primary_key=True),
        sa.Column("until", time, nullable=False),
    )
    sa.Table(  # added in place by the second unversioned release
        "destination_state", md,
        sa.Column("destination", sa.Text, primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False, server_default=zero),
        sa.Column("last_error", sa.Text),
        sa.Column("last_failure", time),
        sa.Column("last_success", time),
    )
    sa.Table(  # added in place by the third: the pair id shared with the queue
        "meta", md,
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    return md


def create(conn: sa.Connection) -> None:
    """Create the baseline in an empty database."""
    metadata(conn.dialect.name).create_all(conn, checkfirst=False)


def adopt(conn: sa.Connection) -> list[str]:
    """Complete a database made before versioned migrations to the baseline: the tables,
    columns and indexes that its release did not have yet. Returns what was added."""
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    md = metadata(conn.dialect.name)
    inspector = sa.inspect(conn)
    have = set(inspector.get_table_names())
    op = Operations(MigrationContext.configure(conn))
    added: list[str] = []
    for table in md.sorted_tables:
        if table.name not in have:
            table.create(conn)
            added.append(f"table {table.name}")
            continue
        columns = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in columns:
                op.add_column(table.name, column._copy())
                added.append(f"column {table.name}.{column.name}")
        indexes = {i["name"] for i in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexes:
                index.create(conn)
                added.append(f"index {index.name}")
    return added
