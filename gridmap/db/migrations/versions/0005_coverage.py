"""coverage: contact log with key people, checkpoint duty rosters

``contact_log`` records each contact with a key person (004 §8: vulnerable people at least twice a
week); ``duty_shift`` rosters staff at checkpoints (001: duty around the clock). Both are read per
person or per checkpoint and time, hence the two composite indexes. Models:
gridmap.db.models_coverage.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Written out, not imported: a migration must not change when the code's constants do.
CONTACT_METHODS = ("visit", "phone", "wechat")


def upgrade() -> None:
    op.create_table(
        "contact_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_person_id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("contacted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.Text(), server_default="", nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "method IN (" + ", ".join(f"'{m}'" for m in CONTACT_METHODS) + ")", name="contact_log_method"
        ),
        sa.ForeignKeyConstraint(["key_person_id"], ["key_person.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_contact_log_key_person_id_contacted_at", "contact_log", ["key_person_id", "contacted_at"])
    op.create_index("ix_contact_log_staff_id", "contact_log", ["staff_id"])

    op.create_table(
        "duty_shift",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("checkpoint_id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("ends_at > starts_at", name="duty_shift_period"),
        sa.ForeignKeyConstraint(["checkpoint_id"], ["checkpoint.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_duty_shift_checkpoint_id_starts_at", "duty_shift", ["checkpoint_id", "starts_at"])
    op.create_index("ix_duty_shift_staff_id", "duty_shift", ["staff_id"])


def downgrade() -> None:
    op.drop_table("duty_shift")
    op.drop_table("contact_log")
