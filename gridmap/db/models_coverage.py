"""Contacts with key people and checkpoint duty rosters (issue 5): the tables of migration 0005.

Same conventions as gridmap.db.models: singular table names, integer ``id``, parents as
``<parent>_id``, times with time zone. Import this module wherever these tables must be in
``Base.metadata`` (the coverage services and their tests do).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from gridmap.db.models import Base
from gridmap.domain.coverage import CONTACT_METHODS


class ContactLog(Base):
    """One contact with a key person (004 §8: vulnerable people twice a week, their situation logged)."""

    __tablename__ = "contact_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    key_person_id: Mapped[int] = mapped_column(ForeignKey("key_person.id", ondelete="CASCADE"))
    # Who made the contact; kept when the staff row goes, as history.
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"), index=True)
    contacted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    method: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(Text, default="", server_default="")
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint(
            "method IN (" + ", ".join(f"'{m}'" for m in CONTACT_METHODS) + ")", name="contact_log_method"
        ),
        Index("ix_contact_log_key_person_id_contacted_at", "key_person_id", "contacted_at"),
    )


class DutyShift(Base):
    """A staff member rostered at a checkpoint from ``starts_at`` to ``ends_at`` (001: 全天候有人值守)."""

    __tablename__ = "duty_shift"
    id: Mapped[int] = mapped_column(primary_key=True)
    checkpoint_id: Mapped[int] = mapped_column(ForeignKey("checkpoint.id", ondelete="CASCADE"))
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="duty_shift_period"),
        Index("ix_duty_shift_checkpoint_id_starts_at", "checkpoint_id", "starts_at"),
    )
