"""An index on alerts.created_at: ``db recover`` reads the 50 newest alerts to find where
matching stopped (``last_matched_seen_at``), which without it sorts every alert ever
stored.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("alerts_created_at", "alerts", ["created_at"])


def downgrade() -> None:
    op.drop_index("alerts_created_at", table_name="alerts")
