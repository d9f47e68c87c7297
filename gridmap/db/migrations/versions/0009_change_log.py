"""change_log: one row per writing statement, so every app worker and every open screen can tell
that the data changed, whichever process wrote it

A statement-level trigger on each table a screen shows appends (table, time). Readers poll
``max(id)``: a row becomes visible only when its transaction commits, so a screen never refetches
before the change is there to see (a sequence's last_value would be). No row is updated, so
writers never wait on each other; ``gridmap.services.changes.prune`` keeps the table short.
Each insert also sends NOTIFY gridmap_change, for listeners that prefer to be woken.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

WATCHED = (
    "district", "subdistrict", "community", "grid", "compound", "gate", "building", "household",
    "key_person", "key_person_category_link", "staff", "staff_assignment", "risk_assignment",
    "controlled_area", "checkpoint", "service_point", "contact_log", "duty_shift", "task", "task_item",
    "daily_report",
)


def upgrade() -> None:
    op.create_table(
        "change_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), primary_key=True),
        sa.Column("table_name", sa.Text(), nullable=False),
        sa.Column("operation", sa.Text(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), server_default=sa.text("clock_timestamp()"),
                  nullable=False),
    )
    op.execute(
        """
        CREATE FUNCTION gridmap_log_change() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE new_id bigint;
        BEGIN
          INSERT INTO change_log (table_name, operation) VALUES (TG_TABLE_NAME, TG_OP) RETURNING id INTO new_id;
          PERFORM pg_notify('gridmap_change', TG_TABLE_NAME || ':' || new_id);
          RETURN NULL;
        END $$;
        """
    )
    for table in WATCHED:
        op.execute(
            f"CREATE TRIGGER {table}_change_log AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION gridmap_log_change()"
        )


def downgrade() -> None:
    for table in WATCHED:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_change_log ON {table}")
    op.execute("DROP FUNCTION IF EXISTS gridmap_log_change()")
    op.drop_table("change_log")
