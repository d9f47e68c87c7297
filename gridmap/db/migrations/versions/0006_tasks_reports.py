"""tasks on the map (task_type, task, task_item, task_history) and daily / zero reports

Task types are seeded here as data (DOMAIN.md 'Tasking'); a command room may add its own rows.
Written by hand: literals, not imports from the package, so this revision stays what it was.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""
import json

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BUILDING_ORDER = ["building_leader", "grid_leader", "nearest"]
HOUSEHOLD_ORDER = ["volunteer", "building_leader", "grid_leader", "nearest"]

# code, name_zh, name_en, item_level, default_due_hours, assignee_order, recurring
TASK_TYPES = (
    ("door_knock", "敲门行动", "Door-knock campaign", "household", 24, HOUSEHOLD_ORDER, None),
    ("health_pack", "健康爱心包", "Health care pack", "household", 48, HOUSEHOLD_ORDER, None),
    ("sealed_delivery", "封控楼栋物资配送", "Delivery to sealed buildings", "household", 12, HOUSEHOLD_ORDER, None),
    # 004 §8: vulnerable people contacted at least twice a week; generated weekly, per person.
    ("contact_round", "联系走访", "Household contact round", "household", 72,
     ["volunteer", "grid_leader", "nearest"],
     {"every": "week", "who": "vulnerable_key_person", "times_setting": "vulnerable_contacts_per_week"}),
    ("disinfection", "消杀", "Disinfection round", "building", 24, BUILDING_ORDER, None),
    ("recovered_visit", "康复者回访", "Return visit to recovered patients", "household", 72, HOUSEHOLD_ORDER, None),
    ("testing_drill", "核酸检测演练", "Testing drill", "building", 24, BUILDING_ORDER, None),
)


def _geometry(kind: str, nullable: bool) -> Geometry:
    return Geometry(geometry_type=kind, srid=4326, dimension=2, spatial_index=False, nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "task_type",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name_zh", sa.String(length=64), nullable=False),
        sa.Column("name_en", sa.String(length=96), nullable=False),
        sa.Column("item_level", sa.String(length=16), nullable=False),
        sa.Column("default_due_hours", sa.Integer(), nullable=False),
        sa.Column("assignee_order", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("recurring", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("sort_order", sa.SmallInteger(), nullable=False, server_default="0"),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.CheckConstraint("item_level IN ('building', 'household')", name="task_type_item_level"),
        sa.CheckConstraint("default_due_hours > 0", name="task_type_due_positive"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )

    op.create_table(
        "task",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_type_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("selection", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("recurrence_key", sa.String(length=96), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False, server_default="open"),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("geom", _geometry("MULTIPOLYGON", True), nullable=True),
        sa.CheckConstraint("status IN ('open', 'closed')", name="task_status"),
        sa.ForeignKeyConstraint(["task_type_id"], ["task_type.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("recurrence_key"),
    )
    op.create_index("idx_task_geom", "task", ["geom"], postgresql_using="gist")
    op.create_index("ix_task_task_type_id", "task", ["task_type_id"])

    op.create_table(
        "task_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("building_id", sa.Integer(), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=True),
        sa.Column("key_person_id", sa.Integer(), nullable=True),
        sa.Column("assigned_staff_id", sa.Integer(), nullable=True),
        sa.Column("assignment_source", sa.String(length=16), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False, server_default="open"),
        sa.Column("locked_by", sa.Integer(), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("done_by", sa.Integer(), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("validated_by", sa.Integer(), nullable=True),
        sa.Column("validated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("geom", _geometry("POINT", False), nullable=False),
        sa.CheckConstraint(
            "state IN ('open', 'locked', 'done', 'failed', 'validated', 'invalidated')", name="task_item_state"
        ),
        sa.CheckConstraint("state <> 'locked' OR locked_until IS NOT NULL", name="task_item_lock_has_end"),
        sa.CheckConstraint("key_person_id IS NULL OR household_id IS NOT NULL", name="task_item_person_household"),
        sa.ForeignKeyConstraint(["task_id"], ["task.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["building_id"], ["building.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["household_id"], ["household.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["key_person_id"], ["key_person.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["assigned_staff_id"], ["staff.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["locked_by"], ["staff.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["done_by"], ["staff.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["validated_by"], ["staff.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("idx_task_item_geom", "task_item", ["geom"], postgresql_using="gist")
    for column in ("task_id", "building_id", "household_id", "key_person_id", "assigned_staff_id"):
        op.create_index(f"ix_task_item_{column}", "task_item", [column])
    op.create_index(
        "task_item_person_due", "task_item", ["task_id", "key_person_id", "due_at"], unique=True,
        postgresql_where=sa.text("key_person_id IS NOT NULL"),
    )
    # The overdue and progress queries look at unfinished items by due time.
    op.create_index(
        "ix_task_item_unfinished_due", "task_item", ["due_at"],
        postgresql_where=sa.text("state IN ('open', 'locked', 'invalidated')"),
    )

    op.create_table(
        "task_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("task_item_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=24), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("actor_staff_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.ForeignKeyConstraint(["task_id"], ["task.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["task_item_id"], ["task_item.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["actor_staff_id"], ["staff.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_task_history_task_id", "task_history", ["task_id"])
    op.create_index("ix_task_history_task_item_id", "task_history", ["task_item_id"])

    op.create_table(
        "daily_report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("report_date", sa.Date(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("new_cases", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("under_observation", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("contacts_done", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("tasks_done", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("supply_problems", sa.Text(), nullable=False, server_default=""),
        sa.Column("staffing_problems", sa.Text(), nullable=False, server_default=""),
        sa.Column("free_text", sa.Text(), nullable=False, server_default=""),
        sa.Column("filed_by", sa.String(length=64), nullable=False),
        sa.Column("filed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("responsible_name", sa.String(length=64), nullable=True),
        sa.Column("responsible_phone", sa.String(length=32), nullable=True),
        sa.CheckConstraint("kind IN ('normal', 'zero', 'emergency')", name="daily_report_kind"),
        sa.CheckConstraint(
            "new_cases >= 0 AND under_observation >= 0 AND contacts_done >= 0 AND tasks_done >= 0",
            name="daily_report_counts_nonnegative",
        ),
        sa.CheckConstraint("kind <> 'zero' OR new_cases = 0", name="daily_report_zero_no_cases"),
        sa.CheckConstraint("version >= 1", name="daily_report_version_positive"),
        sa.ForeignKeyConstraint(["community_id"], ["community.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_daily_report_community_id", "daily_report", ["community_id"])
    op.create_index("ix_daily_report_report_date", "daily_report", ["report_date"])
    op.create_index(
        "daily_report_version", "daily_report", ["community_id", "report_date", "version"], unique=True,
        postgresql_where=sa.text("kind <> 'emergency'"),
    )
    op.create_index(
        "daily_report_emergency_number", "daily_report", ["community_id", "report_date", "version"], unique=True,
        postgresql_where=sa.text("kind = 'emergency'"),
    )

    conn = op.get_bind()
    for order, (code, zh, en, level, hours, assignees, recurring) in enumerate(TASK_TYPES):
        conn.execute(
            sa.text(
                "INSERT INTO task_type (code, name_zh, name_en, item_level, default_due_hours, assignee_order,"
                " recurring, sort_order, active)"
                " VALUES (:code, :zh, :en, :level, :hours, CAST(:order AS jsonb), CAST(:rec AS jsonb), :sort, true)"
                " ON CONFLICT (code) DO NOTHING"
            ),
            {"code": code, "zh": zh, "en": en, "level": level, "hours": hours, "order": json.dumps(assignees),
             "rec": json.dumps(recurring) if recurring else None, "sort": order},
        )


def downgrade() -> None:
    op.drop_table("daily_report")
    op.drop_table("task_history")
    op.drop_table("task_item")
    op.drop_table("task")
    op.drop_table("task_type")
