"""Source leases: ``source_state.lease_until`` / ``lease_holder``. Before each poll a
poller takes the source's lease with one conditional statement (``take_poll_lease``), so
several ``monitor run --role poll`` instances sharing one PostgreSQL store poll each source
once per interval; a poller that dies hands its sources on when its leases expire.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql, sqlite

revision = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None



def upgrade() -> None:
    lite = op.get_bind().dialect.name == "sqlite"
    time: sa.types.TypeEngine[float] = sqlite.REAL() if lite else postgresql.DOUBLE_PRECISION()
    with op.batch_alter_table("source_state") as batch:
        batch.add_column(sa.Column("lease_until", time))
        batch.add_column(sa.Column("lease_holder", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("source_state") as batch:
        batch.drop_column("lease_holder")
        batch.drop_column("lease_until")
