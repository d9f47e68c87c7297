"""GCJ-02 ("Mars coordinates", 火星坐标) to WGS84, used only when the user says the file is GCJ-02.

Chinese web maps (Amap/Gaode, Tencent) publish coordinates shifted by the GCJ-02 obfuscation,
a few hundred metres off WGS84. The forward formula is public; it has no closed inverse, so
``gcj02_to_wgs84`` inverts it by fixed-point iteration, which converges to well under a
centimetre in a handful of steps (the offset changes slowly with position). Outside China the
offset is not applied, as every GCJ-02 implementation does.
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

# Krasovsky 1940 ellipsoid, as the published formula uses.
_A = 6378245.0
_EE = 0.00669342162296594323

# Iterate until the forward transform of the estimate is this close to the input (degrees,
# about 1 mm), or give up after _MAX_STEPS (never reached in practice: 3 to 5 steps suffice).
_TOLERANCE_DEG = 1e-8
_MAX_STEPS = 30


def _offset_lat(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    return ret


def _offset_lon(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    return ret


def in_china(lon, lat) -> np.ndarray:
    """Where the GCJ-02 offset applies (the rough bounding box every implementation uses)."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    return (lon >= 72.004) & (lon <= 137.8347) & (lat >= 0.8293) & (lat <= 55.8271)


def wgs84_to_gcj02(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """The published forward transform; arrays or scalars in degrees."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    dlat = _offset_lat(lon - 105.0, lat - 35.0)
    dlon = _offset_lon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    inside = in_china(lon, lat)
    return np.where(inside, lon + dlon, lon), np.where(inside, lat + dlat, lat)


def gcj02_to_wgs84(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of :func:`wgs84_to_gcj02` by iteration: find p with forward(p) == (lon, lat)."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    est_lon, est_lat = lon.copy(), lat.copy()
    for _ in range(_MAX_STEPS):
        fwd_lon, fwd_lat = wgs84_to_gcj02(est_lon, est_lat)
        err_lon, err_lat = lon - fwd_lon, lat - fwd_lat
        est_lon = est_lon + err_lon
        est_lat = est_lat + err_lat
        if max(np.max(np.abs(err_lon), initial=0.0), np.max(np.abs(err_lat), initial=0.0)) < _TOLERANCE_DEG:
            break
    return est_lon, est_lat


def _transform_coords(coords: np.ndarray) -> np.ndarray:
    lon, lat = gcj02_to_wgs84(coords[:, 0], coords[:, 1])
    out = coords.copy()
    out[:, 0] = lon
    out[:, 1] = lat
    return out


def geometry_gcj02_to_wgs84(geom: BaseGeometry | None) -> BaseGeometry | None:
    """Every vertex of ``geom`` moved from GCJ-02 to WGS84; a Z coordinate is kept as it is."""
    if geom is None or geom.is_empty:
        return geom
    return shapely.transform(geom, _transform_coords, include_z=None)
