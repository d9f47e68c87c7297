"""Map layers out of PostGIS: GeoJSON and geobuf for the maps, facts for the side panel, the legend.

Every layer is built by PostgreSQL itself (``json_build_object`` + ``ST_AsGeoJSON`` + ``json_agg``,
or ``ST_AsGeobuf``): one query per layer and no geometry ever passes through Python objects.
``layer_body`` hands the bytes on unparsed, for the web route that only forwards them.

A whole city (issue 8: ~10,000 grids, ~200,000 buildings, ~4,000,000 households, ~660,000 key
households) cannot be sent to a browser as it is stored; the maps ask for a ``View``:

* Polygon layers (district … grid, compound, controlled area) are generalised for the map's zoom
  band (``zoom_band``): ``ST_SimplifyPreserveTopology`` with a tolerance of ``map_simplify_px``
  screen pixels at that zoom, vertices snapped to a quarter of it. Computed per request rather
  than kept in generalised columns: for the whole city's grids it costs ~0.1 s in PostgreSQL, the
  answer is cached by the browser under an ETag of the data version, and no trigger or migration
  has to keep copies of every polygon in step with the area editor.
* Detail layers (buildings, gates, key households, compounds, service points:
  ``map_viewport_min_zoom``) are sent only for the map's viewport, index-backed
  (``ST_Intersects`` with ``ST_MakeEnvelope``, at most ``map_viewport_max_features``), and only
  from their minimum zoom on; below it the answer is empty without a query.
* Geobuf rather than vector tiles (``ST_AsMVT``): dash-leaflet 1.1.3 draws geobuf in its GeoJSON
  component, which keeps per-feature clicks, tooltips and the ``hideout`` styling the pages use;
  a vector-tile layer would need a plugin and restyle by other means. ``ST_AsGeobuf`` keeps
  numbers and strings: booleans arrive as "t"/"f", JSON objects as text.
* ``layer_etag`` is known before the layer is read (data version + parameters + area + a clock
  bucket), so a revalidation costs one tiny query, not the layer's.

Risk classes: the current class of a community is the strictest (``risk_class.severity``) of its
assignments valid now; a grid has its own when it has one (e.g. a sealed area), otherwise it takes
its community's. Buildings show the class of their grid.

Key persons are personal data: the ``key_household`` layer aggregates them per household to a
point with counts by category; names, phones, ID numbers never reach the map.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.config import Settings
from gridmap.db.models import SRID
from gridmap.domain.errors import InvalidInput, NotFound
from gridmap.domain.reference import SERVICE_POINT_KINDS, STAFF_ROLES
from gridmap.services.access import Principal, in_area, scope_filter_sql  # access (issue 7)
from gridmap.services.impact import ensure_summary_fresh

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

class _Layer(NamedTuple):
    """How one layer is read: CTEs it needs ("" for none), its geometry column, its properties as
    (name, SQL expression) pairs, the FROM clause and a WHERE condition ("true" for all rows). All
    code: values only ever go in as bound parameters.
    ``{name}`` in an expression is the language's name column of risk_class."""

    ctes: str
    column: str  # the geometry
    columns: tuple[tuple[str, str], ...]
    table: str  # the FROM clause: the layer's table and its joins
    where: str = "true"
    polygons: bool = False  # generalised per zoom band


_RISK_COLUMNS = (("risk", "r.code"), ("risk_scheme", "r.scheme"), ("risk_name", "r.{name}"),
                 ("color", "r.color"), ("severity", "r.severity"))

_LAYERS: dict[str, _Layer] = {
    "district": _Layer(
        "", "d.geom",
        (("id", "d.id"), ("code", "d.code"),
         ("name", "CASE WHEN :lang = 'en' THEN coalesce(d.name_en, d.name) ELSE d.name END")),
        "district d", polygons=True,
    ),
    "subdistrict": _Layer(
        "", "s.geom", (("id", "s.id"), ("code", "s.code"), ("name", "s.name")), "subdistrict s", polygons=True,
    ),
    "community": _Layer(
        _RISK_CTES, "c.geom",
        (("id", "c.id"), ("code", "c.code"), ("name", "c.name"), ("kind", "c.kind"),
         ("households", "coalesce(t.households, 0)"), ("residents", "coalesce(t.residents, 0)"), *_RISK_COLUMNS),
        """community c
           LEFT JOIN community_risk r ON r.community_id = c.id
           LEFT JOIN (SELECT community_id, sum(households) AS households, sum(residents) AS residents
                      FROM grid GROUP BY community_id) t ON t.community_id = c.id""",
        polygons=True,
    ),
    "grid": _Layer(
        _RISK_CTES, "g.geom",
        (("id", "g.id"), ("code", "g.code"), ("name", "g.name"), ("community", "c.name"),
         ("households", "g.households"), ("residents", "g.residents"), *_RISK_COLUMNS,
         ("risk_inherited", "r.inherited")),
        """grid g
           JOIN community c ON c.id = g.community_id
           LEFT JOIN grid_risk r ON r.grid_id = g.id""",
        polygons=True,
    ),
    "compound": _Layer(
        "", "p.geom", (("id", "p.id"), ("code", "p.code"), ("name", "p.name")), "compound p", polygons=True,
    ),
    "building": _Layer(
        _RISK_CTES, "b.geom",
        (("id", "b.id"), ("code", "b.code"), ("name", "b.name"), ("floors", "b.floors"),
         ("households", "b.households"), ("residents", "b.residents"), ("risk", "r.code"),
         ("risk_name", "r.{name}"), ("color", "r.color"), ("severity", "r.severity")),
        "building b LEFT JOIN grid_risk r ON r.grid_id = b.grid_id",
    ),
    "gate": _Layer(
        "", "t.geom",
        (("id", "t.id"), ("code", "p.code || '-' || t.id"), ("name", "p.name || t.name"), ("kind", "t.kind"),
         ("is_open", "t.is_open"),
         ("checkpoint", "EXISTS (SELECT 1 FROM checkpoint k WHERE k.gate_id = t.id AND k.active)")),
        "gate t JOIN compound p ON p.id = t.compound_id",
    ),
    "checkpoint": _Layer(
        "", "k.geom",
        (("id", "k.id"), ("code", "'CP' || k.id"), ("name", "k.name"), ("active", "k.active"),
         ("shifts_per_day", "k.shifts_per_day"), ("staff_per_shift", "k.staff_per_shift")),
        "checkpoint k",
    ),
    "service_point": _Layer(
        "", "s.geom",
        (("id", "s.id"), ("code", "'SP' || s.id"), ("name", "s.name"), ("kind", "s.kind"),
         ("capacity", "s.capacity"), ("hours", "s.hours")),
        "service_point s",
    ),
    # One point per household with key persons: counts only, never who they are.
    "key_household": _Layer(
        """per_category AS (
               SELECT kp.household_id, cat.code, count(DISTINCT kp.id) AS n,
                      bool_or(cat.vulnerable) AS vulnerable, bool_or(cat.is_case) AS is_case
               FROM key_person kp
               JOIN key_person_category_link l ON l.key_person_id = kp.id
               JOIN key_person_category cat ON cat.id = l.category_id
               {household_filter}
               GROUP BY kp.household_id, cat.code
           ),
           per_household AS (
               SELECT household_id, json_object_agg(code, n ORDER BY code) AS categories,
                      bool_or(vulnerable) AS vulnerable, bool_or(is_case) AS is_case
               FROM per_category GROUP BY household_id
           )""",
        "h.geom",
        (("id", "h.id"), ("code", "b.code"), ("name", "b.name"),
         ("persons", "(SELECT count(*) FROM key_person kp WHERE kp.household_id = h.id)"),
         ("categories", "coalesce(ph.categories, '{{}}'::json)"),
         ("vulnerable", "coalesce(ph.vulnerable, false)"), ("case", "coalesce(ph.is_case, false)")),
        """household h
           JOIN building b ON b.id = h.building_id
           LEFT JOIN per_household ph ON ph.household_id = h.id""",
        "EXISTS (SELECT 1 FROM key_person kp WHERE kp.household_id = h.id)",
    ),
    # Key households counted per grid, one point each: what the map shows of them while zoomed out,
    # below the zoom from which each household is drawn (``map_viewport_max_zoom``). Counts only,
    # kept per grid (migration 0015: ``grid_summary``, repaired first when anything changed); a
    # city-centre viewport at zoom 14 (~2,300 grids) counted through 4 M households took ~1.5 s.
    "key_household_grid": _Layer(
        "",
        "ST_PointOnSurface(g.geom)",
        (("id", "g.id"), ("code", "g.code"), ("name", "g.name"), ("households", "s.key_households"),
         ("persons", "s.key_persons"), ("vulnerable", "coalesce(f.vulnerable, false)"),
         ("case", "coalesce(f.is_case, false)")),
        """grid g
           JOIN grid_summary s ON s.grid_id = g.id AND s.key_persons > 0
           LEFT JOIN LATERAL (  -- the grid's categories present (its rows of grid_key_count, by index)
             SELECT bool_or(cat.is_case) AS is_case, bool_or(cat.vulnerable) AS vulnerable
             FROM grid_key_count gk JOIN key_person_category cat ON cat.id = gk.category_id
             WHERE gk.grid_id = g.id AND gk.n > 0) f ON true""",
    ),
    # Current version of every area that has not been lifted.
    "controlled_area": _Layer(
        "", "a.geom",
        (("id", "a.id"), ("code", "a.area_key"), ("name", "a.name"), ("version", "a.version"),
         ("risk", "rc.code"), ("risk_scheme", "rc.scheme"), ("risk_name", "rc.{name}"), ("color", "rc.color"),
         ("severity", "rc.severity"), ("planned_end", "a.planned_end")),
        "controlled_area a JOIN risk_class rc ON rc.id = a.risk_class_id",
        """a.ended_at IS NULL
           AND a.version = (SELECT max(v.version) FROM controlled_area v WHERE v.area_key = a.area_key)""",
        polygons=True,
    ),
}

LAYERS: tuple[str, ...] = tuple(_LAYERS)
FORMATS = ("geojson", "pbf")
# A FeatureCollection with no features, as geobuf (Data.feature_collection, empty).
EMPTY_GEOBUF = b"\x22\x00"
EMPTY_GEOJSON = '{"type": "FeatureCollection", "features": []}'


def _check_layer(layer: str) -> None:
    if layer not in _LAYERS:
        raise InvalidInput(f"未知图层 / unknown layer {layer!r}", code="unknown_layer")


# --- what part of a layer: zoom band, viewport ------------------------------------------------------

# Degrees of longitude per pixel at zoom 0 (a 256-pixel world).
_DEG_PER_PX_Z0 = 360.0 / 256.0


class View(NamedTuple):
    """What part of a layer a map asks for: its zoom (None: the whole layer as stored) and its
    viewport (west, south, east, north in degrees; None: everywhere)."""

    zoom: float | None = None
    bbox: tuple[float, float, float, float] | None = None


def parse_view(zoom: str | None, bbox: str | None) -> View:
    """A View from the ``z`` and ``bbox`` query parameters; InvalidInput when they make no sense."""
    z = None
    if zoom not in (None, ""):
        try:
            z = float(zoom)
        except ValueError:
            raise InvalidInput(f"缩放级别无效 / bad zoom {zoom!r}", code="bad_view") from None
        if not 0 <= z <= 24:
            raise InvalidInput(f"缩放级别无效 / bad zoom {zoom!r}", code="bad_view")
    box = None
    if bbox not in (None, ""):
        try:
            west, south, east, north = (float(v) for v in bbox.split(","))
        except ValueError:
            raise InvalidInput(f"范围无效 / bad bbox {bbox!r}", code="bad_view") from None
        if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
            raise InvalidInput(f"范围无效 / bad bbox {bbox!r}", code="bad_view")
        box = (west, south, east, north)
    return View(z, box)


def zoom_band(settings: Settings, zoom: float | None) -> int | None:
    """The generalisation band of a map zoom: the band at or below it (below the first, the first);
    None from ``map_full_detail_zoom`` on, or without a zoom (geometry as stored)."""
    if zoom is None or zoom >= settings.map_full_detail_zoom:
        return None
    bands = sorted(settings.map_generalise_zooms)
    if not bands:
        return None
    return max([b for b in bands if b <= zoom], default=bands[0])


def tolerance_deg(settings: Settings, band: int) -> float:
    """Douglas-Peucker tolerance (degrees) for a band: ``map_simplify_px`` pixels at that zoom."""
    return settings.map_simplify_px * _DEG_PER_PX_Z0 / 2**band


def fit_zoom(bounds: list[list[float]], width_px: int) -> float:
    """The zoom at which ``bounds`` ([[south, west], [north, east]]) span ``width_px`` pixels across."""
    span = max(bounds[1][1] - bounds[0][1], 1e-9)
    return math.log2(width_px * _DEG_PER_PX_Z0 / span)


def is_viewport_layer(settings: Settings, layer: str) -> bool:
    return layer in settings.map_viewport_min_zoom


def below_min_zoom(settings: Settings, layer: str, view: View) -> bool:
    """A viewport layer asked for at a zoom below its minimum, or a stand-in layer at or above its
    maximum (``map_viewport_max_zoom``): its answer is empty, without a query."""
    minimum = settings.map_viewport_min_zoom.get(layer)
    maximum = settings.map_viewport_max_zoom.get(layer)
    if view.zoom is None:
        return False
    return (minimum is not None and view.zoom < minimum) or (maximum is not None and view.zoom >= maximum)


def _geometry_sql(spec: _Layer, settings: Settings | None, view: View) -> tuple[str, dict]:
    """The layer's geometry as sent: generalised for the view's band (polygon layers)."""
    band = zoom_band(settings, view.zoom) if settings is not None and spec.polygons else None
    if band is None:
        return spec.column, {}
    tol = tolerance_deg(settings, band)
    # Snapping to a quarter of the tolerance drops digits nobody sees at that zoom; a polygon it
    # would make invalid (rare) keeps the simplified vertices instead.
    column = spec.column
    return (
        "(SELECT CASE WHEN ST_IsValid(sn) THEN sn ELSE si END "
        "FROM (SELECT si, ST_SnapToGrid(si, :gm_snap) AS sn "
        f"FROM (SELECT ST_SimplifyPreserveTopology({column}, :gm_tol) AS si) x) y)",
        {"gm_tol": tol, "gm_snap": tol / 4},
    )


def _digits(params: dict) -> int:
    """GeoJSON decimals: 6 (about 0.1 m) as stored, fewer when snapped coarser."""
    snap = params.get("gm_snap")
    return PRECISION if not snap else max(1, min(PRECISION, math.ceil(-math.log10(snap))))


def _layer_query(
    layer: str, *, lang: str, principal: Principal | None, settings: Settings | None, view: View
) -> tuple[str, str, dict]:
    """(CTEs, the SELECT of the layer's rows with column ``gm_geom`` and its properties, params)."""
    _check_layer(layer)
    spec = _LAYERS[layer]
    name = f"name_{lang}"
    params: dict = {"lang": lang}
    where = [spec.where]
    household_filter = ""
    # access (issue 7): key households (health facts by address) only inside the principal's area.
    if principal is not None and layer == "key_household":
        scope, scope_params = scope_filter_sql(principal, grid_column="b.grid_id")
        where.append(scope)
        params.update(scope_params)
    if view.bbox is not None:
        where.append(f"ST_Intersects({spec.column}, ST_MakeEnvelope(:gm_w, :gm_s, :gm_e, :gm_n, {SRID}))")
        params.update(gm_w=view.bbox[0], gm_s=view.bbox[1], gm_e=view.bbox[2], gm_n=view.bbox[3])
        if layer == "key_household_grid":
            # the grid's box first (indexed: its badge point lies in it), then the point itself
            where.append(f"g.geom && ST_MakeEnvelope(:gm_w, :gm_s, :gm_e, :gm_n, {SRID})")
        if layer == "key_household":
            # the per-household counts only for the households in the bbox, not the whole city
            household_filter = (
                "WHERE kp.household_id IN (SELECT h.id FROM household h "
                f"WHERE ST_Intersects(h.geom, ST_MakeEnvelope(:gm_w, :gm_s, :gm_e, :gm_n, {SRID})))"
            )
    clause, geom_params = _geometry_sql(spec, settings, view)
    params.update(geom_params)
    params["gm_digits"] = _digits(params)
    order = "ORDER BY 1"
    if view.bbox is not None and settings is not None:
        order = "ORDER BY 1 LIMIT :gm_cap"
        params["gm_cap"] = settings.map_viewport_max_features
    condition = " AND ".join(f"({w})" for w in where)
    columns = ", ".join(f'{expr.format(name=name)} AS "{col}"' for col, expr in spec.columns)
    select = (
        f"SELECT {columns}, {clause} AS gm_geom FROM {spec.table} WHERE {condition} {order}"
    )
    return spec.ctes.format(household_filter=household_filter).strip(), select, params


def _kept_fresh(session: Session, layer: str) -> None:
    """A layer read from kept figures has them repaired first when anything changed."""
    if layer == "key_household_grid":
        ensure_summary_fresh(session)


def layer_geojson_text(
    session: Session, layer: str, *, lang: str = "zh", now: datetime | None = None, principal: Principal | None = None,
    view: View | None = None, settings: Settings | None = None,
) -> str:
    """The layer as a GeoJSON FeatureCollection, as JSON text straight from PostgreSQL.

    With a ``principal`` (access, issue 7), key households only inside the principal's area. With a
    ``view`` and ``settings``: polygons generalised for the view's zoom band, only the features
    intersecting its bbox (at most ``map_viewport_max_features``), nothing below a viewport
    layer's minimum zoom.
    """
    _check_layer(layer)
    lang = _lang(lang)
    view = view or View()
    if settings is not None and below_min_zoom(settings, layer, view):
        return EMPTY_GEOJSON
    _kept_fresh(session, layer)
    ctes, select, params = _layer_query(layer, lang=lang, principal=principal, settings=settings, view=view)
    names = [col for col, _ in _LAYERS[layer].columns]
    columns = ", ".join(f"'{col}', q.\"{col}\"" for col in names)
    sql = f"""
        WITH {ctes + "," if ctes else ""}
        q AS ({select})
        SELECT json_build_object(
            'type', 'FeatureCollection',
            'features', coalesce(json_agg(json_build_object(
                'type', 'Feature', 'id', q.id,
                'geometry', ST_AsGeoJSON(q.gm_geom, CAST(:gm_digits AS int))::json,
                'properties', json_build_object({columns})) ORDER BY q.id), '[]'::json)
        )::text
        FROM q
    """
    return session.execute(text(sql), {**params, "now": now}).scalar_one()


def layer_geobuf(
    session: Session, layer: str, *, lang: str = "zh", now: datetime | None = None, principal: Principal | None = None,
    view: View | None = None, settings: Settings | None = None,
) -> bytes:
    """The same FeatureCollection as ``layer_geojson_text``, as geobuf (``ST_AsGeobuf``).

    Geobuf keeps numbers and strings; booleans arrive as "t" / "f" and JSON objects as text
    (assets/gridmap.js reads both forms). The coordinates' precision is what the (snapped)
    geometry needs, at most 6 decimals.
    """
    _check_layer(layer)
    lang = _lang(lang)
    view = view or View()
    if settings is not None and below_min_zoom(settings, layer, view):
        return EMPTY_GEOBUF
    _kept_fresh(session, layer)
    ctes, select, params = _layer_query(layer, lang=lang, principal=principal, settings=settings, view=view)
    sql = f"""
        WITH {ctes + "," if ctes else ""}
        q AS ({select})
        SELECT ST_AsGeobuf(q, 'gm_geom') FROM q
    """
    body = session.execute(text(sql), {**params, "now": now}).scalar_one()
    return bytes(body) if body else EMPTY_GEOBUF


def layer_body(
    session: Session, layer: str, fmt: str, *, lang: str = "zh", now: datetime | None = None,
    principal: Principal | None = None, view: View | None = None, settings: Settings | None = None,
) -> bytes:
    """The layer's bytes in ``fmt`` ("geojson" or "pbf"), for the web route."""
    if fmt == "pbf":
        return layer_geobuf(session, layer, lang=lang, now=now, principal=principal, view=view, settings=settings)
    return layer_geojson_text(
        session, layer, lang=lang, now=now, principal=principal, view=view, settings=settings
    ).encode()


def layer_etag(
    settings: Settings, *, version: int, layer: str, fmt: str, lang: str, view: View,
    principal: Principal | None, at: float,
) -> str:
    """An ETag known before the layer is read: the data version (services.changes, moved by every
    write), the request's parameters, whose area it is cut to, and the clock's bucket of
    ``map_layer_etag_seconds`` (risk classes also change with time)."""
    who = "all" if principal is None else f"{principal.area_level}:{principal.area_id}:{principal.role}"
    bucket = int(at // max(settings.map_layer_etag_seconds, 1))
    key = f"{layer}|{fmt}|{_lang(lang)}|{view.zoom}|{view.bbox}|{who}|{version}|{bucket}"
    return f"{layer}-{version}-" + hashlib.sha1(key.encode()).hexdigest()[:16]


def layer_geojson(
    session: Session, layer: str, *, lang: str = "zh", now: datetime | None = None, principal: Principal | None = None,
    view: View | None = None, settings: Settings | None = None,
) -> dict:
    """The layer as a GeoJSON FeatureCollection (a dict)."""
    return json.loads(
        layer_geojson_text(session, layer, lang=lang, now=now, principal=principal, view=view, settings=settings)
    )


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
    "key_household_grid": _grid_details,  # a grid's count of key households: the grid's facts
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
