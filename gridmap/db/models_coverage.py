"""Contacts with key people and checkpoint duty rosters (issue 5): the tables of migration 0005;
service coverage kept per grid and kind (issue 8): the tables of migration 0012; staff per grid
and role: those of 0013; distinct key persons per grid: those of 0014; the impact summary per
community: those of 0015.

Same conventions as gridmap.db.models: singular table names, integer ``id``, parents as
``<parent>_id``, times with time zone. Import this module wherever these tables must be in
``Base.metadata`` (the coverage services and their tests do).
"""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry, WKBElement
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    false,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

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


class GridServiceCoverage(Base):
    """Households of a grid within walking distance of a point of a kind (kept; see migration 0012)."""

    __tablename__ = "grid_service_coverage"
    grid_id: Mapped[int] = mapped_column(ForeignKey("grid.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    households_within: Mapped[int]

    __table_args__ = (CheckConstraint("households_within >= 0", name="grid_service_coverage_nonnegative"),)


class ServiceCoverageState(Base):
    """The distance and kinds the kept coverage was computed for (one row, id 1)."""

    __tablename__ = "service_coverage_state"
    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    distance_m: Mapped[float] = mapped_column(Float)
    kinds: Mapped[list[str]] = mapped_column(ARRAY(Text))
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (CheckConstraint("id = 1", name="service_coverage_state_one_row"),)


class ServiceCoverageDirty(Base):
    """What changed since the kept coverage was last repaired: a point of a kind (old or new
    position), a grid, or everything. Appended by triggers, deleted by the repair."""

    __tablename__ = "service_coverage_dirty"
    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    kind: Mapped[str | None] = mapped_column(String(32))
    geom: Mapped[WKBElement | None] = mapped_column(Geometry("GEOMETRY", srid=4326, spatial_index=False))
    grid_id: Mapped[int | None]
    everything: Mapped[bool] = mapped_column(Boolean, server_default=false())


class GridStaffCount(Base):
    """Active staff of a grid by role, through 包片联户 assignments (kept; see migration 0013)."""

    __tablename__ = "grid_staff_count"
    grid_id: Mapped[int] = mapped_column(ForeignKey("grid.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(32), primary_key=True)
    n: Mapped[int]

    __table_args__ = (CheckConstraint("n > 0", name="grid_staff_count_positive"),)


class _KeptState:
    """When a kept per-grid figure was last computed in full (one row, id 1; NULL: never)."""

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    computed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    @declared_attr.directive
    def __table_args__(cls) -> tuple:
        return (CheckConstraint("id = 1", name=f"{cls.__tablename__}_one_row"),)


class _GridDirtyLog:
    """Grids whose kept figure changed since the last repair, or everything. Appended by
    triggers, deleted by the repair."""

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    grid_id: Mapped[int | None]
    everything: Mapped[bool] = mapped_column(Boolean, server_default=false())


class StaffCountState(_KeptState, Base):
    """When the kept staff counts were last computed in full."""

    __tablename__ = "staff_count_state"


class StaffCountDirty(_GridDirtyLog, Base):
    """Grids whose staff counts changed since the last repair (migration 0013)."""

    __tablename__ = "staff_count_dirty"


class GridKeyPersonCount(Base):
    """Distinct key persons of a grid, through their household's building (kept; see migration 0014)."""

    __tablename__ = "grid_key_person_count"
    grid_id: Mapped[int] = mapped_column(ForeignKey("grid.id", ondelete="CASCADE"), primary_key=True)
    n: Mapped[int]

    __table_args__ = (CheckConstraint("n > 0", name="grid_key_person_count_positive"),)


class KeyPersonCountState(_KeptState, Base):
    """When the kept key person counts were last computed in full."""

    __tablename__ = "key_person_count_state"


class KeyPersonCountDirty(_GridDirtyLog, Base):
    """Grids whose key person counts changed since the last repair (migration 0014)."""

    __tablename__ = "key_person_count_dirty"


class _SummaryFigures:
    """What an area that covers the extent finds there (both kept summaries of migration 0015)."""

    # The convex hull of the community or grid, its compounds and their gates.
    extent: Mapped[WKBElement] = mapped_column(Geometry("GEOMETRY", srid=4326, spatial_index=False))
    households: Mapped[int] = mapped_column(BigInteger)
    residents: Mapped[int] = mapped_column(BigInteger)
    buildings: Mapped[int]
    case_buildings: Mapped[int]
    case_households: Mapped[int] = mapped_column(BigInteger)
    compounds: Mapped[int]
    gates: Mapped[int]
    open_gates: Mapped[int]
    staffed_gates: Mapped[int]
    key_counts: Mapped[dict] = mapped_column(JSONB)  # {category code: persons}


class CommunitySummary(_SummaryFigures, Base):
    """What an area that covers the whole community finds in it (kept; see migration 0015):
    the impact preview reads one row for each such community instead of its grids."""

    __tablename__ = "community_summary"
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    grids: Mapped[int]
    grid_cards: Mapped[list] = mapped_column(JSONB)  # one object per grid, ordered by code
    # Compounds that no grid of the community holds (a point on their surface outside them all).
    loose_compounds: Mapped[list[int]] = mapped_column(ARRAY(Integer))

    __table_args__ = (Index("ix_community_summary_extent", "extent", postgresql_using="gist"),)


class GridSummary(_SummaryFigures, Base):
    """The same per grid, for the grids of communities an area cuts (migration 0015); recomputed
    with its community's row, and cleared with it."""

    __tablename__ = "grid_summary"
    grid_id: Mapped[int] = mapped_column(ForeignKey("grid.id", ondelete="CASCADE"), primary_key=True)
    community_id: Mapped[int] = mapped_column(
        ForeignKey("community_summary.community_id", ondelete="CASCADE"), index=True)
    key_households: Mapped[int]  # households with a key person (with or without a category)
    key_persons: Mapped[int]
    card: Mapped[dict] = mapped_column(JSONB)  # id, code, name, community_id, totals, leader
    compound_ids: Mapped[list[int]] = mapped_column(ARRAY(Integer))


class CommunitySummaryState(_KeptState, Base):
    """When the community summary was last computed in full."""

    __tablename__ = "community_summary_state"


class CommunitySummaryDirty(Base):
    """Communities whose summary changed since the last repair, or everything (migration 0015)."""

    __tablename__ = "community_summary_dirty"
    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    community_id: Mapped[int | None]
    everything: Mapped[bool] = mapped_column(Boolean, server_default=false())
