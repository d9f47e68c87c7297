"""The impact of a drawn area, computed in PostGIS with the spatial indexes.

A large drawn polygon is cut with ST_Subdivide so the index narrows candidates part by part; the
building test (share of footprint inside, a setting) runs on the few candidates only. Households
and residents come from the per-building totals the triggers keep (migration 0003), not from a
join over every household. Ratios of areas are taken in lon/lat on purpose: over one building the
scale is constant, so the ratio is the same as in metres; distances use geography.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.config import Settings
from gridmap.db.models import SRID
from gridmap.domain.errors import GridmapError
from gridmap.domain.impact import CommunityShare, ImpactRules, needs_for, proportionality_warnings

AREA_CLASSES = ("sealed", "controlled", "precaution", "high", "medium", "low")
SUBDIVIDE_VERTICES = 128


class ImpactError(GridmapError):
    code = "bad_area"


@dataclass
class Impact:
    area_class: str
    buildings: int
    households: int
    residents: int
    key_persons: dict[str, int]
    compounds: int
    compounds_cut: int
    gates: int
    open_gates: int
    existing_checkpoints: int
    checkpoints_needed: int
    duty_staff_needed: int
    drop_zones_needed: int
    delivery_volunteers_needed: int
    case_buildings: int
    case_households: int
    grids: list[dict]
    communities: list[dict]
    overlaps: list[dict]
    warnings: list[dict] = field(default_factory=list)
    building_ids: list[int] = field(default_factory=list)

    def as_dict(self, *, with_ids: bool = False) -> dict:
        data = asdict(self)
        if not with_ids:
            data.pop("building_ids")
        return data


def rules_from(settings: Settings) -> ImpactRules:
    return ImpactRules(
        shifts_per_day=settings.checkpoint_shifts_per_day,
        staff_per_shift=settings.checkpoint_staff_per_shift,
        households_per_drop_zone=settings.households_per_drop_zone,
        households_per_delivery_volunteer=settings.households_per_delivery_volunteer,
        overcontrol_households_ratio=settings.overcontrol_households_ratio,
        overcontrol_community_share=settings.overcontrol_community_share,
        whole_community_share=settings.whole_community_share,
    )


_INSIDE_SQL = text(
    """
    WITH area AS MATERIALIZED (SELECT ST_GeomFromEWKB(:wkb) AS g),
    cand AS MATERIALIZED (
      SELECT DISTINCT ON (b.id) b.id, b.grid_id, b.geom, b.households, b.residents
      FROM building b JOIN (SELECT ST_Subdivide(g, :maxv) AS g FROM area) p ON ST_Intersects(b.geom, p.g))
    SELECT c.id, c.grid_id, c.households, c.residents
    FROM cand c, area a
    WHERE CASE WHEN ST_CoveredBy(c.geom, a.g) THEN true
               ELSE ST_Area(ST_Intersection(c.geom, a.g)) >= :share * ST_Area(c.geom) END
    """
)

# Key persons by category and building: gives the counts by category and, from the categories
# that count as cases, the buildings with cases, in one pass.
_KEY_PERSONS_SQL = text(
    """
    SELECT h.building_id, c.code, c.is_case, count(*) AS n
    FROM household h
    JOIN key_person kp ON kp.household_id = h.id
    JOIN key_person_category_link l ON l.key_person_id = kp.id
    JOIN key_person_category c ON c.id = l.category_id
    WHERE h.building_id = ANY(:ids)
    GROUP BY h.building_id, c.code, c.is_case
    """
)

# Gates near the area (checkpoint duty), compounds it cuts, and other live areas it overlaps.
_SURROUNDINGS_SQL = text(
    """
    WITH area AS MATERIALIZED (SELECT ST_GeomFromEWKB(:wkb) AS g),
    near AS (  -- the box grown by the distance narrows by index; geography measures the rest
      SELECT ST_Expand(g, :dist / (111320.0 * cos(radians(ST_Y(ST_Centroid(g))))), :dist / 110540.0) AS box
      FROM area),
    gates AS (
      SELECT ga.is_open,
             EXISTS (SELECT 1 FROM checkpoint ck WHERE ck.gate_id = ga.id AND ck.active) AS staffed
      FROM gate ga, area a, near n
      WHERE ga.geom && n.box
        AND CASE WHEN ST_Intersects(ga.geom, a.g) THEN true
                 ELSE ST_DWithin(ga.geom::geography, a.g::geography, :dist) END),
    compounds AS (
      SELECT ST_CoveredBy(c.geom, a.g) AS whole FROM compound c, area a
      WHERE ST_Intersects(c.geom, a.g) AND ST_Relate(c.geom, a.g, '2********')),
    overlapping AS (
      SELECT ca.area_key, ca.version, ca.name, rc.code, rc.name_zh, rc.name_en
      FROM controlled_area ca JOIN risk_class rc ON rc.id = ca.risk_class_id, area a
      WHERE ca.ended_at IS NULL
        AND ca.version = (SELECT max(v.version) FROM controlled_area v WHERE v.area_key = ca.area_key)
        AND (CAST(:exclude_key AS integer) IS NULL OR ca.area_key <> CAST(:exclude_key AS integer))
        AND ST_Intersects(ca.geom, a.g) AND ST_Relate(ca.geom, a.g, '2********'))
    SELECT (SELECT count(*) FROM gates) AS gates,
           (SELECT count(*) FROM gates WHERE is_open) AS open_gates,
           (SELECT count(*) FROM gates WHERE is_open AND staffed) AS staffed,
           (SELECT count(*) FROM compounds) AS compounds,
           (SELECT count(*) FROM compounds WHERE NOT whole) AS compounds_cut,
           (SELECT coalesce(json_agg(o ORDER BY o.area_key), '[]'::json) FROM overlapping o) AS overlaps
    """
)

# Grids touched, their leaders, and their communities with the communities' total households.
_GRIDS_SQL = text(
    """
    SELECT g.id, g.code, g.name, g.community_id, cm.name AS community_name,
           (SELECT sum(g2.households) FROM grid g2 WHERE g2.community_id = g.community_id) AS community_households,
           leader.name AS leader, leader.phone AS leader_phone
    FROM grid g JOIN community cm ON cm.id = g.community_id
    LEFT JOIN LATERAL (
      SELECT s.name, s.phone FROM staff s JOIN staff_assignment sa ON sa.staff_id = s.id
      WHERE sa.grid_id = g.id AND s.role = 'grid_leader' AND s.active ORDER BY s.id LIMIT 1) leader ON true
    WHERE g.id = ANY(:grid_ids)
    ORDER BY g.code
    """
)


def check_inside_district(session: Session, area: BaseGeometry) -> None:
    """Refuse an area that lies wholly outside the district (a wrong file, or lat/lon misread)."""
    inside = session.execute(
        text("SELECT EXISTS (SELECT 1 FROM district WHERE ST_Intersects(geom, ST_GeomFromEWKB(:wkb)))"),
        {"wkb": to_ewkb(area)},
    ).scalar_one()
    if not inside:
        b = area.bounds
        raise ImpactError(
            f"区域不在辖区内 / the area lies outside the district (bounds {b[0]:.5f},{b[1]:.5f} – {b[2]:.5f},{b[3]:.5f})",
            code="outside_district",
        )


def to_ewkb(geom: BaseGeometry) -> bytes:
    return shapely.to_wkb(shapely.set_srid(geom, SRID), include_srid=True)


def compute_impact(
    session: Session,
    area: BaseGeometry,
    area_class: str,
    settings: Settings,
    *,
    exclude_area_key: int | None = None,
) -> Impact:
    """Everything a commander must know before committing ``area`` as ``area_class``.

    ``area`` is a valid (multi)polygon in EPSG:4326 (validated by the caller: gridmap.io.area).
    """
    if area_class not in AREA_CLASSES:
        raise ImpactError(
            f"未知区域类别 / unknown area class {area_class!r}; one of {', '.join(AREA_CLASSES)}",
            code="bad_class",
        )
    wkb = to_ewkb(area)
    rows = session.execute(
        _INSIDE_SQL, {"wkb": wkb, "maxv": SUBDIVIDE_VERTICES, "share": settings.building_inside_share}
    ).all()
    ids = [r.id for r in rows]
    households_of = {r.id: r.households for r in rows}
    key_persons: dict[str, int] = {}
    case_building_ids: set[int] = set()
    grid_rows = []
    if ids:
        for building_id, code, is_case, n in session.execute(_KEY_PERSONS_SQL, {"ids": ids}):
            key_persons[code] = key_persons.get(code, 0) + n
            if is_case:
                case_building_ids.add(building_id)
        grid_rows = session.execute(_GRIDS_SQL, {"grid_ids": sorted({r.grid_id for r in rows})}).all()
    around = session.execute(
        _SURROUNDINGS_SQL,
        {"wkb": wkb, "dist": settings.gate_boundary_distance_m, "exclude_key": exclude_area_key},
    ).one()

    households = sum(households_of.values())
    residents = sum(r.residents for r in rows)
    case_households = sum(households_of[b] for b in case_building_ids)
    inside_by_grid: dict[int, tuple[int, int]] = {}
    for r in rows:
        n, hh = inside_by_grid.get(r.grid_id, (0, 0))
        inside_by_grid[r.grid_id] = (n + 1, hh + r.households)
    grids = [
        {"id": g.id, "code": g.code, "name": g.name, "community_id": g.community_id,
         "buildings": inside_by_grid[g.id][0], "households": inside_by_grid[g.id][1],
         "leader": g.leader, "leader_phone": g.leader_phone}
        for g in grid_rows
    ]
    shares: dict[int, CommunityShare] = {}
    for g in grid_rows:
        prev = shares.get(g.community_id)
        inside = (prev.households_inside if prev else 0) + inside_by_grid[g.id][1]
        shares[g.community_id] = CommunityShare(g.community_id, g.community_name, inside, int(g.community_households))

    rules = rules_from(settings)
    needs = needs_for(area_class, households, int(around.open_gates), int(around.staffed), rules)
    warnings = proportionality_warnings(
        area_class, households, case_households, len(case_building_ids), list(shares.values()), rules
    )
    return Impact(
        area_class=area_class,
        buildings=len(ids),
        households=int(households),
        residents=int(residents),
        key_persons=dict(sorted(key_persons.items())),
        compounds=int(around.compounds),
        compounds_cut=int(around.compounds_cut),
        gates=int(around.gates),
        open_gates=int(around.open_gates),
        existing_checkpoints=int(around.staffed),
        checkpoints_needed=needs.checkpoints_needed,
        duty_staff_needed=needs.duty_staff_needed,
        drop_zones_needed=needs.drop_zones_needed,
        delivery_volunteers_needed=needs.delivery_volunteers_needed,
        case_buildings=len(case_building_ids),
        case_households=case_households,
        grids=grids,
        communities=[
            {"id": s.community_id, "name": s.name, "households_inside": s.households_inside,
             "households_total": s.households_total, "share": round(s.share, 4)}
            for s in shares.values()
        ],
        overlaps=list(around.overlaps),
        warnings=[w.as_dict() for w in warnings],
        building_ids=ids,
    )
