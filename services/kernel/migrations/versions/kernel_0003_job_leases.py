"""Job leases: the runner that claimed a job (`owner`) and until when its claim holds (`lease_until`).

Two runners on one store (two replicas of a service on PostgreSQL) never run one job: a running
job is taken over only once its owner's lease has expired.

Revision ID: kernel_0003
Revises: kernel_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "kernel_0003"
down_revision = "kernel_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tuneline_jobs") as batch:
        batch.add_column(sa.Column("owner", sa.String(200), nullable=False, server_default=""))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tuneline_jobs") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("owner")
