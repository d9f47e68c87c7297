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
    WITH area AS (SELECT ST_GeomFromEWKB(:wkb) AS g),
    parts AS (SELECT ST_Subdivide(g, :maxv) AS g FROM area),
    cand AS (SELECT DISTINCT b.id FROM building b JOIN parts p ON ST_Intersects(b.geom, p.g))
    SELECT b.id, b.households, b.residents
    FROM building b JOIN cand USING (id), area a
    WHERE ST_CoveredBy(b.geom, a.g)
       OR ST_Area(ST_Intersection(b.geom, a.g)) >= :share * ST_Area(b.geom)
    """
)

_KEY_PERSONS_SQL = text(
    """
    SELECT c.code, count(DISTINCT kp.id)
    FROM household h
    JOIN key_person kp ON kp.household_id = h.id
    JOIN key_person_category_link l ON l.key_person_id = kp.id
    JOIN key_person_category c ON c.id = l.category_id
    WHERE h.building_id = ANY(:ids)
    GROUP BY c.code
    """
)

_CASES_SQL = text(
    """
    SELECT count(*), coalesce(sum(b.households), 0) FROM building b
    WHERE b.id = ANY(:ids) AND EXISTS (
      SELECT 1 FROM household h
      JOIN key_person kp ON kp.household_id = h.id
      JOIN key_person_category_link l ON l.key_person_id = kp.id
      JOIN key_person_category c ON c.id = l.category_id AND c.is_case
      WHERE h.building_id = b.id)
    """
)

_GATES_SQL = text(
    """
    WITH area AS (SELECT ST_Buffer(ST_GeomFromEWKB(:wkb)::geography, :dist)::geometry AS g),
    gates AS (
      SELECT ga.id, ga.is_open,
             EXISTS (SELECT 1 FROM checkpoint ck WHERE ck.gate_id = ga.id AND ck.active) AS staffed
      FROM gate ga, area a WHERE ST_Intersects(ga.geom, a.g))
    SELECT count(*), count(*) FILTER (WHERE is_open), count(*) FILTER (WHERE is_open AND staffed)
    FROM gates
    """
)

_COMPOUNDS_SQL = text(
    """
    WITH area AS (SELECT ST_GeomFromEWKB(:wkb) AS g)
    SELECT count(*), count(*) FILTER (WHERE NOT ST_CoveredBy(c.geom, a.g))
    FROM compound c, area a
    WHERE ST_Intersects(c.geom, a.g) AND ST_Relate(c.geom, a.g, '2********')
    """
)

_GRIDS_SQL = text(
    """
    SELECT g.id, g.code, g.name, g.community_id, count(b.id) AS buildings,
           coalesce(sum(b.households), 0) AS households,
           (SELECT s.name FROM staff s JOIN staff_assignment sa ON sa.staff_id = s.id
            WHERE sa.grid_id = g.id AND s.role = 'grid_leader' ORDER BY s.id LIMIT 1) AS leader,
           (SELECT s.phone FROM staff s JOIN staff_assignment sa ON sa.staff_id = s.id
            WHERE sa.grid_id = g.id AND s.role = 'grid_leader' ORDER BY s.id LIMIT 1) AS leader_phone
    FROM building b JOIN grid g ON g.id = b.grid_id
    WHERE b.id = ANY(:ids)
    GROUP BY g.id ORDER BY g.code
    """
)

_COMMUNITIES_SQL = text(
    """
    SELECT c.id, c.name, t.inside,
           (SELECT coalesce(sum(g.households), 0) FROM grid g WHERE g.community_id = c.id) AS total
    FROM (SELECT g.community_id, sum(b.households) AS inside
          FROM building b JOIN grid g ON g.id = b.grid_id
          WHERE b.id = ANY(:ids) GROUP BY g.community_id) t
    JOIN community c ON c.id = t.community_id
    ORDER BY c.code
    """
)

_OVERLAPS_SQL = text(
    """
    WITH area AS (SELECT ST_GeomFromEWKB(:wkb) AS g)
    SELECT ca.area_key, ca.version, ca.name, rc.code, rc.name_zh, rc.name_en
    FROM controlled_area ca JOIN risk_class rc ON rc.id = ca.risk_class_id, area a
    WHERE ca.ended_at IS NULL
      AND ca.version = (SELECT max(v.version) FROM controlled_area v WHERE v.area_key = ca.area_key)
      AND (CAST(:exclude_key AS integer) IS NULL OR ca.area_key <> CAST(:exclude_key AS integer))
      AND ST_Intersects(ca.geom, a.g) AND ST_Relate(ca.geom, a.g, '2********')
    ORDER BY ca.area_key
    """
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
    households = sum(r.households for r in rows)
    residents = sum(r.residents for r in rows)
    key_persons = dict(session.execute(_KEY_PERSONS_SQL, {"ids": ids}).all()) if ids else {}
    case_buildings, case_households = session.execute(_CASES_SQL, {"ids": ids}).one() if ids else (0, 0)
    gates, open_gates, staffed = session.execute(
        _GATES_SQL, {"wkb": wkb, "dist": settings.gate_boundary_distance_m}
    ).one()
    compounds, compounds_cut = session.execute(_COMPOUNDS_SQL, {"wkb": wkb}).one()
    grids = [dict(r._mapping) for r in session.execute(_GRIDS_SQL, {"ids": ids})] if ids else []
    community_rows = session.execute(_COMMUNITIES_SQL, {"ids": ids}).all() if ids else []
    shares = [CommunityShare(r.id, r.name, int(r.inside), int(r.total)) for r in community_rows]
    overlaps = [
        dict(r._mapping) for r in session.execute(_OVERLAPS_SQL, {"wkb": wkb, "exclude_key": exclude_area_key})
    ]

    rules = rules_from(settings)
    needs = needs_for(area_class, households, int(open_gates), int(staffed), rules)
    warnings = proportionality_warnings(
        area_class, households, int(case_households), int(case_buildings), shares, rules
    )
    return Impact(
        area_class=area_class,
        buildings=len(ids),
        households=int(households),
        residents=int(residents),
        key_persons=key_persons,
        compounds=int(compounds),
        compounds_cut=int(compounds_cut),
        gates=int(gates),
        open_gates=int(open_gates),
        existing_checkpoints=int(staffed),
        checkpoints_needed=needs.checkpoints_needed,
        duty_staff_needed=needs.duty_staff_needed,
        drop_zones_needed=needs.drop_zones_needed,
        delivery_volunteers_needed=needs.delivery_volunteers_needed,
        case_buildings=int(case_buildings),
        case_households=int(case_households),
        grids=grids,
        communities=[
            {"id": s.community_id, "name": s.name, "households_inside": s.households_inside,
             "households_total": s.households_total, "share": round(s.share, 4)}
            for s in shares
        ],
        overlaps=overlaps,
        warnings=[w.as_dict() for w in warnings],
        building_ids=ids,
    )
