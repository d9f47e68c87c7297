"""Check one imported geometry and apply the repairs that have a single right answer.

Repairs (reported, not errors): a Z coordinate dropped, repeated consecutive points removed,
a Polygon promoted to MultiPolygon for a multipolygon layer (and a one-part MultiPolygon taken
as its Polygon, a one-point MultiPoint as its Point), rings turned to the RFC 7946 orientation
(exterior counter-clockwise, holes clockwise). Anything that needs a guess (a self-intersection,
a bow-tie, a ring with too few points) is an error with GEOS's reason and location, and the
user fixes the source: ``make_valid`` would silently change what the polygon covers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import shapely
from shapely.geometry import MultiPoint, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

# What a layer accepts.
POINT = "point"
POLYGON = "polygon"
MULTIPOLYGON = "multipolygon"
POINT_OR_AREA = "point_or_area"

_TYPE_NAMES = {
    POINT: "点 / Point",
    POLYGON: "面 / Polygon",
    MULTIPOLYGON: "面 / (Multi)Polygon",
    POINT_OR_AREA: "点或面 / Point or (Multi)Polygon",
}


@dataclass(frozen=True)
class Issue:
    code: str
    message: str


@dataclass
class GeometryCheck:
    geom: BaseGeometry | None
    repairs: list[Issue] = field(default_factory=list)
    errors: list[Issue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _fit_type(geom: BaseGeometry, expected: str, check: GeometryCheck) -> BaseGeometry | None:
    if expected == POINT or (expected == POINT_OR_AREA and isinstance(geom, MultiPoint)):
        if isinstance(geom, Point):
            return geom
        if isinstance(geom, MultiPoint) and len(geom.geoms) == 1:
            check.repairs.append(Issue("single_point", "单点多点转为点 / one-point MultiPoint taken as Point"))
            return geom.geoms[0]
    elif expected == POLYGON:
        if isinstance(geom, Polygon):
            return geom
        if isinstance(geom, MultiPolygon) and len(geom.geoms) == 1:
            check.repairs.append(
                Issue("single_polygon", "单部分多面转为面 / one-part MultiPolygon taken as Polygon")
            )
            return geom.geoms[0]
    elif expected == MULTIPOLYGON:
        if isinstance(geom, MultiPolygon):
            return geom
        if isinstance(geom, Polygon):
            check.repairs.append(Issue("promoted_to_multi", "面转为多面 / Polygon promoted to MultiPolygon"))
            return MultiPolygon([geom])
    elif expected == POINT_OR_AREA and isinstance(geom, Point | Polygon | MultiPolygon):
        return geom
    check.errors.append(
        Issue(
            "wrong_geometry_type",
            f"几何类型错误 / wrong geometry type: {geom.geom_type}, 应为 / expected {_TYPE_NAMES[expected]}",
        )
    )
    return None


def check_geometry(geom: BaseGeometry | None, expected: str, *, max_vertices: int) -> GeometryCheck:
    """The geometry as it will be stored, with the repairs made and the errors found."""
    check = GeometryCheck(None)
    if geom is None or geom.is_empty:
        check.errors.append(Issue("empty_geometry", "几何为空 / empty geometry"))
        return check
    if shapely.has_z(geom):
        geom = shapely.force_2d(geom)
        check.repairs.append(Issue("dropped_z", "去掉高程坐标 / Z coordinate dropped"))
    geom = _fit_type(geom, expected, check)
    if geom is None:
        return check
    vertices = int(shapely.get_num_coordinates(geom))
    if vertices > max_vertices:
        check.errors.append(
            Issue(
                "too_many_vertices",
                f"顶点过多 / too many vertices: {vertices} > {max_vertices}; 请先简化 / simplify it first",
            )
        )
        return check
    if isinstance(geom, Point):
        check.geom = geom
        return check
    deduplicated = shapely.remove_repeated_points(geom, 0.0)
    removed = vertices - int(shapely.get_num_coordinates(deduplicated))
    if removed:
        geom = deduplicated
        check.repairs.append(
            Issue("removed_repeated_points", f"删除重复点 / removed {removed} repeated point(s)")
        )
    reason = shapely.is_valid_reason(geom)
    if reason != "Valid Geometry":
        check.errors.append(Issue("invalid_geometry", f"几何无效 / invalid geometry: {reason}"))
        return check
    oriented = shapely.orient_polygons(geom, exterior_cw=False)
    if not shapely.equals_exact(oriented, geom, tolerance=0.0):
        geom = oriented
        check.repairs.append(
            Issue("reoriented_rings", "调整环方向 / ring orientation fixed (exterior counter-clockwise)")
        )
    check.geom = geom
    return check
