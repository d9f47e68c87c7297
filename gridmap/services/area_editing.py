"""Glue between a drawing on the map and the controlled-area services.

The area editor sends what the commander has drawn as a GeoJSON FeatureCollection: one feature
per polygon in the editor (Leaflet.draw keeps each drawn or loaded polygon as its own layer). Here
it becomes one valid (multi)polygon — each part checked like an imported geometry
(gridmap.io.geometry) and the parts united — before it is previewed (services.impact) or saved
(services.areas). The editing tools that change the drawing are here too: add a whole compound,
building or grid by clicking it, and cut a hole. What they return goes back to the editor as a
FeatureCollection again (``editor_features``).

Nothing here knows about Dash: the page only translates clicks and props into these calls.
"""

from __future__ import annotations

from datetime import datetime

import shapely
from shapely.geometry import MultiPolygon, Point, Polygon, mapping, shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.config import Settings
from gridmap.domain.errors import GridmapError
from gridmap.io.geometry import MULTIPOLYGON, check_geometry
from gridmap.services.access import Principal
from gridmap.services.areas import (
    AreaVersion,
    create_area,
    get_version,
    list_current_areas,
    list_versions,
    save_version,
)
from gridmap.services.impact import check_inside_district, compute_impact, to_ewkb

# Layers whose whole polygon can be added to a drawing with one click: layer → table.
PICKABLE_LAYERS: dict[str, str] = {"compound": "compound", "building": "building", "grid": "grid"}

# Coordinates sent back to the editor: 7 decimals is about 1 cm, finer is noise.
_EDITOR_PRECISION = 7


class DrawingError(GridmapError):
    """The drawing cannot be an area as it is (empty, self-intersecting, too many vertices...)."""

    code = "invalid_drawing"


# --- the drawing as one geometry -------------------------------------------------------------------


def _features(feature_collection: dict | None) -> list[dict]:
    if not feature_collection:
        return []
    features = feature_collection.get("features") or []
    return [f for f in features if isinstance(f, dict) and f.get("geometry")]


def _checked_part(geometry: dict, number: int, count: int, settings: Settings) -> BaseGeometry:
    where = f"（第 {number} 个图形 / shape {number}）" if count > 1 else ""
    try:
        geom = shape(geometry)
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise DrawingError(f"无法读取所绘图形{where} / unreadable shape: {exc}", code="invalid_geometry") from exc
    if not isinstance(geom, Polygon | MultiPolygon):
        raise DrawingError(
            f"区域只能由多边形组成{where} / an area is made of polygons only, not {geom.geom_type}",
            code="not_polygon",
        )
    check = check_geometry(geom, MULTIPOLYGON, max_vertices=settings.max_area_vertices)
    if not check.ok:
        issue = check.errors[0]
        raise DrawingError(f"{issue.message}{where}", code=issue.code)
    return check.geom


def drawing_geometry(feature_collection: dict | None, settings: Settings) -> BaseGeometry:
    """The drawn polygons as one valid (multi)polygon in EPSG:4326.

    Errors (``DrawingError`` with a code): empty_drawing, not_polygon, invalid_geometry (a bow-tie,
    a ring crossing itself; GEOS's reason and location in the message), too_many_vertices.
    """
    features = _features(feature_collection)
    if not features:
        raise DrawingError("还没有绘制区域 / nothing has been drawn yet", code="empty_drawing")
    parts = [_checked_part(f["geometry"], i, len(features), settings) for i, f in enumerate(features, start=1)]
    area = shapely.union_all(parts) if len(parts) > 1 else parts[0]
    if shapely.get_num_coordinates(area) > settings.max_area_vertices:
        raise DrawingError(
            f"顶点过多 / too many vertices: {shapely.get_num_coordinates(area)} > {settings.max_area_vertices}",
            code="too_many_vertices",
        )
    return area


def editor_features(geom: BaseGeometry | None) -> dict:
    """A FeatureCollection with one Polygon feature per part of ``geom``, for the editor to load."""
    polygons: list[Polygon] = []
    if geom is not None and not geom.is_empty:
        if isinstance(geom, Polygon):
            polygons = [geom]
        elif isinstance(geom, MultiPolygon):
            polygons = list(geom.geoms)
        else:  # a union or difference can leave slivers of lines or points: keep the polygons
            polygons = [g for g in getattr(geom, "geoms", []) if isinstance(g, Polygon)]
    features = []
    for polygon in polygons:
        rounded = shapely.set_precision(polygon, 10 ** -_EDITOR_PRECISION)
        if rounded.is_empty:
            continue
        features.append({"type": "Feature", "properties": {}, "geometry": mapping(rounded)})
    return {"type": "FeatureCollection", "features": features}


# --- preview ---------------------------------------------------------------------------------------


def _area_m2(session: Session, geom: BaseGeometry) -> float:
    # Measured on the spheroid (geography), like compare_versions: the one place an area's size is taken.
    return float(
        session.execute(text("SELECT ST_Area(ST_GeomFromEWKB(:wkb)::geography)"), {"wkb": to_ewkb(geom)}).scalar_one()
    )


def _key_person_categories(session: Session, lang: str) -> dict[str, dict]:
    name = "name_en" if lang == "en" else "name_zh"
    rows = session.execute(
        text(f"SELECT code, {name} AS name, vulnerable, is_case, sort_order FROM key_person_category")
    ).all()
    return {r.code: {"name": r.name, "vulnerable": r.vulnerable, "is_case": r.is_case, "order": r.sort_order}
            for r in rows}


def preview(
    session: Session,
    feature_collection: dict | None,
    class_code: str,
    settings: Settings,
    base_area_key: int | None = None,
    *,
    lang: str = "zh",
) -> dict:
    """The impact of the drawing as ``class_code``, as a plain dict for the preview panel.

    The same numbers as ``services.impact.compute_impact`` on the drawn polygon (the area being
    edited, ``base_area_key``, is left out of the overlaps), plus the area in m² and the key-person
    categories named in ``lang`` (``key_person_rows``; counts only). Raises ``DrawingError`` for a
    drawing that is not a valid area and ``ImpactError`` (code ``outside_district``) for one drawn
    outside the district.
    """
    area = drawing_geometry(feature_collection, settings)
    check_inside_district(session, area)
    impact = compute_impact(session, area, class_code, settings, exclude_area_key=base_area_key)
    result = impact.as_dict()
    categories = _key_person_categories(session, lang)
    result["key_person_rows"] = sorted(
        (
            {"code": code, "count": n, "name": categories.get(code, {}).get("name", code),
             "vulnerable": categories.get(code, {}).get("vulnerable", False),
             "is_case": categories.get(code, {}).get("is_case", False)}
            for code, n in impact.key_persons.items()
        ),
        key=lambda r: (categories.get(r["code"], {}).get("order", 999), r["code"]),
    )
    result["area_m2"] = round(_area_m2(session, area), 1)
    return result


# --- the click and cut tools -------------------------------------------------------------------


def _table(layer: str) -> str:
    table = PICKABLE_LAYERS.get(layer)
    if table is None:
        raise DrawingError(
            f"不能整片加入该图层 / cannot add whole features of layer {layer!r}; one of {', '.join(PICKABLE_LAYERS)}",
            code="bad_layer",
        )
    return table


def feature_at(session: Session, layer: str, lon: float, lat: float) -> int | None:
    """The id of the ``layer`` feature under the point (the smallest one where features overlap)."""
    table = _table(layer)
    return session.execute(
        text(
            f"SELECT id FROM {table} WHERE ST_Intersects(geom, ST_GeomFromEWKB(:pt)) "
            "ORDER BY ST_Area(geom), id LIMIT 1"
        ),
        {"pt": to_ewkb(Point(lon, lat))},
    ).scalar()


def union_with_feature(session: Session, geom: BaseGeometry | None, layer: str, feature_id: int) -> BaseGeometry:
    """``geom`` with the whole polygon of one compound, building or grid added to it."""
    table = _table(layer)
    raw = session.execute(
        text(f"SELECT ST_AsBinary(geom) FROM {table} WHERE id = :id"), {"id": feature_id}
    ).scalar()
    if raw is None:
        raise DrawingError(f"没有找到该要素 / no {layer} {feature_id}", code="not_found")
    feature = shapely.from_wkb(bytes(raw))
    if geom is None or geom.is_empty:
        return feature
    return shapely.union(geom, feature)


def cut_hole(geom: BaseGeometry, hole: BaseGeometry) -> BaseGeometry:
    """``geom`` with ``hole`` taken out (a hole inside it, or a bite off its edge)."""
    if not shapely.intersects(geom, hole) or shapely.area(shapely.intersection(geom, hole)) == 0:
        raise DrawingError("挖去的部分不在区域内 / the part to cut lies outside the area", code="hole_outside")
    result = shapely.difference(geom, hole)
    polygons = shapely.get_parts(result)
    polygons = [p for p in polygons if isinstance(p, Polygon) and not p.is_empty]
    if not polygons:
        raise DrawingError("挖去后区域为空 / cutting this leaves nothing of the area", code="cut_everything")
    return polygons[0] if len(polygons) == 1 else MultiPolygon(polygons)


def add_feature_at(
    session: Session, feature_collection: dict | None, layer: str, lon: float, lat: float, settings: Settings
) -> dict:
    """The drawing with the ``layer`` feature under the clicked point added, for the editor."""
    current = drawing_geometry(feature_collection, settings) if _features(feature_collection) else None
    feature_id = feature_at(session, layer, lon, lat)
    if feature_id is None:
        raise DrawingError("这里没有可加入的要素 / there is nothing of that layer here", code="nothing_here")
    return editor_features(union_with_feature(session, current, layer, feature_id))


def cut_drawing(feature_collection: dict | None, settings: Settings) -> dict:
    """Take the shape just drawn in cut mode (``properties.created``) out of the other shapes."""
    features = _features(feature_collection)
    holes = [f for f in features if (f.get("properties") or {}).get("created")]
    rest = [f for f in features if not (f.get("properties") or {}).get("created")]
    if not holes:
        raise DrawingError("没有要挖去的图形 / no shape to cut", code="nothing_to_cut")
    if not rest:
        raise DrawingError("先绘制区域，再挖洞 / draw the area first, then cut a hole in it", code="hole_outside")
    area = drawing_geometry({"features": rest}, settings)
    hole = drawing_geometry({"features": holes}, settings)
    return editor_features(cut_hole(area, hole))


# --- areas to pick and their versions ---------------------------------------------------------------


def _class_names(session: Session, lang: str) -> dict[str, dict]:
    name = "name_en" if lang == "en" else "name_zh"
    rows = session.execute(
        text(f"SELECT code, scheme, {name} AS name, color FROM risk_class ORDER BY (scheme = 'area') DESC")
    ).all()
    names: dict[str, dict] = {}
    for r in rows:  # area classes win over a tier of the same code, as in services.areas
        names.setdefault(r.code, {"name": r.name, "color": r.color, "scheme": r.scheme})
    return names


def _summary(v: AreaVersion, classes: dict[str, dict]) -> dict:
    cls = classes.get(v.class_code, {})
    d = v.as_dict()
    d.pop("geometry")
    d.pop("impact")
    impact = v.impact or {}
    d.update(class_name=cls.get("name", v.class_code), color=cls.get("color", "#78909c"),
             households=impact.get("households"), warnings=len(impact.get("warnings") or []))
    return d


def editing_state(v: AreaVersion) -> dict:
    """What the editor needs to edit ``v``: the version it starts from and its polygons."""
    return {
        "base": {"area_key": v.area_key, "version": v.version, "class_code": v.class_code, "name": v.name,
                 "ended": v.ended_at is not None},
        "geojson": editor_features(shape(v.geometry)),
    }


def area_for_editing(session: Session, area_key: int) -> dict:
    """The latest version of ``area_key``, ready for the editor (``editing_state``)."""
    return editing_state(get_version(session, area_key))


def editable_areas(session: Session, lang: str = "zh") -> list[dict]:
    """The current (not lifted) areas, latest version each, with class name, colour and households."""
    classes = _class_names(session, lang)
    return [_summary(v, classes) for v in list_current_areas(session)]


def version_history(session: Session, area_key: int, lang: str = "zh") -> list[dict]:
    """Every version of ``area_key`` (oldest first) without geometry, with class names."""
    classes = _class_names(session, lang)
    return [_summary(v, classes) for v in list_versions(session, area_key)]


# --- save ------------------------------------------------------------------------------------------


def save_drawing(
    session: Session,
    feature_collection: dict | None,
    class_code: str,
    *,
    settings: Settings,
    author: str,
    now: datetime,
    reason: str = "",
    name: str = "",
    area_key: int | None = None,
    base_version: int | None = None,
    principal: Principal | None = None,
) -> AreaVersion:
    """Save the drawing: a new area, or the next version of ``area_key`` made from ``base_version``.

    Raises what the area services raise (``ReasonRequired``, ``AreaConflict``, ...) and
    ``DrawingError`` for a drawing that is not a valid area.
    """
    if not author.strip():
        raise GridmapError("请填写操作人 / who is saving? fill in the operator", code="author_required")
    area = drawing_geometry(feature_collection, settings)
    check_inside_district(session, area)
    if area_key is None:
        return create_area(session, area, class_code, settings=settings, author=author.strip(), now=now,
                           name=name.strip(), reason=reason.strip(), principal=principal)
    if base_version is None:
        raise GridmapError("缺少编辑所基于的版本 / the version being edited is unknown", code="base_version_required")
    return save_version(session, area_key, base_version, area, class_code, settings=settings, author=author.strip(),
                        now=now, reason=reason.strip(), name=name.strip() or None, principal=principal)


__all__ = [
    "PICKABLE_LAYERS",
    "DrawingError",
    "add_feature_at",
    "area_for_editing",
    "cut_drawing",
    "cut_hole",
    "drawing_geometry",
    "editable_areas",
    "editing_state",
    "editor_features",
    "feature_at",
    "preview",
    "save_drawing",
    "union_with_feature",
    "version_history",
]
