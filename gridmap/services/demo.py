"""``gridmap demo load``: fill the database with the synthetic demo district, in one transaction.

The generator (gridmap.domain.demo) is pure and deterministic; this service writes its rows with
COPY in parent-to-child order, resolving reference codes (key-person categories, risk classes) to
the ids the migrations seeded.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from gridmap.config import Settings
from gridmap.db.bulk import copy_rows, reset_sequence
from gridmap.db.models import DERIVED_COLUMNS, LAYER_MODELS
from gridmap.domain.demo import DemoSpec, generate_district
from gridmap.domain.errors import GridmapError
from gridmap.io.boundary import DEFAULT_BOUNDARY, read_boundary
from gridmap.services import audit  # access (issue 7)
from gridmap.services.auth import create_demo_users  # access (issue 7)
from gridmap.services.coverage import refresh_kept_figures
from gridmap.services.demo_activity import seed_demo_activity

# Parents before children.
LOAD_ORDER = (
    "district",
    "subdistrict",
    "community",
    "grid",
    "compound",
    "gate",
    "building",
    "household",
    "key_person",
    "staff",
    "staff_assignment",
    "risk_assignment",
    "checkpoint",
    "service_point",
)
# Tables holding the district's data (not the reference tables the migrations seed).
DATA_TABLES = (*LOAD_ORDER, "controlled_area", "key_person_category_link", "building_key_count", "grid_key_count")

SCALES: dict[str, Callable[[Settings], DemoSpec]] = {
    "demo": lambda s: DemoSpec(households_min=s.households_per_grid_min, households_max=s.households_per_grid_max),
    "small": lambda s: DemoSpec.small(),
}
# city (issue 8): several real districts, ~10,000 grids; gridmap.services.city.load_city.
CITY_SCALE = "city"
# The small scale (fast tests) fills a square of this side cut from the middle of the district, so
# its grids have the density of real ones rather than eight grids stretched over 23 km².
SMALL_SIDE_M = 1600.0


def _small_piece(boundary: BaseGeometry) -> BaseGeometry:
    centre = boundary.representative_point()
    half_lat = SMALL_SIDE_M / 2 / 110_540.0
    half_lon = SMALL_SIDE_M / 2 / (111_320.0 * math.cos(math.radians(centre.y)))
    box = shapely.box(centre.x - half_lon, centre.y - half_lat, centre.x + half_lon, centre.y + half_lat)
    return boundary.intersection(box)


class DemoAlreadyLoaded(GridmapError):
    code = "demo_already_loaded"


def is_empty(session: Session) -> bool:
    return session.execute(text("SELECT NOT EXISTS (SELECT 1 FROM district)")).scalar_one()


def clear_district_data(session: Session) -> None:
    tables = ", ".join(f'"{t}"' for t in DATA_TABLES)
    session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


def _columns(table: str) -> list[str]:
    derived = DERIVED_COLUMNS.get(table, frozenset())
    return [c for c in LAYER_MODELS[table].__table__.columns.keys() if c not in derived]


def vacuum_after_commit(session: Session, progress: Callable[[str], None] = lambda _msg: None) -> None:
    """VACUUM (ANALYZE) the database once ``session`` commits what a bulk load wrote.

    Rows copied in bulk have no visibility map until VACUUM runs, so index-only scans fetch every
    heap row (issue 8: the city's contact log, 657 k rows, was read row by row), and autovacuum
    does not come for inserts soon. VACUUM cannot run inside a transaction: it runs on a
    connection of its own in autocommit, after the commit (a load rolled back, as in the tests,
    leaves nothing to vacuum and runs none).
    """
    engine = session.get_bind().engine  # the session may be bound to a connection

    def vacuum(_session: Session) -> None:
        t0 = time.perf_counter()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM (ANALYZE)"))
        progress(f"VACUUM (ANALYZE) in {time.perf_counter() - t0:.1f} s")

    event.listen(session, "after_commit", vacuum, once=True)


def load_demo(
    session: Session,
    *,
    settings: Settings,
    now: datetime,
    scale: str = "demo",
    seed: int = 1,
    boundary_path: Path = DEFAULT_BOUNDARY,
    replace: bool = False,
    progress: Callable[[str], None] = lambda _msg: None,
) -> dict[str, int]:
    """Generate and write the demo district; returns the rows written per table."""
    if scale == CITY_SCALE:  # city (issue 8): streamed chunk by chunk; imported here, it imports this module
        from gridmap.services.city import load_city

        return load_city(session, settings=settings, now=now, seed=seed, replace=replace, progress=progress)
    if scale not in SCALES:
        raise GridmapError(
            f"未知规模 / unknown scale {scale!r}; choose one of {', '.join([*SCALES, CITY_SCALE])}", code="bad_scale"
        )
    # access (issue 7): no row-by-row audit of the initial load; one BULK_LOAD entry instead.
    audit.suspend_for_bulk_load(session)
    if not is_empty(session):
        if not replace:
            raise DemoAlreadyLoaded("数据库已有辖区数据 / the database already holds a district (use --replace)")
        progress("clearing the existing district")
        clear_district_data(session)

    boundary, props = read_boundary(boundary_path)
    if scale == "small":
        boundary = _small_piece(boundary)
    spec = SCALES[scale](settings)
    progress(f"generating {scale} district in {props.get('name', boundary_path.name)} (seed {seed})")
    district = generate_district(
        boundary,
        spec,
        seed,
        district_code=str(props.get("adcode", "500103")),
        district_name=props.get("name", "渝中区"),
        district_name_en=props.get("name_en", "Yuzhong District"),
        now=now,
        checkpoint_shifts_per_day=settings.checkpoint_shifts_per_day,
        checkpoint_staff_per_shift=settings.checkpoint_staff_per_shift,
    )

    category_ids = dict(session.execute(text("SELECT code, id FROM key_person_category")).all())
    class_ids = {
        (scheme, code): id_
        for scheme, code, id_ in session.execute(text("SELECT scheme, code, id FROM risk_class")).all()
    }

    written: dict[str, int] = {}
    for table in LOAD_ORDER:
        rows = getattr(district, table)
        if table == "risk_assignment":
            rows = [
                {**r, "risk_class_id": class_ids[(r["risk_scheme"], r["risk_class_code"])]} for r in rows
            ]
        written[table] = copy_rows(session, table, _columns(table), rows)
        reset_sequence(session, table)
        progress(f"{table}: {written[table]} rows")
    building_of_household = {h["id"]: h["building_id"] for h in district.household}
    building_of_person = {p["id"]: building_of_household[p["household_id"]] for p in district.key_person}
    links = [
        {"key_person_id": r["key_person_id"], "category_id": category_ids[r["category_code"]],
         "building_id": building_of_person[r["key_person_id"]]}
        for r in district.key_person_category_link
    ]
    written["key_person_category_link"] = copy_rows(
        session, "key_person_category_link", ["key_person_id", "category_id", "building_id"], links
    )
    # Statistics first: the activity below queries what was just copied, and plans it far better
    # with them (about 10 s less; the city loader does the same).
    session.execute(text("ANALYZE"))
    # Contact logs of the last two weeks and duty rosters for the next 48 hours, so the coverage
    # views have something real to show (deterministic from seed and now).
    written.update(seed_demo_activity(session, settings, now, seed))
    progress(f"activity: {written['contact_log']} contacts, {written['duty_shift']} duty shifts")
    # The kept figures (0012-0015) in the load's transaction: the first metrics read or impact
    # preview after the load finds them fresh.
    kept = refresh_kept_figures(session, settings, full=True)
    progress(f"kept figures: {', '.join(f'{k} {v.ms:.0f} ms' for k, v in kept.items())}")
    # access (issue 7): the demo users (README, "Users and roles") and the load in the audit trail.
    create_demo_users(session, settings)
    audit.record(session, "demo", "BULK_LOAD", "district", detail={"scale": scale, "seed": seed, **written})
    session.execute(text("ANALYZE"))
    vacuum_after_commit(session, progress)
    return written
