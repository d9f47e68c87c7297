"""The PostGIS data model: district → subdistrict → community → grid → building → household.

Tables are named in the singular for what they hold, so a QGIS user can open them directly. Every
table has an integer primary key ``id``; every geometry is stored in EPSG:4326 in a column ``geom``
with a GiST index (GeoAlchemy2 creates it); every parent is referenced as ``<parent>_id``.
"""

from __future__ import annotations

from datetime import date, datetime

from geoalchemy2 import Geometry, WKBElement
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from gridmap.domain.reference import SERVICE_POINT_KINDS

SRID = 4326


class Base(DeclarativeBase):
    pass


def _multipolygon() -> Geometry:
    return Geometry("MULTIPOLYGON", srid=SRID, spatial_index=True)


def _polygon() -> Geometry:
    return Geometry("POLYGON", srid=SRID, spatial_index=True)


def _point() -> Geometry:
    return Geometry("POINT", srid=SRID, spatial_index=True)


class District(Base):
    __tablename__ = "district"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str | None] = mapped_column(String(100))
    geom: Mapped[WKBElement] = mapped_column(_multipolygon())


class Subdistrict(Base):
    __tablename__ = "subdistrict"
    id: Mapped[int] = mapped_column(primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("district.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    geom: Mapped[WKBElement] = mapped_column(_multipolygon())


class Community(Base):
    __tablename__ = "community"
    id: Mapped[int] = mapped_column(primary_key=True)
    subdistrict_id: Mapped[int] = mapped_column(
        ForeignKey("subdistrict.id", ondelete="CASCADE"), index=True
    )
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    # 'community' (社区) or 'village' (村)
    kind: Mapped[str] = mapped_column(String(16), default="community")
    phone: Mapped[str | None] = mapped_column(String(32))
    geom: Mapped[WKBElement] = mapped_column(_multipolygon())


class Grid(Base):
    __tablename__ = "grid"
    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    # Totals kept by triggers from the buildings (migrations 0003, 0011); never written by the app.
    households: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    residents: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    buildings: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    geom: Mapped[WKBElement] = mapped_column(_multipolygon())


class Compound(Base):
    """A residential compound (小区); controlling it means controlling its gates."""

    __tablename__ = "compound"
    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    geom: Mapped[WKBElement] = mapped_column(_polygon())


class Gate(Base):
    __tablename__ = "gate"
    id: Mapped[int] = mapped_column(primary_key=True)
    compound_id: Mapped[int] = mapped_column(ForeignKey("compound.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    # 'pedestrian', 'vehicle' or 'both'
    kind: Mapped[str] = mapped_column(String(16), default="both")
    is_open: Mapped[bool] = mapped_column(Boolean, default=True)
    geom: Mapped[WKBElement] = mapped_column(_point())


class Building(Base):
    __tablename__ = "building"
    id: Mapped[int] = mapped_column(primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grid.id", ondelete="CASCADE"), index=True)
    compound_id: Mapped[int | None] = mapped_column(
        ForeignKey("compound.id", ondelete="SET NULL"), index=True
    )
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    floors: Mapped[int] = mapped_column(SmallInteger, default=1)
    # Totals kept by triggers from the households (migration 0003); never written by the app.
    households: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    residents: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    geom: Mapped[WKBElement] = mapped_column(_polygon())


class Household(Base):
    __tablename__ = "household"
    id: Mapped[int] = mapped_column(primary_key=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("building.id", ondelete="CASCADE"), index=True)
    unit: Mapped[str | None] = mapped_column(String(16))
    room: Mapped[str] = mapped_column(String(32))
    residents: Mapped[int] = mapped_column(SmallInteger, default=1)
    head_name: Mapped[str | None] = mapped_column(String(64))
    phone: Mapped[str | None] = mapped_column(String(32))
    geom: Mapped[WKBElement] = mapped_column(_point())

    __table_args__ = (
        CheckConstraint("residents >= 0", name="household_residents_nonnegative"),
        UniqueConstraint("building_id", "unit", "room", name="household_address_unique"),
    )


class KeyPersonCategory(Base):
    """Categories of key population (重点人群), kept as data: DOMAIN.md 'Key populations'."""

    __tablename__ = "key_person_category"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(48), unique=True)
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(96))
    # Vulnerable groups must be contacted at least twice a week (004 §8).
    vulnerable: Mapped[bool] = mapped_column(Boolean, default=False)
    # Counts as a 'case' when judging proportionality of controlled areas (issue 4).
    is_case: Mapped[bool] = mapped_column(Boolean, default=False)
    sort_order: Mapped[int] = mapped_column(SmallInteger, default=0)


key_person_category_link = Table(
    "key_person_category_link",
    Base.metadata,
    Column("key_person_id", ForeignKey("key_person.id", ondelete="CASCADE"), primary_key=True),
    Column("category_id", ForeignKey("key_person_category.id", ondelete="CASCADE"), primary_key=True),
    # The building of the person's household, filled and carried along by triggers (migration 0008).
    Column("building_id", ForeignKey("building.id", ondelete="CASCADE"), nullable=False),
)

building_key_count = Table(
    "building_key_count",
    Base.metadata,
    Column("building_id", ForeignKey("building.id", ondelete="CASCADE"), primary_key=True),
    Column("category_id", ForeignKey("key_person_category.id", ondelete="CASCADE"), primary_key=True),
    Column("grid_id", Integer, nullable=False),  # the building's grid (migration 0010)
    # Key persons of the category in the building; kept by triggers from the links (migration 0008).
    Column("n", Integer, nullable=False),
    # The buildings with cases of whole grids, by grid (migration 0011).
    Index("ix_building_key_count_grid_category", "grid_id", "category_id"),
)

grid_key_count = Table(
    "grid_key_count",
    Base.metadata,
    Column("grid_id", ForeignKey("grid.id", ondelete="CASCADE"), primary_key=True),
    Column("category_id", ForeignKey("key_person_category.id", ondelete="CASCADE"), primary_key=True),
    # Key persons of the category in the grid; kept by triggers from building_key_count (0010).
    Column("n", Integer, nullable=False),
)


class KeyPerson(Base):
    """A person of a key population at their home. Personal data: shown only where work needs it."""

    __tablename__ = "key_person"
    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    gender: Mapped[str | None] = mapped_column(String(1))
    birth_year: Mapped[int | None] = mapped_column(SmallInteger)
    phone: Mapped[str | None] = mapped_column(String(32))
    id_number: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    observation_start: Mapped[date | None] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer, default=1)
    geom: Mapped[WKBElement] = mapped_column(_point())

    categories: Mapped[list[KeyPersonCategory]] = relationship(secondary=key_person_category_link)

    # Home observation reads the starts of the last days: only the few rows with one (migration 0014).
    __table_args__ = (
        Index("ix_key_person_observation_start", "observation_start",
              postgresql_where=text("observation_start IS NOT NULL")),
    )


class Staff(Base):
    """Grid-work staff (网格化工作队伍)."""

    __tablename__ = "staff"
    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    # community_worker, grid_leader, building_leader, medical, sunk_cadre, police, property,
    # social_worker, volunteer
    role: Mapped[str] = mapped_column(String(32), index=True)
    phone: Mapped[str | None] = mapped_column(String(32))
    skills: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    geom: Mapped[WKBElement | None] = mapped_column(_point(), nullable=True)


class StaffAssignment(Base):
    """包片联户: a staff member takes a grid, a building or a household."""

    __tablename__ = "staff_assignment"
    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grid.id", ondelete="CASCADE"), index=True)
    building_id: Mapped[int | None] = mapped_column(
        ForeignKey("building.id", ondelete="CASCADE"), index=True
    )
    household_id: Mapped[int | None] = mapped_column(
        ForeignKey("household.id", ondelete="CASCADE"), index=True
    )

    __table_args__ = (
        CheckConstraint(
            "num_nonnulls(grid_id, building_id, household_id) = 1",
            name="staff_assignment_one_target",
        ),
    )


class RiskClass(Base):
    """Risk tiers (low/medium/high) and area classes (sealed/controlled/precaution), as data."""

    __tablename__ = "risk_class"
    id: Mapped[int] = mapped_column(primary_key=True)
    # 'tier' or 'area'
    scheme: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(32))
    name_zh: Mapped[str] = mapped_column(String(32))
    name_en: Mapped[str] = mapped_column(String(32))
    color: Mapped[str] = mapped_column(String(9))
    # Higher is stricter; used to pick the strictest class that applies.
    severity: Mapped[int] = mapped_column(SmallInteger)
    measures_zh: Mapped[str] = mapped_column(Text, default="")
    measures_en: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (UniqueConstraint("scheme", "code", name="risk_class_scheme_code"),)


class RiskAssignment(Base):
    """A risk class given to a community or a grid from a time on; history is kept, never overwritten."""

    __tablename__ = "risk_assignment"
    id: Mapped[int] = mapped_column(primary_key=True)
    risk_class_id: Mapped[int] = mapped_column(ForeignKey("risk_class.id"), index=True)
    community_id: Mapped[int | None] = mapped_column(
        ForeignKey("community.id", ondelete="CASCADE"), index=True
    )
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grid.id", ondelete="CASCADE"), index=True)
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str] = mapped_column(String(64), default="")

    __table_args__ = (
        CheckConstraint("num_nonnulls(community_id, grid_id) = 1", name="risk_assignment_one_target"),
        CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="risk_assignment_period"),
    )


class ControlledArea(Base):
    """One version of a drawn controlled area. A redraw adds a row with the next version."""

    __tablename__ = "controlled_area"
    id: Mapped[int] = mapped_column(primary_key=True)
    # All versions of one area share its area_key.
    area_key: Mapped[int] = mapped_column(Integer, index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    risk_class_id: Mapped[int] = mapped_column(ForeignKey("risk_class.id"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    planned_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    end_reason: Mapped[str | None] = mapped_column(Text)
    impact: Mapped[dict | None] = mapped_column(JSONB)
    geom: Mapped[WKBElement] = mapped_column(_multipolygon())

    __table_args__ = (UniqueConstraint("area_key", "version", name="controlled_area_version"),)


class Checkpoint(Base):
    """An entry/exit checkpoint (进出卡点) at a gate, staffed around the clock."""

    __tablename__ = "checkpoint"
    id: Mapped[int] = mapped_column(primary_key=True)
    gate_id: Mapped[int] = mapped_column(ForeignKey("gate.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    shifts_per_day: Mapped[int] = mapped_column(SmallInteger)
    staff_per_shift: Mapped[int] = mapped_column(SmallInteger)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    geom: Mapped[WKBElement] = mapped_column(_point())

    __table_args__ = (
        CheckConstraint("shifts_per_day > 0", name="checkpoint_shifts_positive"),
        CheckConstraint("staff_per_shift > 0", name="checkpoint_staff_positive"),
    )


class ServicePoint(Base):
    """A service placed on the map; a delivery zone is a polygon, everything else a point."""

    __tablename__ = "service_point"
    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int | None] = mapped_column(
        ForeignKey("community.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(100))
    capacity: Mapped[int | None] = mapped_column(Integer)
    hours: Mapped[str | None] = mapped_column(String(64))
    geom: Mapped[WKBElement] = mapped_column(Geometry("GEOMETRY", srid=SRID, spatial_index=True))

    __table_args__ = (
        CheckConstraint(
            "kind IN (" + ", ".join(f"'{k}'" for k in SERVICE_POINT_KINDS) + ")",
            name="service_point_kind",
        ),
        CheckConstraint(
            "(kind = 'delivery_zone') = (GeometryType(geom) IN ('POLYGON', 'MULTIPOLYGON'))",
            name="service_point_geometry_type",
        ),
        CheckConstraint("capacity IS NULL OR capacity >= 0", name="service_point_capacity"),
    )


# Columns maintained by triggers, which loaders and imports must leave alone.
DERIVED_COLUMNS: dict[str, frozenset[str]] = {
    "building": frozenset({"households", "residents"}),
    "grid": frozenset({"households", "residents", "buildings"}),
}

LAYER_MODELS: dict[str, type[Base]] = {
    "district": District,
    "subdistrict": Subdistrict,
    "community": Community,
    "grid": Grid,
    "compound": Compound,
    "gate": Gate,
    "building": Building,
    "household": Household,
    "key_person": KeyPerson,
    "staff": Staff,
    "staff_assignment": StaffAssignment,
    "risk_class": RiskClass,
    "risk_assignment": RiskAssignment,
    "controlled_area": ControlledArea,
    "checkpoint": Checkpoint,
    "service_point": ServicePoint,
}
