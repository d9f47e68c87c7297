"""Tasks on the map and daily reports (issue 6): the tables of migration 0006.

Same conventions as gridmap.db.models: singular table names, integer ``id``, geometry in EPSG:4326
in ``geom`` with a GiST index, parents as ``<parent>_id``. Task types are rows (seeded by the
migration), not code. Every action on a task or item is kept in ``task_history`` (HOT Tasking
Manager's pattern); locks carry the time they run out (``locked_until``) instead of being cleared.
"""

from __future__ import annotations

from datetime import date, datetime

from geoalchemy2 import Geometry, WKBElement
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gridmap.db.models import SRID, Base
from gridmap.domain.reports import REPORT_KINDS
from gridmap.domain.tasks import ITEM_LEVELS, ITEM_STATES, TASK_STATUSES


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


class TaskType(Base):
    """A kind of task (敲门行动, 健康爱心包, ...), as data."""

    __tablename__ = "task_type"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(96))
    # One item per 'building' or per 'household'.
    item_level: Mapped[str] = mapped_column(String(16))
    default_due_hours: Mapped[int] = mapped_column(Integer)
    # Who is proposed for an item, tried in order: volunteer, building_leader, grid_leader, nearest.
    assignee_order: Mapped[list] = mapped_column(JSONB)
    # e.g. {"every": "week", "who": "vulnerable_key_person", "times_setting": "vulnerable_contacts_per_week"}
    recurring: Mapped[dict | None] = mapped_column(JSONB)
    sort_order: Mapped[int] = mapped_column(SmallInteger, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    __table_args__ = (
        CheckConstraint(_in("item_level", ITEM_LEVELS), name="task_type_item_level"),
        CheckConstraint("default_due_hours > 0", name="task_type_due_positive"),
    )


class Task(Base):
    __tablename__ = "task"
    id: Mapped[int] = mapped_column(primary_key=True)
    task_type_id: Mapped[int] = mapped_column(ForeignKey("task_type.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # What was selected: {"kind": "grid", "grid_id": 3}, {"kind": "buildings", "building_ids": [...]}, ...
    selection: Mapped[dict] = mapped_column(JSONB)
    # Set for generated tasks (contact rounds): one task per type, week and community.
    recurrence_key: Mapped[str | None] = mapped_column(String(96), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="open")
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)
    geom: Mapped[WKBElement | None] = mapped_column(
        Geometry("MULTIPOLYGON", srid=SRID, spatial_index=True), nullable=True
    )

    __table_args__ = (CheckConstraint(_in("status", TASK_STATUSES), name="task_status"),)


class TaskItem(Base):
    """One building or household of a task; household items carry their building too."""

    __tablename__ = "task_item"
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("task.id", ondelete="CASCADE"), index=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("building.id", ondelete="CASCADE"), index=True)
    household_id: Mapped[int | None] = mapped_column(ForeignKey("household.id", ondelete="CASCADE"), index=True)
    # The person an item is about, when it is about one person (contact rounds).
    key_person_id: Mapped[int | None] = mapped_column(ForeignKey("key_person.id", ondelete="CASCADE"), index=True)
    assigned_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"), index=True)
    # volunteer / building_leader / grid_leader / nearest / manual
    assignment_source: Mapped[str | None] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="open")
    locked_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    note: Mapped[str | None] = mapped_column(Text)
    done_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    validated_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    validated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)
    geom: Mapped[WKBElement] = mapped_column(Geometry("POINT", srid=SRID, spatial_index=True))

    __table_args__ = (
        CheckConstraint(_in("state", ITEM_STATES), name="task_item_state"),
        CheckConstraint("state <> 'locked' OR locked_until IS NOT NULL", name="task_item_lock_has_end"),
        CheckConstraint("key_person_id IS NULL OR household_id IS NOT NULL", name="task_item_person_household"),
        # A generated contact round holds one item per person and due time (idempotent reruns).
        Index(
            "task_item_person_due", "task_id", "key_person_id", "due_at", unique=True,
            postgresql_where=text("key_person_id IS NOT NULL"),
        ),
        # The overdue and progress queries look at unfinished items by due time.
        Index("ix_task_item_unfinished_due", "due_at",
              postgresql_where=text("state IN ('open', 'locked', 'invalidated')")),
    )


class TaskHistory(Base):
    """Every action on a task or item, never updated or deleted by the app."""

    __tablename__ = "task_history"
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("task.id", ondelete="CASCADE"), index=True)
    task_item_id: Mapped[int | None] = mapped_column(ForeignKey("task_item.id", ondelete="CASCADE"), index=True)
    # created, items_added, locked, released, done, failed, validated, invalidated, reassigned, closed
    action: Mapped[str] = mapped_column(String(24))
    actor: Mapped[str] = mapped_column(String(64))
    actor_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    details: Mapped[dict | None] = mapped_column(JSONB)


class DailyReport(Base):
    """One filing of a community's daily, zero or emergency report; amendments add versions."""

    __tablename__ = "daily_report"
    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id", ondelete="CASCADE"), index=True)
    report_date: Mapped[date] = mapped_column(Date, index=True)
    # 1 = first filing of the day's report, 2.. amendments; emergency reports are numbered apart.
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    new_cases: Mapped[int] = mapped_column(Integer, default=0)
    under_observation: Mapped[int] = mapped_column(Integer, default=0)
    contacts_done: Mapped[int] = mapped_column(Integer, default=0)
    tasks_done: Mapped[int] = mapped_column(Integer, default=0)
    supply_problems: Mapped[str] = mapped_column(Text, default="")
    staffing_problems: Mapped[str] = mapped_column(Text, default="")
    free_text: Mapped[str] = mapped_column(Text, default="")
    filed_by: Mapped[str] = mapped_column(String(64))
    filed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    responsible_name: Mapped[str | None] = mapped_column(String(64))
    responsible_phone: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        CheckConstraint(_in("kind", REPORT_KINDS), name="daily_report_kind"),
        CheckConstraint(
            "new_cases >= 0 AND under_observation >= 0 AND contacts_done >= 0 AND tasks_done >= 0",
            name="daily_report_counts_nonnegative",
        ),
        CheckConstraint("kind <> 'zero' OR new_cases = 0", name="daily_report_zero_no_cases"),
        CheckConstraint("version >= 1", name="daily_report_version_positive"),
        Index(
            "daily_report_version", "community_id", "report_date", "version", unique=True,
            postgresql_where=text("kind <> 'emergency'"),
        ),
        Index(
            "daily_report_emergency_number", "community_id", "report_date", "version", unique=True,
            postgresql_where=text("kind = 'emergency'"),
        ),
    )
