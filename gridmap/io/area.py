"""Read a drawn or exported area (one polygon) from a file, for ``gridmap impact`` and uploads.

The same checks as any import (gridmap.io.readers, gridmap.io.geometry): CRS read and reprojected,
swapped lat/lon and a missing CRS refused, self-intersections reported with their location, and a
vertex limit of its own (a drawn area with thousands of vertices is a mistake, not a boundary).
"""

from __future__ import annotations

from pathlib import Path

import shapely
from shapely.geometry.base import BaseGeometry

from gridmap.io.geometry import MULTIPOLYGON, check_geometry
from gridmap.io.readers import InvalidFile, check_file, read_vector


def read_area_file(path: Path, *, max_bytes: int, max_vertices: int, gcj02: bool = False) -> BaseGeometry:
    """The area in a vector file as one valid (multi)polygon in EPSG:4326.

    Several polygon features are taken together (their union); anything else is an error with a
    ``code``: file_missing, unknown_format, file_too_large, unreadable_file, bad_crs, no_crs,
    swapped_coordinates, empty_area, not_polygon, invalid_geometry, too_many_vertices.
    """
    suffix = check_file(path, max_bytes)
    if suffix not in (".geojson", ".json", ".gpkg", ".shp", ".zip"):
        raise InvalidFile(f"区域文件须为矢量格式 / an area file must be GeoJSON, GeoPackage or Shapefile, not {suffix}",
                          code="unknown_format")
    source = read_vector(path, max_rows=1000, gcj02=gcj02)
    geoms = [r.geom for r in source.records if r.geom is not None and not r.geom.is_empty]
    if not geoms:
        raise InvalidFile("区域为空 / the file holds no area", code="empty_area")
    parts = []
    for i, geom in enumerate(geoms, start=1):
        check = check_geometry(geom, MULTIPOLYGON, max_vertices=max_vertices)
        if not check.ok:
            issue = check.errors[0]
            code = "not_polygon" if issue.code == "wrong_geometry_type" else issue.code
            where = f" (要素 / feature {i})" if len(geoms) > 1 else ""
            raise InvalidFile(f"{issue.message}{where}", code=code)
        parts.append(check.geom)
    area = shapely.union_all(parts) if len(parts) > 1 else parts[0]
    if shapely.get_num_coordinates(area) > max_vertices:
        raise InvalidFile(
            f"顶点过多 / too many vertices: {shapely.get_num_coordinates(area)} > {max_vertices}; 请先简化 / simplify it",
            code="too_many_vertices",
        )
    return area
