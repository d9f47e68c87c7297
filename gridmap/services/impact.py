"""The impact of a drawn area, computed in PostGIS in one statement: the communities and grids the
area covers whole count as one kept row each (migration 0015, repaired from its change log when
anything changed), the buildings, compounds and gates near its boundary one by one.

Ratios of areas are taken in lon/lat on purpose: over one building the scale is constant, so the
ratio is the same as in metres; distances use geography on the sphere (at the gate distance, 5 m,
centimetres from the spheroid's).
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


# The impact summary kept per community and per grid (migration 0015; the mechanism:
# gridmap.services.kept): what an area that covers a community's or a grid's extent finds in it.
# One statement for the communities ``:ids`` (NULL: all) and their grids, with the same rules as
# the impact statement below: a building with a case has a person of a case category (per-building
# counts of 0008); a gate is staffed when an active checkpoint stands at it; a grid's leader is its
# active grid leader of the lowest id. A compound belongs to the grid of its community that holds
# a point on its surface (the lowest id), else it is loose.
_SUMMARY_INSERT = """
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
    cases AS (
      SELECT cb.grid_id, count(*) AS buildings, coalesce(sum(b.households), 0) AS households
      FROM (SELECT DISTINCT bk.building_id, bk.grid_id FROM building_key_count bk
            WHERE bk.grid_id IN (SELECT id FROM g) AND bk.n > 0
              AND bk.category_id IN (SELECT id FROM key_person_category WHERE is_case)) cb
      JOIN building b ON b.id = cb.building_id
      GROUP BY cb.grid_id),
    keys AS (
      SELECT grid_id, jsonb_object_agg(code, n) AS counts FROM (
        SELECT gk.grid_id, kc.code, sum(gk.n) AS n
        FROM grid_key_count gk JOIN key_person_category kc ON kc.id = gk.category_id
        WHERE gk.grid_id IN (SELECT id FROM g)
        GROUP BY 1, 2 HAVING sum(gk.n) > 0) x
      GROUP BY grid_id),
    kh AS (  -- households with key persons, and the persons, through the household's building
      SELECT b.grid_id, count(DISTINCT kp.household_id) AS households, count(*) AS persons
      FROM building b JOIN household h ON h.building_id = b.id JOIN key_person kp ON kp.household_id = h.id
      WHERE b.grid_id IN (SELECT id FROM g) GROUP BY b.grid_id),
    cp AS MATERIALIZED (
      SELECT p.id, p.community_id, p.geom,
             (SELECT min(gr.id) FROM grid gr WHERE gr.community_id = p.community_id
                AND ST_Intersects(gr.geom, ST_PointOnSurface(p.geom))) AS grid_id
      FROM compound p WHERE p.community_id IN (SELECT id FROM c)),
    gt AS MATERIALIZED (
      SELECT cp.community_id, cp.grid_id, ga.is_open, ga.geom,
             ga.is_open AND EXISTS (SELECT 1 FROM checkpoint ck WHERE ck.gate_id = ga.id AND ck.active) AS staffed
      FROM gate ga JOIN cp ON cp.id = ga.compound_id),
    cp_of AS (  -- per grid; the loose ones under grid NULL, per community
      SELECT community_id, grid_id, count(*) AS n, array_agg(id ORDER BY id) AS ids, ST_Collect(geom) AS geoms
      FROM cp GROUP BY community_id, grid_id),
    gt_of AS (
      SELECT community_id, grid_id, count(*) AS n, count(*) FILTER (WHERE is_open) AS open,
             count(*) FILTER (WHERE staffed) AS staffed, ST_Collect(geom) AS geoms
      FROM gt GROUP BY community_id, grid_id),
    grid_rows AS MATERIALIZED (
      SELECT g.id AS grid_id, g.community_id, g.code,
             ST_ConvexHull(ST_Collect(ARRAY[g.geom, pc.geoms, pg.geoms])) AS extent,
             g.households, g.residents, g.buildings,
             coalesce(cs.buildings, 0) AS case_buildings, coalesce(cs.households, 0) AS case_households,
             coalesce(pc.n, 0) AS compounds, coalesce(pg.n, 0) AS gates, coalesce(pg.open, 0) AS open_gates,
             coalesce(pg.staffed, 0) AS staffed_gates, coalesce(k.counts, '{}'::jsonb) AS key_counts,
             coalesce(kh.households, 0) AS key_households, coalesce(kh.persons, 0) AS key_persons,
             jsonb_build_object(
               'id', g.id, 'code', g.code, 'name', g.name, 'community_id', g.community_id,
               'buildings', g.buildings, 'households', g.households, 'leader', l.name, 'leader_phone', l.phone)
               AS card,
             coalesce(pc.ids, '{}') AS compound_ids
      FROM g LEFT JOIN leaders l ON l.grid_id = g.id LEFT JOIN cases cs ON cs.grid_id = g.id
      LEFT JOIN keys k ON k.grid_id = g.id LEFT JOIN kh ON kh.grid_id = g.id
      LEFT JOIN cp_of pc ON pc.grid_id = g.id LEFT JOIN gt_of pg ON pg.grid_id = g.id),
    per_community AS (
      SELECT community_id, count(*) AS grids, sum(households) AS households, sum(residents) AS residents,
             sum(buildings) AS buildings, sum(case_buildings) AS case_buildings,
             sum(case_households) AS case_households, jsonb_agg(card ORDER BY code) AS cards,
             ST_Collect(extent) AS extents
      FROM grid_rows GROUP BY community_id),
    community_keys AS (
      SELECT community_id, jsonb_object_agg(code, n) AS counts FROM (
        SELECT r.community_id, k.key AS code, sum(CAST(k.value AS bigint)) AS n
        FROM grid_rows r, jsonb_each_text(r.key_counts) k GROUP BY 1, 2) x
      GROUP BY community_id),
    communities AS (
      INSERT INTO community_summary (community_id, name, extent, grids, households, residents, buildings,
        case_buildings, case_households, compounds, gates, open_gates, staffed_gates, key_counts, grid_cards,
        loose_compounds)
      SELECT c.id, c.name,
             ST_ConvexHull(ST_Collect(ARRAY[c.geom, pg.extents, loose.geoms, loose_gates.geoms])),
             coalesce(pg.grids, 0), coalesce(pg.households, 0), coalesce(pg.residents, 0),
             coalesce(pg.buildings, 0), coalesce(pg.case_buildings, 0), coalesce(pg.case_households, 0),
             (SELECT count(*) FROM cp WHERE cp.community_id = c.id),
             coalesce(gates.n, 0), coalesce(gates.open, 0), coalesce(gates.staffed, 0),
             coalesce(k.counts, '{}'::jsonb), coalesce(pg.cards, '[]'::jsonb), coalesce(loose.ids, '{}')
      FROM c LEFT JOIN per_community pg ON pg.community_id = c.id
      LEFT JOIN community_keys k ON k.community_id = c.id
      LEFT JOIN cp_of loose ON loose.community_id = c.id AND loose.grid_id IS NULL
      LEFT JOIN gt_of loose_gates ON loose_gates.community_id = c.id AND loose_gates.grid_id IS NULL
      LEFT JOIN (SELECT community_id, sum(n) AS n, sum(open) AS open, sum(staffed) AS staffed
                 FROM gt_of GROUP BY community_id) gates ON gates.community_id = c.id
      RETURNING community_id)
    INSERT INTO grid_summary (grid_id, community_id, extent, households, residents, buildings, case_buildings,
      case_households, compounds, gates, open_gates, staffed_gates, key_counts, key_households, key_persons,
      card, compound_ids)
    SELECT grid_id, community_id, extent, households, residents, buildings, case_buildings, case_households,
           compounds, gates, open_gates, staffed_gates, key_counts, key_households, key_persons, card,
           compound_ids
    FROM grid_rows WHERE community_id IN (SELECT community_id FROM communities)
"""

SUMMARY = kept_table(
    "community_summary", (), state="community_summary_state", dirty="community_summary_dirty",
    insert_sql=_SUMMARY_INSERT, key="community_id", parent="community",
)


def ensure_summary_fresh(session: Session) -> None:
    """Repair the kept summary first when anything changed (for readers other than the preview,
    which learns it in its own statement)."""
    kept.ensure_fresh(session, SUMMARY)


def refresh_community_summary(session: Session, *, full: bool = False) -> KeptRefresh:
    """Bring the kept impact summary per community up to date with the rows, in the caller's
    transaction: the communities the change log names, or everything (gridmap.services.kept)."""
    return kept.refresh(session, SUMMARY, full)


# One statement, one round trip. The parts:
# - comm: the communities whose kept extent (0015) meets the area grown by the gate distance;
#   those whose extent the area covers count as one kept row each: all their grids, buildings,
#   compounds and gates lie inside. Only the others (cut) are looked at grid by grid:
# - gs: their grids whose kept extent meets the reach; the area covers the extent of some
#   (cover 2: the grid with its compounds and gates counts as its kept row), or the grid itself
#   (cover 1: its buildings count as its kept row), or cuts it (cover 0);
# - cut_inside: in the other grids the area touches, buildings of which at least a share (a
#   setting) of the footprint lies in the area; buildings are read by grid, and ST_Intersection
#   runs only on those the boundary cuts;
# - keys: key persons by category from the kept rows and, for those buildings, the per-building
#   counts (0008), which also give the buildings with cases;
# - grid_rows: the grids with something inside, from their kept cards (code, name, leader);
# - compounds: those of the grids whose extent the area does not cover, and the loose ones of the
#   cut communities, one by one (those the area meets); their gates within a distance of the area
#   (a generous distance in degrees narrows, geography measures the rest); live areas it overlaps.
# ``stale``: the kept summary lags behind a change; the caller repairs it and asks again.
# The area is the FIRST argument of every predicate: PostGIS caches a prepared geometry only for
# the argument that repeats, and ST_Covers(area, b) runs 4x faster than ST_CoveredBy(b, area).
_IMPACT_SQL = text(  # ({stale}: the kept summary's own check, gridmap.services.kept)
    """
    WITH area AS MATERIALIZED (  -- also as geography, once: cast on every row, it was ~20 µs a gate
      SELECT g, CAST(g AS geography) AS gg FROM (SELECT ST_GeomFromEWKB(:wkb) AS g) x),
    reach AS MATERIALIZED (  -- the area grown by the gate distance, generously (degrees of longitude)
      SELECT ST_Buffer(g, :dist / (111320.0 * cos(radians(ST_Y(ST_Centroid(g))))), 4) AS g FROM area),
    comm AS MATERIALIZED (
      SELECT s.*, ST_Covers(a.g, s.extent) AS whole
      FROM community_summary s, area a, reach r WHERE ST_Intersects(r.g, s.extent)),
    whole_comm AS MATERIALIZED (SELECT * FROM comm WHERE whole),
    cut_comm AS MATERIALIZED (
      SELECT community_id AS id, name, households, loose_compounds FROM comm WHERE NOT whole),
    gs AS MATERIALIZED (  -- read by community (OFFSET 0: not through a spatial index); cover:
      -- 2 the area covers the grid's extent, 1 the grid, 0 it cuts the grid, NULL only near
      SELECT x.grid_id, x.community_id, c.name AS community_name, c.households AS community_households,
             x.households, x.residents, x.buildings, x.case_buildings, x.case_households, x.compounds,
             x.gates, x.open_gates, x.staffed_gates, x.key_counts, x.card, x.compound_ids,
             CASE WHEN ST_Covers(a.g, x.extent) THEN 2 WHEN ST_Covers(a.g, g.geom) THEN 1
                  WHEN ST_Intersects(a.g, g.geom) THEN 0 END AS cover
      FROM cut_comm c CROSS JOIN LATERAL (SELECT * FROM grid_summary s WHERE s.community_id = c.id OFFSET 0) x
      JOIN grid g ON g.id = x.grid_id, area a, reach r
      WHERE ST_Intersects(r.g, x.extent)),
    whole AS MATERIALIZED (SELECT * FROM gs WHERE cover >= 1),
    cand AS MATERIALIZED (  -- only the buildings of the grids the boundary cuts, read by grid
      -- (OFFSET 0 keeps the planner from reading them by the spatial index instead: at city scale
      -- that finds every building of the area, ~28,000 for a 5 km radius, to keep ~1,200)
      SELECT b.id, b.grid_id, b.geom, b.households, b.residents
      FROM gs t
      CROSS JOIN LATERAL (SELECT * FROM building b WHERE b.grid_id = t.grid_id OFFSET 0) b, area a
      WHERE t.cover = 0 AND ST_Intersects(a.g, b.geom)),
    cut_inside AS MATERIALIZED (
      SELECT c.id, c.grid_id, c.households, c.residents FROM cand c, area a
      WHERE CASE WHEN ST_Covers(a.g, c.geom) THEN true
                 ELSE ST_Area(ST_Intersection(c.geom, a.g)) >= :share * ST_Area(c.geom) END),
    counts_inside AS MATERIALIZED (  -- their per-category counts (0008), one probe per building
      SELECT bk.building_id, bk.category_id, bk.n, i.households
      FROM cut_inside i JOIN building_key_count bk ON bk.building_id = i.id WHERE bk.n > 0),
    keys AS MATERIALIZED (  -- summed by category id first: ~20 rows to join, not one per building
      SELECT kc.code, x.n
      FROM (SELECT category_id, sum(n) AS n FROM counts_inside GROUP BY category_id) x
      JOIN key_person_category kc ON kc.id = x.category_id
      UNION ALL
      SELECT k.key, CAST(k.value AS bigint) FROM whole w, jsonb_each_text(w.key_counts) k
      UNION ALL
      SELECT k.key, CAST(k.value AS bigint) FROM whole_comm w, jsonb_each_text(w.key_counts) k),
    case_buildings AS MATERIALIZED (
      SELECT DISTINCT building_id AS id, households FROM counts_inside
      WHERE category_id IN (SELECT id FROM key_person_category WHERE is_case)),
    grid_rows AS MATERIALIZED (  -- per grid with something inside: its kept card (code, name,
      -- leader) and what lies inside; one grouping, not a join of the two lists
      SELECT grid_id, max(community_id) AS community_id, max(community_name) AS community_name,
             max(community_households) AS community_households, sum(b) AS buildings, sum(h) AS households,
             (array_agg(card) FILTER (WHERE card IS NOT NULL))[1] AS card
      FROM (SELECT grid_id, community_id, community_name, community_households, card,
                   CASE WHEN cover >= 1 THEN buildings ELSE 0 END AS b,
                   CASE WHEN cover >= 1 THEN households ELSE 0 END AS h, cover >= 1 AS counted
            FROM gs WHERE cover IS NOT NULL
            UNION ALL
            SELECT grid_id, NULL, NULL, NULL, NULL, 1, households, true FROM cut_inside) x
      GROUP BY grid_id HAVING bool_or(counted)),
    communities AS (
      SELECT community_id AS id, community_name AS name, sum(households) AS households_inside,
             community_households AS households_total
      FROM grid_rows GROUP BY community_id, community_name, community_households
      UNION ALL
      SELECT community_id, name, households, households FROM whole_comm WHERE grids > 0),
    one_by_one AS MATERIALIZED (  -- compounds of grids the area cuts, and those of no grid
      SELECT p.id, p.geom
      FROM (SELECT unnest(compound_ids) AS id FROM gs WHERE cover IS DISTINCT FROM 2
            UNION ALL
            SELECT unnest(loose_compounds) FROM cut_comm) x
      JOIN compound p ON p.id = x.id),
    gates AS (
      SELECT ga.is_open,
             ga.id IN (SELECT ck.gate_id FROM checkpoint ck WHERE ck.active) AS staffed  -- hashed once
      FROM one_by_one o
      CROSS JOIN LATERAL (SELECT * FROM gate g WHERE g.compound_id = o.id OFFSET 0) ga, area a, reach r
      WHERE ST_Intersects(r.g, ga.geom)
        AND CASE WHEN ST_Intersects(a.g, ga.geom) THEN true
                 ELSE ST_DWithin(CAST(ga.geom AS geography), a.gg, :dist, false) END),
    compounds AS MATERIALIZED (  -- inside when their interiors meet: intersecting and not only touching
      SELECT x.whole, x.whole OR NOT ST_Touches(a.g, x.geom) AS inside
      FROM (SELECT ST_Covers(a.g, o.geom) AS whole, o.geom FROM one_by_one o, area a
            WHERE ST_Intersects(a.g, o.geom)) x, area a),
    kept AS MATERIALIZED (  -- what the covered extents hold
      SELECT sum(compounds) AS compounds, sum(gates) AS gates, sum(open_gates) AS open_gates,
             sum(staffed_gates) AS staffed_gates
      FROM (SELECT compounds, gates, open_gates, staffed_gates FROM gs WHERE cover = 2
            UNION ALL
            SELECT compounds, gates, open_gates, staffed_gates FROM whole_comm) x),
    overlapping AS (
      SELECT ca.area_key, ca.version, ca.name, rc.code, rc.name_zh, rc.name_en
      FROM controlled_area ca JOIN risk_class rc ON rc.id = ca.risk_class_id, area a
      WHERE ca.ended_at IS NULL
        AND ca.version = (SELECT max(v.version) FROM controlled_area v WHERE v.area_key = ca.area_key)
        AND (CAST(:exclude_key AS integer) IS NULL OR ca.area_key <> CAST(:exclude_key AS integer))
        AND ST_Intersects(a.g, ca.geom) AND NOT ST_Touches(a.g, ca.geom))
    SELECT
      ({stale}) AS stale,
      (SELECT coalesce(sum(buildings), 0) FROM grid_rows) + (SELECT coalesce(sum(buildings), 0) FROM whole_comm)
        AS buildings,
      (SELECT coalesce(sum(households), 0) FROM whole) + (SELECT coalesce(sum(households), 0) FROM cut_inside)
        + (SELECT coalesce(sum(households), 0) FROM whole_comm) AS households,
      (SELECT coalesce(sum(residents), 0) FROM whole) + (SELECT coalesce(sum(residents), 0) FROM cut_inside)
        + (SELECT coalesce(sum(residents), 0) FROM whole_comm) AS residents,
      (SELECT coalesce(json_object_agg(code, n ORDER BY code), '{}'::json)
         FROM (SELECT code, sum(n) AS n FROM keys GROUP BY code HAVING sum(n) > 0) x) AS key_persons,
      (SELECT count(*) FROM case_buildings) + (SELECT coalesce(sum(case_buildings), 0) FROM whole)
        + (SELECT coalesce(sum(case_buildings), 0) FROM whole_comm) AS case_buildings,
      (SELECT coalesce(sum(households), 0) FROM case_buildings) + (SELECT coalesce(sum(case_households), 0) FROM whole)
        + (SELECT coalesce(sum(case_households), 0) FROM whole_comm) AS case_households,
      (SELECT coalesce(json_agg(x.card ORDER BY x.card->>'code'), '[]'::json) FROM (
         SELECT card || jsonb_build_object('buildings', buildings, 'households', households) AS card FROM grid_rows
         UNION ALL
         SELECT card FROM whole_comm w, jsonb_array_elements(w.grid_cards) card) x) AS grids,
      (SELECT coalesce(json_agg(json_build_object(
          'id', id, 'name', name, 'households_inside', households_inside, 'households_total', households_total)
          ORDER BY id), '[]'::json) FROM communities) AS communities,
      (SELECT count(*) FROM gates) + (SELECT coalesce(gates, 0) FROM kept) AS gates,
      (SELECT count(*) FROM gates WHERE is_open) + (SELECT coalesce(open_gates, 0) FROM kept) AS open_gates,
      (SELECT count(*) FROM gates WHERE is_open AND staffed) + (SELECT coalesce(staffed_gates, 0) FROM kept)
        AS staffed,
      (SELECT count(*) FROM compounds WHERE inside) + (SELECT coalesce(compounds, 0) FROM kept) AS compounds,
      (SELECT count(*) FROM compounds WHERE inside AND NOT whole) AS compounds_cut,
      (SELECT coalesce(json_agg(o ORDER BY o.area_key), '[]'::json) FROM overlapping o) AS overlaps,
      CASE WHEN :with_ids THEN (SELECT coalesce(array_agg(id ORDER BY id), '{}')
         FROM (SELECT b.id FROM whole w JOIN building b ON b.grid_id = w.grid_id
               UNION ALL SELECT id FROM cut_inside
               UNION ALL SELECT b.id FROM whole_comm wc JOIN grid g ON g.community_id = wc.community_id
                 JOIN building b ON b.grid_id = g.id) x)
      END AS building_ids
    """.replace("{stale}", SUMMARY.sql["stale"].text)
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
