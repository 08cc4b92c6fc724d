"""The schema of monitor before versioned migrations (tables frozen in ``baseline.py``).

Revision ID: 0001
Revises: (none)
"""

from alembic import op

from monitor.store.migrations import baseline

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    baseline.create(op.get_bind())


def downgrade() -> None:
    baseline.metadata(op.get_bind().dialect.name).drop_all(op.get_bind())
