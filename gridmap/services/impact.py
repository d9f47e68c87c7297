"""The impact of a drawn area, computed in PostGIS with the spatial indexes, in one statement.

Ratios of areas are taken in lon/lat on purpose: over one building the scale is constant, so the
ratio is the same as in metres; distances use geography.
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
from gridmap.services import kept
from gridmap.services.kept import KeptRefresh, kept_table

AREA_CLASSES = ("sealed", "controlled", "precaution", "high", "medium", "low")


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


# The impact summary kept per community (migration 0015; the mechanism: gridmap.services.kept):
# what an area that covers the community's extent finds in it. One INSERT ... SELECT for the
# communities ``:ids`` (NULL: all), with the same rules as the statement below: a building with a
# case has a person of a case category (per-building counts of 0008); a gate is staffed when an
# active checkpoint stands at it; a grid's leader is its active grid leader of the lowest id.
_SUMMARY_INSERT = """
    INSERT INTO community_summary (community_id, name, extent, grids, households, residents, buildings,
      case_buildings, case_households, compounds, gates, open_gates, staffed_gates, key_counts, grid_cards)
    WITH c AS MATERIALIZED (
      SELECT id, name, geom FROM community
      WHERE CAST(:ids AS integer[]) IS NULL OR id = ANY(CAST(:ids AS integer[]))),
    g AS MATERIALIZED (
      SELECT gr.id, gr.community_id, gr.code, gr.name, gr.households, gr.residents, gr.buildings, gr.geom
      FROM grid gr WHERE gr.community_id IN (SELECT id FROM c)),
    leaders AS (
      SELECT DISTINCT ON (sa.grid_id) sa.grid_id, s.name, s.phone
      FROM staff_assignment sa JOIN staff s ON s.id = sa.staff_id
      WHERE sa.grid_id IN (SELECT id FROM g) AND s.role = 'grid_leader' AND s.active
      ORDER BY sa.grid_id, s.id),
    grids AS (
      SELECT g.community_id, count(*) AS n, sum(g.households) AS households, sum(g.residents) AS residents,
             sum(g.buildings) AS buildings,
             jsonb_agg(jsonb_build_object(
               'id', g.id, 'code', g.code, 'name', g.name, 'community_id', g.community_id,
               'buildings', g.buildings, 'households', g.households, 'leader', l.name, 'leader_phone', l.phone)
               ORDER BY g.code) AS cards,
             ST_ConvexHull(ST_Collect(g.geom)) AS hull
      FROM g LEFT JOIN leaders l ON l.grid_id = g.id GROUP BY g.community_id),
    cases AS (
      SELECT g.community_id, count(*) AS buildings, coalesce(sum(b.households), 0) AS households
      FROM (SELECT DISTINCT bk.building_id, bk.grid_id FROM building_key_count bk
            WHERE bk.grid_id IN (SELECT id FROM g) AND bk.n > 0
              AND bk.category_id IN (SELECT id FROM key_person_category WHERE is_case)) cb
      JOIN g ON g.id = cb.grid_id JOIN building b ON b.id = cb.building_id
      GROUP BY g.community_id),
    keys AS (
      SELECT community_id, jsonb_object_agg(code, n) AS counts FROM (
        SELECT g.community_id, kc.code, sum(gk.n) AS n
        FROM grid_key_count gk JOIN g ON g.id = gk.grid_id JOIN key_person_category kc ON kc.id = gk.category_id
        GROUP BY 1, 2 HAVING sum(gk.n) > 0) x
      GROUP BY community_id),
    compounds AS (
      SELECT cp.community_id, count(*) AS n, ST_ConvexHull(ST_Collect(cp.geom)) AS hull
      FROM compound cp WHERE cp.community_id IN (SELECT id FROM c) GROUP BY cp.community_id),
    gates AS (
      SELECT cp.community_id, count(*) AS n, count(*) FILTER (WHERE ga.is_open) AS open,
             count(*) FILTER (WHERE ga.is_open AND EXISTS (
               SELECT 1 FROM checkpoint ck WHERE ck.gate_id = ga.id AND ck.active)) AS staffed,
             ST_ConvexHull(ST_Collect(ga.geom)) AS hull
      FROM gate ga JOIN compound cp ON cp.id = ga.compound_id
      WHERE cp.community_id IN (SELECT id FROM c) GROUP BY cp.community_id)
    SELECT c.id, c.name, ST_ConvexHull(ST_Collect(ARRAY[c.geom, gr.hull, cp.hull, gt.hull])),
           coalesce(gr.n, 0), coalesce(gr.households, 0), coalesce(gr.residents, 0), coalesce(gr.buildings, 0),
           coalesce(cs.buildings, 0), coalesce(cs.households, 0),
           coalesce(cp.n, 0), coalesce(gt.n, 0), coalesce(gt.open, 0), coalesce(gt.staffed, 0),
           coalesce(k.counts, '{}'::jsonb), coalesce(gr.cards, '[]'::jsonb)
    FROM c LEFT JOIN grids gr ON gr.community_id = c.id LEFT JOIN cases cs ON cs.community_id = c.id
    LEFT JOIN keys k ON k.community_id = c.id LEFT JOIN compounds cp ON cp.community_id = c.id
    LEFT JOIN gates gt ON gt.community_id = c.id
"""

SUMMARY = kept_table(
    "community_summary", (), state="community_summary_state", dirty="community_summary_dirty",
    insert_sql=_SUMMARY_INSERT, key="community_id", parent="community",
)


def refresh_community_summary(session: Session, *, full: bool = False) -> KeptRefresh:
    """Bring the kept impact summary per community up to date with the rows, in the caller's
    transaction: the communities the change log names, or everything (gridmap.services.kept)."""
    return kept.refresh(session, SUMMARY, full)


# One statement, one round trip. The parts:
# - comm: the communities whose kept extent (0015) meets the area grown by the gate distance;
#   those whose extent the area covers count as one kept row each: all their grids, buildings,
#   compounds and gates lie inside. Only the others (cut) are looked at grid by grid:
# - whole: their grids the area covers entirely count as one row each, with the totals the
#   triggers keep per grid (households, residents: migration 0003; key persons: 0010);
# - cut_inside: in the other grids the area touches, buildings of which at least a share (a
#   setting) of the footprint lies in the area; grids are read by community and buildings by
#   grid, and ST_Intersection runs only on those the boundary cuts;
# - keys: key persons by category from the per-grid and per-building counts (0008, 0010), which
#   also give the buildings with cases;
# - grid_rows: the grids with something inside, from the cards kept per community (code, name,
#   leader);
# - gates of the cut communities' compounds within a distance of the area (a generous distance in
#   degrees narrows, geography measures the rest), their compounds the area meets, live areas it
#   overlaps.
# ``stale``: the kept summary lags behind a change; the caller repairs it and asks again.
# The area is the FIRST argument of every predicate: PostGIS caches a prepared geometry only for
# the argument that repeats, and ST_Covers(area, b) runs 4x faster than ST_CoveredBy(b, area).
_IMPACT_SQL = text(
    """
    WITH area AS MATERIALIZED (  -- also as geography, once: cast on every row, it was ~20 µs a gate
      SELECT g, CAST(g AS geography) AS gg FROM (SELECT ST_GeomFromEWKB(:wkb) AS g) x),
    reach AS MATERIALIZED (  -- the area grown by the gate distance, generously (degrees of longitude)
      SELECT ST_Buffer(g, :dist / (111320.0 * cos(radians(ST_Y(ST_Centroid(g))))), 4) AS g FROM area),
    comm AS MATERIALIZED (
      SELECT s.*, ST_Covers(a.g, s.extent) AS whole
      FROM community_summary s, area a, reach r WHERE ST_Intersects(r.g, s.extent)),
    whole_comm AS MATERIALIZED (SELECT * FROM comm WHERE whole),
    cut_comm AS MATERIALIZED (SELECT community_id AS id FROM comm WHERE NOT whole),
    touched AS MATERIALIZED (  -- read by community (OFFSET 0: not through the spatial index, which
      -- finds every grid of the area, ~1,400 for a 5 km radius, to keep the ~200 of the cut communities)
      SELECT gr.id, gr.households, gr.residents, gr.buildings, gr.geom
      FROM cut_comm c CROSS JOIN LATERAL (SELECT * FROM grid g WHERE g.community_id = c.id OFFSET 0) gr, area a
      WHERE ST_Intersects(a.g, gr.geom)),
    whole AS MATERIALIZED (
      SELECT t.id, t.households, t.residents, t.buildings FROM touched t, area a WHERE ST_Covers(a.g, t.geom)),
    cut_grids AS MATERIALIZED (SELECT id FROM touched EXCEPT SELECT id FROM whole),
    cand AS MATERIALIZED (  -- only the buildings of the grids the boundary cuts, read by grid
      -- (OFFSET 0 keeps the planner from reading them by the spatial index instead: at city scale
      -- that finds every building of the area, ~28,000 for a 5 km radius, to keep ~1,200)
      SELECT b.id, b.grid_id, b.geom, b.households, b.residents
      FROM cut_grids cg
      CROSS JOIN LATERAL (SELECT * FROM building b WHERE b.grid_id = cg.id OFFSET 0) b, area a
      WHERE ST_Intersects(a.g, b.geom)),
    cut_inside AS MATERIALIZED (
      SELECT c.id, c.grid_id, c.households, c.residents FROM cand c, area a
      WHERE CASE WHEN ST_Covers(a.g, c.geom) THEN true
                 ELSE ST_Area(ST_Intersection(c.geom, a.g)) >= :share * ST_Area(c.geom) END),
    keys AS MATERIALIZED (  -- summed by category id first: ~20 rows to join, not one per grid and category
      SELECT kc.code, x.n
      FROM (SELECT category_id, sum(n) AS n FROM (
              SELECT gk.category_id, gk.n FROM grid_key_count gk JOIN whole w ON w.id = gk.grid_id
              UNION ALL
              SELECT bk.category_id, bk.n FROM building_key_count bk JOIN cut_inside i ON i.id = bk.building_id) y
            GROUP BY category_id) x
      JOIN key_person_category kc ON kc.id = x.category_id
      UNION ALL
      SELECT k.key, CAST(k.value AS bigint) FROM whole_comm w, jsonb_each_text(w.key_counts) k),
    case_categories AS MATERIALIZED (SELECT id FROM key_person_category WHERE is_case),
    case_buildings AS MATERIALIZED (  -- the case categories' rows of the whole grids (index: 0011)
      SELECT DISTINCT bk.building_id AS id
      FROM whole w CROSS JOIN case_categories cc
      JOIN building_key_count bk ON bk.grid_id = w.id AND bk.category_id = cc.id
      WHERE bk.n > 0
      UNION
      SELECT i.id FROM cut_inside i
      WHERE EXISTS (SELECT 1 FROM building_key_count bk WHERE bk.building_id = i.id AND bk.n > 0
                      AND bk.category_id IN (SELECT id FROM case_categories))),
    grids_in AS (
      SELECT id AS grid_id, buildings, households FROM whole
      UNION ALL
      SELECT grid_id, count(*), sum(households) FROM cut_inside GROUP BY grid_id),
    grid_rows AS (  -- the kept card of the grid (code, name, leader), with what lies inside
      SELECT c.community_id, c.name AS community_name, c.households AS community_households,
             card || jsonb_build_object('buildings', gi.buildings, 'households', gi.households) AS card,
             gi.households
      FROM comm c CROSS JOIN LATERAL jsonb_array_elements(c.grid_cards) card
      JOIN grids_in gi ON gi.grid_id = CAST(card->>'id' AS integer)
      WHERE NOT c.whole),
    communities AS (
      SELECT community_id AS id, min(community_name) AS name, sum(households) AS households_inside,
             min(community_households) AS households_total
      FROM grid_rows GROUP BY community_id
      UNION ALL
      SELECT community_id, name, households, households FROM whole_comm WHERE grids > 0),
    gates AS (
      SELECT ga.is_open,
             ga.id IN (SELECT ck.gate_id FROM checkpoint ck WHERE ck.active) AS staffed  -- hashed once
      FROM cut_comm c
      CROSS JOIN LATERAL (SELECT cp.id FROM compound cp WHERE cp.community_id = c.id OFFSET 0) cp
      CROSS JOIN LATERAL (SELECT * FROM gate g WHERE g.compound_id = cp.id OFFSET 0) ga, area a, reach r
      WHERE ST_Intersects(r.g, ga.geom)
        AND CASE WHEN ST_Intersects(a.g, ga.geom) THEN true
                 ELSE ST_DWithin(CAST(ga.geom AS geography), a.gg, :dist) END),
    compounds AS MATERIALIZED (  -- inside when their interiors meet: intersecting and not only touching
      SELECT x.whole, x.whole OR NOT ST_Touches(a.g, x.geom) AS inside
      FROM (SELECT ST_Covers(a.g, cp.geom) AS whole, cp.geom
            FROM cut_comm c
            CROSS JOIN LATERAL (SELECT * FROM compound p WHERE p.community_id = c.id OFFSET 0) cp, area a
            WHERE ST_Intersects(a.g, cp.geom)) x, area a),
    overlapping AS (
      SELECT ca.area_key, ca.version, ca.name, rc.code, rc.name_zh, rc.name_en
      FROM controlled_area ca JOIN risk_class rc ON rc.id = ca.risk_class_id, area a
      WHERE ca.ended_at IS NULL
        AND ca.version = (SELECT max(v.version) FROM controlled_area v WHERE v.area_key = ca.area_key)
        AND (CAST(:exclude_key AS integer) IS NULL OR ca.area_key <> CAST(:exclude_key AS integer))
        AND ST_Intersects(a.g, ca.geom) AND NOT ST_Touches(a.g, ca.geom))
    SELECT
      (SELECT s.computed_at IS NULL OR EXISTS (SELECT 1 FROM community_summary_dirty)
         FROM (SELECT 1) one LEFT JOIN community_summary_state s ON s.id = 1) AS stale,
      (SELECT coalesce(sum(buildings), 0) FROM grids_in) + (SELECT coalesce(sum(buildings), 0) FROM whole_comm)
        AS buildings,
      (SELECT coalesce(sum(households), 0) FROM whole) + (SELECT coalesce(sum(households), 0) FROM cut_inside)
        + (SELECT coalesce(sum(households), 0) FROM whole_comm) AS households,
      (SELECT coalesce(sum(residents), 0) FROM whole) + (SELECT coalesce(sum(residents), 0) FROM cut_inside)
        + (SELECT coalesce(sum(residents), 0) FROM whole_comm) AS residents,
      (SELECT coalesce(json_object_agg(code, n ORDER BY code), '{}'::json)
         FROM (SELECT code, sum(n) AS n FROM keys GROUP BY code HAVING sum(n) > 0) x) AS key_persons,
      (SELECT count(*) FROM case_buildings) + (SELECT coalesce(sum(case_buildings), 0) FROM whole_comm)
        AS case_buildings,
      (SELECT coalesce(sum((SELECT b.households FROM building b WHERE b.id = cb.id)), 0) FROM case_buildings cb)
        + (SELECT coalesce(sum(case_households), 0) FROM whole_comm) AS case_households,
      (SELECT coalesce(json_agg(x.card ORDER BY x.card->>'code'), '[]'::json) FROM (
         SELECT card FROM grid_rows
         UNION ALL
         SELECT card FROM whole_comm w, jsonb_array_elements(w.grid_cards) card) x) AS grids,
      (SELECT coalesce(json_agg(json_build_object(
          'id', id, 'name', name, 'households_inside', households_inside, 'households_total', households_total)
          ORDER BY id), '[]'::json) FROM communities) AS communities,
      (SELECT count(*) FROM gates) + (SELECT coalesce(sum(gates), 0) FROM whole_comm) AS gates,
      (SELECT count(*) FROM gates WHERE is_open) + (SELECT coalesce(sum(open_gates), 0) FROM whole_comm)
        AS open_gates,
      (SELECT count(*) FROM gates WHERE is_open AND staffed) + (SELECT coalesce(sum(staffed_gates), 0) FROM whole_comm)
        AS staffed,
      (SELECT count(*) FROM compounds WHERE inside) + (SELECT coalesce(sum(compounds), 0) FROM whole_comm)
        AS compounds,
      (SELECT count(*) FROM compounds WHERE inside AND NOT whole) AS compounds_cut,
      (SELECT coalesce(json_agg(o ORDER BY o.area_key), '[]'::json) FROM overlapping o) AS overlaps,
      CASE WHEN :with_ids THEN (SELECT coalesce(array_agg(id ORDER BY id), '{}')
         FROM (SELECT b.id FROM building b JOIN whole w ON w.id = b.grid_id
               UNION ALL SELECT id FROM cut_inside
               UNION ALL SELECT b.id FROM whole_comm wc JOIN grid g ON g.community_id = wc.community_id
                 JOIN building b ON b.grid_id = g.id) x)
      END AS building_ids
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
    with_building_ids: bool = False,
) -> Impact:
    """Everything a commander must know before committing ``area`` as ``area_class``.

    ``area`` is a valid (multi)polygon in EPSG:4326 (validated by the caller: gridmap.io.area).
    ``with_building_ids``: also list the buildings counted (a task made from the area needs them;
    a preview does not, and a sub-district has tens of thousands).
    """
    if area_class not in AREA_CLASSES:
        raise ImpactError(
            f"未知区域类别 / unknown area class {area_class!r}; one of {', '.join(AREA_CLASSES)}",
            code="bad_class",
        )
    params = {
        "wkb": to_ewkb(area),
        "share": settings.building_inside_share,
        "dist": settings.gate_boundary_distance_m,
        "exclude_key": exclude_area_key,
        "with_ids": with_building_ids,
    }
    row = session.execute(_IMPACT_SQL, params).one()
    if row.stale:  # a change since the summary was kept: repair the communities it names, ask again
        refresh_community_summary(session)
        row = session.execute(_IMPACT_SQL, params).one()
    households = int(row.households)
    shares = [
        CommunityShare(c["id"], c["name"], int(c["households_inside"]), int(c["households_total"]))
        for c in row.communities
    ]
    rules = rules_from(settings)
    needs = needs_for(area_class, households, int(row.open_gates), int(row.staffed), rules)
    warnings = proportionality_warnings(
        area_class, households, int(row.case_households), int(row.case_buildings), shares, rules
    )
    return Impact(
        area_class=area_class,
        buildings=int(row.buildings),
        households=households,
        residents=int(row.residents),
        key_persons={code: int(n) for code, n in row.key_persons.items()},
        compounds=int(row.compounds),
        compounds_cut=int(row.compounds_cut),
        gates=int(row.gates),
        open_gates=int(row.open_gates),
        existing_checkpoints=int(row.staffed),
        checkpoints_needed=needs.checkpoints_needed,
        duty_staff_needed=needs.duty_staff_needed,
        drop_zones_needed=needs.drop_zones_needed,
        delivery_volunteers_needed=needs.delivery_volunteers_needed,
        case_buildings=int(row.case_buildings),
        case_households=int(row.case_households),
        grids=list(row.grids),
        communities=[
            {"id": c.community_id, "name": c.name, "households_inside": c.households_inside,
             "households_total": c.households_total, "share": round(c.share, 4)}
            for c in shares
        ],
        overlaps=list(row.overlaps),
        warnings=[w.as_dict() for w in warnings],
        building_ids=list(row.building_ids or ()),
    )
