"""Map layers out of PostGIS: GeoJSON for the command map, facts for its side panel, the legend.

The GeoJSON is built by PostgreSQL itself (``json_build_object`` + ``ST_AsGeoJSON`` + ``json_agg``):
one query per layer and no geometry ever passes through Python objects, so a layer of a few
thousand buildings costs one round trip. ``layer_geojson_text`` hands the JSON text on unparsed,
for the web route that only forwards it.

Risk classes: the current class of a community is the strictest (``risk_class.severity``) of its
assignments valid now; a grid has its own when it has one (e.g. a sealed area), otherwise it takes
its community's. Buildings show the class of their grid.

Key persons are personal data: the ``key_household`` layer aggregates them per household to a
point with counts by category; names, phones, ID numbers never reach the map.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.domain.errors import InvalidInput, NotFound
from gridmap.domain.reference import SERVICE_POINT_KINDS, STAFF_ROLES
from gridmap.services.access import Principal, in_area, scope_filter_sql  # access (issue 7)

LANGUAGES = ("zh", "en")

# Coordinates are written with 6 decimals (about 0.1 m): finer is noise, coarser moves buildings.
PRECISION = 6


def _lang(lang: str | None) -> str:
    return lang if lang in LANGUAGES else "zh"


# Current risk per community and per grid (effective: own, else the community's). Parameter :now
# (NULL = the database's now()).
_RISK_CTES = """
cur AS (
    SELECT ra.community_id, ra.grid_id, ra.valid_from, rc.code, rc.scheme, rc.color, rc.severity,
           rc.name_zh, rc.name_en
    FROM risk_assignment ra JOIN risk_class rc ON rc.id = ra.risk_class_id
    WHERE ra.valid_from <= coalesce(CAST(:now AS timestamptz), now())
      AND (ra.valid_to IS NULL OR ra.valid_to > coalesce(CAST(:now AS timestamptz), now()))
),
community_risk AS (
    SELECT DISTINCT ON (community_id) community_id, code, scheme, color, severity, name_zh, name_en
    FROM cur WHERE community_id IS NOT NULL
    ORDER BY community_id, severity DESC, valid_from DESC
),
grid_own_risk AS (
    SELECT DISTINCT ON (grid_id) grid_id, code, scheme, color, severity, name_zh, name_en
    FROM cur WHERE grid_id IS NOT NULL
    ORDER BY grid_id, severity DESC, valid_from DESC
),
grid_risk AS (
    SELECT g.id AS grid_id, (o.grid_id IS NULL) AS inherited,
           coalesce(o.code, c.code) AS code, coalesce(o.scheme, c.scheme) AS scheme,
           coalesce(o.color, c.color) AS color, coalesce(o.severity, c.severity) AS severity,
           coalesce(o.name_zh, c.name_zh) AS name_zh, coalesce(o.name_en, c.name_en) AS name_en
    FROM grid g
    LEFT JOIN grid_own_risk o ON o.grid_id = g.id
    LEFT JOIN community_risk c ON c.community_id = g.community_id
)
"""

# Each layer: the extra CTEs it needs (or ""), and a SELECT of (id, geom, props json).
# {name} is the language's name column of risk_class / key_person_category.
_LAYER_SQL: dict[str, tuple[str, str]] = {
    "district": (
        "",
        """SELECT d.id, d.geom, json_build_object(
               'id', d.id, 'code', d.code,
               'name', CASE WHEN :lang = 'en' THEN coalesce(d.name_en, d.name) ELSE d.name END)
           FROM district d""",
    ),
    "subdistrict": (
        "",
        """SELECT s.id, s.geom, json_build_object('id', s.id, 'code', s.code, 'name', s.name)
           FROM subdistrict s""",
    ),
    "community": (
        _RISK_CTES,
        """SELECT c.id, c.geom, json_build_object(
               'id', c.id, 'code', c.code, 'name', c.name, 'kind', c.kind,
               'households', coalesce(t.households, 0), 'residents', coalesce(t.residents, 0),
               'risk', r.code, 'risk_scheme', r.scheme, 'risk_name', r.{name}, 'color', r.color,
               'severity', r.severity)
           FROM community c
           LEFT JOIN community_risk r ON r.community_id = c.id
           LEFT JOIN (SELECT community_id, sum(households) AS households, sum(residents) AS residents
                      FROM grid GROUP BY community_id) t ON t.community_id = c.id""",
    ),
    "grid": (
        _RISK_CTES,
        """SELECT g.id, g.geom, json_build_object(
               'id', g.id, 'code', g.code, 'name', g.name, 'community', c.name,
               'households', g.households, 'residents', g.residents,
               'risk', r.code, 'risk_scheme', r.scheme, 'risk_name', r.{name}, 'color', r.color,
               'severity', r.severity, 'risk_inherited', r.inherited)
           FROM grid g
           JOIN community c ON c.id = g.community_id
           LEFT JOIN grid_risk r ON r.grid_id = g.id""",
    ),
    "compound": (
        "",
        """SELECT p.id, p.geom, json_build_object('id', p.id, 'code', p.code, 'name', p.name)
           FROM compound p""",
    ),
    "building": (
        _RISK_CTES,
        """SELECT b.id, b.geom, json_build_object(
               'id', b.id, 'code', b.code, 'name', b.name, 'floors', b.floors,
               'households', b.households, 'residents', b.residents,
               'risk', r.code, 'risk_name', r.{name}, 'color', r.color, 'severity', r.severity)
           FROM building b
           LEFT JOIN grid_risk r ON r.grid_id = b.grid_id""",
    ),
    "gate": (
        "",
        """SELECT t.id, t.geom, json_build_object(
               'id', t.id, 'code', p.code || '-' || t.id, 'name', p.name || t.name, 'kind', t.kind,
               'is_open', t.is_open,
               'checkpoint', EXISTS (SELECT 1 FROM checkpoint k WHERE k.gate_id = t.id AND k.active))
           FROM gate t JOIN compound p ON p.id = t.compound_id""",
    ),
    "checkpoint": (
        "",
        """SELECT k.id, k.geom, json_build_object(
               'id', k.id, 'code', 'CP' || k.id, 'name', k.name, 'active', k.active,
               'shifts_per_day', k.shifts_per_day, 'staff_per_shift', k.staff_per_shift)
           FROM checkpoint k""",
    ),
    "service_point": (
        "",
        """SELECT s.id, s.geom, json_build_object(
               'id', s.id, 'code', 'SP' || s.id, 'name', s.name, 'kind', s.kind,
               'capacity', s.capacity, 'hours', s.hours)
           FROM service_point s""",
    ),
    # One point per household with key persons: counts only, never who they are.
    "key_household": (
        """per_category AS (
               SELECT kp.household_id, cat.code, count(DISTINCT kp.id) AS n,
                      bool_or(cat.vulnerable) AS vulnerable, bool_or(cat.is_case) AS is_case
               FROM key_person kp
               JOIN key_person_category_link l ON l.key_person_id = kp.id
               JOIN key_person_category cat ON cat.id = l.category_id
               GROUP BY kp.household_id, cat.code
           ),
           per_household AS (
               SELECT household_id, json_object_agg(code, n ORDER BY code) AS categories,
                      bool_or(vulnerable) AS vulnerable, bool_or(is_case) AS is_case
               FROM per_category GROUP BY household_id
           )""",
        """SELECT h.id, h.geom, json_build_object(
               'id', h.id, 'code', b.code, 'name', b.name,
               'persons', (SELECT count(*) FROM key_person kp WHERE kp.household_id = h.id),
               'categories', coalesce(ph.categories, '{{}}'::json),
               'vulnerable', coalesce(ph.vulnerable, false), 'case', coalesce(ph.is_case, false))
           FROM household h
           JOIN building b ON b.id = h.building_id
           LEFT JOIN per_household ph ON ph.household_id = h.id
           WHERE EXISTS (SELECT 1 FROM key_person kp WHERE kp.household_id = h.id)""",
    ),
    # Current version of every area that has not been lifted.
    "controlled_area": (
        "",
        """SELECT a.id, a.geom, json_build_object(
               'id', a.id, 'code', a.area_key, 'name', a.name, 'version', a.version,
               'risk', rc.code, 'risk_scheme', rc.scheme, 'risk_name', rc.{name}, 'color', rc.color,
               'severity', rc.severity, 'planned_end', a.planned_end)
           FROM controlled_area a JOIN risk_class rc ON rc.id = a.risk_class_id
           WHERE a.ended_at IS NULL
             AND a.version = (SELECT max(v.version) FROM controlled_area v WHERE v.area_key = a.area_key)""",
    ),
}

LAYERS: tuple[str, ...] = tuple(_LAYER_SQL)


def _check_layer(layer: str) -> None:
    if layer not in _LAYER_SQL:
        raise InvalidInput(f"未知图层 / unknown layer {layer!r}", code="unknown_layer")


def layer_geojson_text(
    session: Session, layer: str, *, lang: str = "zh", now: datetime | None = None, principal: Principal | None = None
) -> str:
    """The layer as a GeoJSON FeatureCollection, as JSON text straight from PostgreSQL.

    With a ``principal`` (access, issue 7), key households only inside the principal's area.
    """
    _check_layer(layer)
    lang = _lang(lang)
    ctes, select = _LAYER_SQL[layer]
    ctes = ctes.strip()
    # access (issue 7): key households (health facts by address) only inside the principal's area.
    scope, scope_params = "true", {}
    if principal is not None and layer == "key_household":
        scope, scope_params = scope_filter_sql(principal, grid_column="b.grid_id")
        scope = f"rows.id IN (SELECT h.id FROM household h JOIN building b ON b.id = h.building_id WHERE {scope})"
    sql = f"""
        WITH {ctes + "," if ctes else ""}
        rows (id, geom, props) AS ({select.format(name=f"name_{lang}")})
        SELECT json_build_object(
            'type', 'FeatureCollection',
            'features', coalesce(json_agg(json_build_object(
                'type', 'Feature', 'id', rows.id,
                'geometry', ST_AsGeoJSON(rows.geom, {PRECISION})::json,
                'properties', rows.props) ORDER BY rows.id), '[]'::json)
        )::text
        FROM rows WHERE {scope}
    """
    return session.execute(text(sql), {"lang": lang, "now": now, **scope_params}).scalar_one()


def layer_geojson(
    session: Session, layer: str, *, lang: str = "zh", now: datetime | None = None, principal: Principal | None = None
) -> dict:
    """The layer as a GeoJSON FeatureCollection (a dict)."""
    return json.loads(layer_geojson_text(session, layer, lang=lang, now=now, principal=principal))


def district_bounds(session: Session) -> list[list[float]] | None:
    """[[south, west], [north, east]] of all districts, or None when nothing is loaded."""
    row = session.execute(
        text(
            "SELECT ST_YMin(e), ST_XMin(e), ST_YMax(e), ST_XMax(e) "
            "FROM (SELECT ST_Extent(geom) AS e FROM district) x"
        )
    ).one()
    if row[0] is None:
        return None
    return [[row[0], row[1]], [row[2], row[3]]]


def risk_legend(session: Session, lang: str = "zh") -> list[dict]:
    """The risk classes of the database, tiers first then area classes, milder first."""
    lang = _lang(lang)
    rows = session.execute(
        text(
            f"SELECT scheme, code, name_{lang} AS name, color, severity FROM risk_class "
            "ORDER BY (scheme = 'tier') DESC, scheme, severity, code"
        )
    ).all()
    return [dict(r._mapping) for r in rows]


def service_kinds(lang: str = "zh") -> list[dict]:
    """Kinds of service point with their names, for the legend."""
    i = 0 if _lang(lang) == "zh" else 1
    return [{"code": code, "name": names[i]} for code, names in SERVICE_POINT_KINDS.items()]


def overview(session: Session, lang: str = "zh", *, now: datetime | None = None) -> dict:
    """Totals of the whole map and how many communities / grids are in each risk class now."""
    lang = _lang(lang)
    totals = session.execute(
        text(
            """SELECT (SELECT string_agg(CASE WHEN :lang = 'en' THEN coalesce(name_en, name) ELSE name END, ' / ')
                       FROM district) AS name,
                      (SELECT count(*) FROM subdistrict) AS subdistricts,
                      (SELECT count(*) FROM community) AS communities,
                      (SELECT count(*) FROM grid) AS grids,
                      (SELECT count(*) FROM building) AS buildings,
                      (SELECT coalesce(sum(households), 0) FROM grid) AS households,
                      (SELECT coalesce(sum(residents), 0) FROM grid) AS residents,
                      (SELECT count(*) FROM key_person) AS key_persons,
                      (SELECT count(*) FROM checkpoint WHERE active) AS checkpoints,
                      (SELECT count(*) FROM service_point) AS service_points"""
        ),
        {"lang": lang},
    ).mappings().one()
    classes = _all(
        session,
        f"""WITH {_RISK_CTES}
            SELECT rc.scheme, rc.code, rc.name_{lang} AS name, rc.color, rc.severity,
                   (SELECT count(*) FROM community_risk r WHERE r.scheme = rc.scheme AND r.code = rc.code)
                       AS communities,
                   (SELECT count(*) FROM grid_own_risk r WHERE r.scheme = rc.scheme AND r.code = rc.code)
                       AS grids
            FROM risk_class rc
            ORDER BY (rc.scheme = 'tier') DESC, rc.scheme, rc.severity DESC""",
        {"now": now},
    )
    return {**dict(totals), "risk_classes": classes}


# --- details for the side panel ------------------------------------------------------------------


def _one(session: Session, sql: str, params: dict, layer: str, fid: int) -> dict:
    row = session.execute(text(sql), params).mappings().one_or_none()
    if row is None:
        raise NotFound(f"没有找到要素 {layer} {fid} / no such feature")
    return dict(row)


def _all(session: Session, sql: str, params: dict) -> list[dict]:
    return [dict(r) for r in session.execute(text(sql), params).mappings().all()]


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _key_persons_by_category(session: Session, where: str, params: dict, lang: str) -> list[dict]:
    """Counts of key persons per category (no one's name) for households matching ``where``."""
    return _all(
        session,
        f"""SELECT cat.code, cat.name_{lang} AS name, cat.vulnerable, count(DISTINCT kp.id) AS count
            FROM key_person kp
            JOIN household h ON h.id = kp.household_id
            JOIN building b ON b.id = h.building_id
            JOIN key_person_category_link l ON l.key_person_id = kp.id
            JOIN key_person_category cat ON cat.id = l.category_id
            WHERE {where}
            GROUP BY cat.code, cat.name_{lang}, cat.vulnerable, cat.sort_order
            ORDER BY cat.sort_order""",
        params,
    )


def _key_person_total(session: Session, where: str, params: dict) -> int:
    return session.execute(
        text(
            f"""SELECT count(*) FROM key_person kp
                JOIN household h ON h.id = kp.household_id JOIN building b ON b.id = h.building_id
                WHERE {where}"""
        ),
        params,
    ).scalar_one()


def _risk_of(session: Session, target: str, fid: int, lang: str, now: datetime | None) -> dict | None:
    """The current effective risk class of a community or grid, with its measures."""
    table = "community_risk" if target == "community" else "grid_risk"
    key = "community_id" if target == "community" else "grid_id"
    inherited = "false" if target == "community" else "r.inherited"
    row = session.execute(
        text(
            f"""WITH {_RISK_CTES}
                SELECT r.code, r.scheme, r.name_{lang} AS name, r.color, r.severity,
                       {inherited} AS inherited, rc.measures_{lang} AS measures
                FROM {table} r JOIN risk_class rc ON rc.code = r.code AND rc.scheme = r.scheme
                WHERE r.{key} = :id"""
        ),
        {"id": fid, "now": now},
    ).mappings().one_or_none()
    return dict(row) if row and row["code"] else None


def _district_details(session: Session, fid: int, lang: str, now: datetime | None) -> dict:
    d = _one(
        session,
        """SELECT d.id, d.code, CASE WHEN :lang = 'en' THEN coalesce(d.name_en, d.name) ELSE d.name END AS name,
                  (SELECT count(*) FROM subdistrict s WHERE s.district_id = d.id) AS subdistricts,
                  (SELECT count(*) FROM community c JOIN subdistrict s ON s.id = c.subdistrict_id
                   WHERE s.district_id = d.id) AS communities,
                  (SELECT count(*) FROM grid g JOIN community c ON c.id = g.community_id
                   JOIN subdistrict s ON s.id = c.subdistrict_id WHERE s.district_id = d.id) AS grids,
                  (SELECT coalesce(sum(g.households), 0) FROM grid g JOIN community c ON c.id = g.community_id
                   JOIN subdistrict s ON s.id = c.subdistrict_id WHERE s.district_id = d.id) AS households,
                  (SELECT coalesce(sum(g.residents), 0) FROM grid g JOIN community c ON c.id = g.community_id
                   JOIN subdistrict s ON s.id = c.subdistrict_id WHERE s.district_id = d.id) AS residents
           FROM district d WHERE d.id = :id""",
        {"id": fid, "lang": lang},
        "district",
        fid,
    )
    return d


def _subdistrict_details(session: Session, fid: int, lang: str, now: datetime | None) -> dict:
    return _one(
        session,
        """SELECT s.id, s.code, s.name,
                  (SELECT count(*) FROM community c WHERE c.subdistrict_id = s.id) AS communities,
                  (SELECT count(*) FROM grid g JOIN community c ON c.id = g.community_id
                   WHERE c.subdistrict_id = s.id) AS grids,
                  (SELECT coalesce(sum(g.households), 0) FROM grid g JOIN community c ON c.id = g.community_id
                   WHERE c.subdistrict_id = s.id) AS households,
                  (SELECT coalesce(sum(g.residents), 0) FROM grid g JOIN community c ON c.id = g.community_id
                   WHERE c.subdistrict_id = s.id) AS residents
           FROM subdistrict s WHERE s.id = :id""",
        {"id": fid},
        "subdistrict",
        fid,
    )


def _community_details(session: Session, fid: int, lang: str, now: datetime | None) -> dict:
    d = _one(
        session,
        """SELECT c.id, c.code, c.name, c.kind, c.phone, s.id AS subdistrict_id, s.name AS subdistrict,
                  (SELECT count(*) FROM grid g WHERE g.community_id = c.id) AS grids,
                  (SELECT coalesce(sum(g.households), 0) FROM grid g WHERE g.community_id = c.id) AS households,
                  (SELECT coalesce(sum(g.residents), 0) FROM grid g WHERE g.community_id = c.id) AS residents,
                  (SELECT count(*) FROM compound p WHERE p.community_id = c.id) AS compounds,
                  (SELECT count(*) FROM checkpoint k JOIN gate t ON t.id = k.gate_id
                   JOIN compound p ON p.id = t.compound_id WHERE p.community_id = c.id AND k.active) AS checkpoints
           FROM community c JOIN subdistrict s ON s.id = c.subdistrict_id WHERE c.id = :id""",
        {"id": fid},
        "community",
        fid,
    )
    d["risk"] = _risk_of(session, "community", fid, lang, now)
    d["key_persons"] = _key_persons_by_category(
        session, "b.grid_id IN (SELECT id FROM grid WHERE community_id = :id)", {"id": fid}, lang
    )
    d["key_persons_total"] = _key_person_total(
        session, "b.grid_id IN (SELECT id FROM grid WHERE community_id = :id)", {"id": fid}
    )
    # The community's own assignments and its grids', newest first.
    history = _all(
        session,
        f"""SELECT ra.id, rc.code, rc.scheme, rc.name_{lang} AS name, rc.color, ra.valid_from, ra.valid_to,
                   ra.reason, ra.author, g.name AS grid
            FROM risk_assignment ra JOIN risk_class rc ON rc.id = ra.risk_class_id
            LEFT JOIN grid g ON g.id = ra.grid_id
            WHERE ra.community_id = :id OR g.community_id = :id
            ORDER BY ra.valid_from DESC, ra.id DESC""",
        {"id": fid},
    )
    d["history"] = [{k: _iso(v) for k, v in h.items()} for h in history]
    return d


def _grid_details(session: Session, fid: int, lang: str, now: datetime | None) -> dict:
    d = _one(
        session,
        """SELECT g.id, g.code, g.name, g.households, g.residents, c.id AS community_id, c.name AS community,
                  (SELECT count(*) FROM building b WHERE b.grid_id = g.id) AS buildings
           FROM grid g JOIN community c ON c.id = g.community_id WHERE g.id = :id""",
        {"id": fid},
        "grid",
        fid,
    )
    d["leaders"] = _all(
        session,
        """SELECT s.id, s.name, s.phone FROM staff s JOIN staff_assignment a ON a.staff_id = s.id
           WHERE a.grid_id = :id AND s.role = 'grid_leader' AND s.active ORDER BY s.id""",
        {"id": fid},
    )
    d["staff"] = _all(
        session,
        """SELECT s.role, count(DISTINCT s.id) AS count FROM staff s
           JOIN staff_assignment a ON a.staff_id = s.id
           LEFT JOIN building b ON b.id = a.building_id
           LEFT JOIN household h ON h.id = a.household_id
           LEFT JOIN building hb ON hb.id = h.building_id
           WHERE s.active AND (a.grid_id = :id OR b.grid_id = :id OR hb.grid_id = :id)
           GROUP BY s.role ORDER BY s.role""",
        {"id": fid},
    )
    i = 0 if lang == "zh" else 1
    for s in d["staff"]:
        s["name"] = STAFF_ROLES.get(s["role"], (s["role"], s["role"]))[i]
    d["risk"] = _risk_of(session, "grid", fid, lang, now)
    d["key_persons"] = _key_persons_by_category(session, "b.grid_id = :id", {"id": fid}, lang)
    d["key_persons_total"] = _key_person_total(session, "b.grid_id = :id", {"id": fid})
    return d


def _building_details(session: Session, fid: int, lang: str, now: datetime | None) -> dict:
    d = _one(
        session,
        """SELECT b.id, b.code, b.name, b.floors, b.households, b.residents,
                  g.id AS grid_id, g.name AS grid, p.id AS compound_id, p.name AS compound
           FROM building b JOIN grid g ON g.id = b.grid_id LEFT JOIN compound p ON p.id = b.compound_id
           WHERE b.id = :id""",
        {"id": fid},
        "building",
        fid,
    )
    d["risk"] = _risk_of(session, "grid", d["grid_id"], lang, now)
    d["key_persons"] = _key_persons_by_category(session, "b.id = :id", {"id": fid}, lang)
    d["key_persons_total"] = _key_person_total(session, "b.id = :id", {"id": fid})
    return d


def _compound_details(session: Session, fid: int, lang: str, now: datetime | None) -> dict:
    return _one(
        session,
        """SELECT p.id, p.code, p.name, c.id AS community_id, c.name AS community,
                  (SELECT count(*) FROM gate t WHERE t.compound_id = p.id) AS gates,
                  (SELECT count(*) FROM gate t WHERE t.compound_id = p.id AND t.is_open) AS gates_open,
                  (SELECT count(*) FROM checkpoint k JOIN gate t ON t.id = k.gate_id
                   WHERE t.compound_id = p.id AND k.active) AS checkpoints,
                  (SELECT count(*) FROM building b WHERE b.compound_id = p.id) AS buildings,
                  (SELECT coalesce(sum(b.households), 0) FROM building b WHERE b.compound_id = p.id) AS households,
                  (SELECT coalesce(sum(b.residents), 0) FROM building b WHERE b.compound_id = p.id) AS residents
           FROM compound p JOIN community c ON c.id = p.community_id WHERE p.id = :id""",
        {"id": fid},
        "compound",
        fid,
    )


def _gate_details(session: Session, fid: int, lang: str, now: datetime | None) -> dict:
    d = _one(
        session,
        """SELECT t.id, t.name, t.kind, t.is_open, p.id AS compound_id, p.name AS compound
           FROM gate t JOIN compound p ON p.id = t.compound_id WHERE t.id = :id""",
        {"id": fid},
        "gate",
        fid,
    )
    d["checkpoints"] = _all(
        session,
        """SELECT id, name, shifts_per_day, staff_per_shift, active FROM checkpoint
           WHERE gate_id = :id ORDER BY id""",
        {"id": fid},
    )
    return d


def _checkpoint_details(session: Session, fid: int, lang: str, now: datetime | None) -> dict:
    d = _one(
        session,
        """SELECT k.id, k.name, k.active, k.shifts_per_day, k.staff_per_shift,
                  k.shifts_per_day * k.staff_per_shift AS staff_per_day,
                  t.id AS gate_id, t.name AS gate, t.kind AS gate_kind, t.is_open AS gate_open,
                  p.id AS compound_id, p.name AS compound, c.name AS community
           FROM checkpoint k JOIN gate t ON t.id = k.gate_id JOIN compound p ON p.id = t.compound_id
           JOIN community c ON c.id = p.community_id WHERE k.id = :id""",
        {"id": fid},
        "checkpoint",
        fid,
    )
    d["hours_per_shift"] = round(24 / d["shifts_per_day"], 1)
    return d


def _service_point_details(session: Session, fid: int, lang: str, now: datetime | None) -> dict:
    d = _one(
        session,
        """SELECT s.id, s.name, s.kind, s.capacity, s.hours, c.name AS community
           FROM service_point s LEFT JOIN community c ON c.id = s.community_id WHERE s.id = :id""",
        {"id": fid},
        "service_point",
        fid,
    )
    d["kind_name"] = SERVICE_POINT_KINDS.get(d["kind"], (d["kind"], d["kind"]))[0 if lang == "zh" else 1]
    return d


def _key_household_details(session: Session, fid: int, lang: str, now: datetime | None) -> dict:
    # The household's address and its key persons' counts, never their names.
    d = _one(
        session,
        """SELECT h.id, b.id AS building_id, b.name AS building, g.id AS grid_id, g.name AS grid, h.residents
           FROM household h JOIN building b ON b.id = h.building_id JOIN grid g ON g.id = b.grid_id
           WHERE h.id = :id""",
        {"id": fid},
        "key_household",
        fid,
    )
    d["key_persons"] = _key_persons_by_category(session, "h.id = :id", {"id": fid}, lang)
    d["key_persons_total"] = _key_person_total(session, "h.id = :id", {"id": fid})
    return d


def _controlled_area_details(session: Session, fid: int, lang: str, now: datetime | None) -> dict:
    d = _one(
        session,
        f"""SELECT a.id, a.area_key, a.version, a.name, a.reason, a.author, a.created_at, a.planned_end,
                   a.ended_at, rc.code AS risk, rc.name_{lang} AS risk_name, rc.color,
                   rc.measures_{lang} AS measures, a.impact
            FROM controlled_area a JOIN risk_class rc ON rc.id = a.risk_class_id WHERE a.id = :id""",
        {"id": fid},
        "controlled_area",
        fid,
    )
    return {k: _iso(v) for k, v in d.items()}


_DETAILS = {
    "district": _district_details,
    "subdistrict": _subdistrict_details,
    "community": _community_details,
    "grid": _grid_details,
    "building": _building_details,
    "compound": _compound_details,
    "gate": _gate_details,
    "checkpoint": _checkpoint_details,
    "service_point": _service_point_details,
    "key_household": _key_household_details,
    "controlled_area": _controlled_area_details,
}


def feature_details(
    session: Session, layer: str, id: int, lang: str = "zh", *, now: datetime | None = None,
    principal: Principal | None = None,
) -> dict:
    """Facts about one feature for the side panel; ``layer`` and ``id`` are echoed back."""
    _check_layer(layer)
    lang = _lang(lang)
    details = _DETAILS[layer](session, int(id), lang, now)
    # access (issue 7): a key household outside the principal's area is not theirs to see.
    if principal is not None and layer == "key_household" and not in_area(principal, grid_id=details["grid_id"]):
        raise NotFound(f"没有找到要素 {layer} {id} / no such feature")
    return {"layer": layer, **details, "id": int(id)}
