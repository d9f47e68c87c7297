"""Benchmarks that print figures: the impact preview against the bare indexed query.

The polygons are fixed by a seed: circles (64-gons) around building centres with radii from one
building to a large part of a sub-district, drawn in a metric CRS and brought back to EPSG:4326
the way a drawing on the map arrives.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.config import Settings
from gridmap.services.impact import compute_impact, to_ewkb

# Radii of the fixed polygons, from one building to a large part of a sub-district: the demo
# district is ~2 km across; a city's sub-districts reach ~5 km in radius (issue 8).
RADII_M = (15, 40, 80, 150, 250, 400, 600, 900, 1300, 2000)
CITY_RADII_M = (15, 50, 120, 250, 500, 900, 1500, 2500, 3500, 5000)
SCALE_RADII: dict[str, tuple[int, ...]] = {"demo": RADII_M, "city": CITY_RADII_M}

BARE_SQL = text(
    """
    SELECT count(h.id), coalesce(sum(h.residents), 0)
    FROM building b JOIN household h ON h.building_id = b.id
    WHERE ST_Intersects(b.geom, ST_GeomFromEWKB(:wkb))
    """
)


@dataclass(frozen=True)
class Timing:
    p50_ms: float
    p95_ms: float
    mean_ms: float
    n: int

    def as_dict(self) -> dict:
        return {"p50_ms": round(self.p50_ms, 2), "p95_ms": round(self.p95_ms, 2),
                "mean_ms": round(self.mean_ms, 2), "n": self.n}


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def timing_of(samples: list[float]) -> Timing:
    """Percentiles and mean of samples in milliseconds."""
    return Timing(_percentile(samples, 50), _percentile(samples, 95), statistics.fmean(samples), len(samples))


def sample_calls(calls: list[Callable[[], object]], repeat: int) -> list[list[float]]:
    """Milliseconds of each call, ``repeat`` times, the calls taken in turn on every round."""
    samples: list[list[float]] = [[] for _ in calls]
    for _ in range(repeat):
        for call, mine in zip(calls, samples, strict=True):
            t0 = time.perf_counter()
            call()
            mine.append((time.perf_counter() - t0) * 1000)
    return samples


def time_calls(calls: list[Callable[[], object]], repeat: int) -> Timing:
    return timing_of([ms for mine in sample_calls(calls, repeat) for ms in mine])


def radius_of(i: int, radii: tuple[int, ...] = RADII_M) -> int:
    """The radius of the ``i``-th fixed polygon."""
    return radii[i % len(radii)]


def fixed_polygons(
    session: Session, settings: Settings, count: int = 50, seed: int = 42, radii: tuple[int, ...] = RADII_M
) -> list[BaseGeometry]:
    """``count`` circles around building centres, radii cycling through ``radii``."""
    centres = session.execute(
        text("SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(geom) c FROM building ORDER BY id) s")
    ).all()
    if not centres:
        raise RuntimeError("no buildings: load the demo district first (gridmap demo load)")
    rng = np.random.default_rng(seed)
    fwd = Transformer.from_crs("EPSG:4326", settings.metric_crs, always_xy=True)
    inv = Transformer.from_crs(settings.metric_crs, "EPSG:4326", always_xy=True)
    polygons = []
    for i in range(count):
        lon, lat = centres[int(rng.integers(len(centres)))]
        centre = shapely.transform(shapely.Point(lon, lat), fwd.transform, interleaved=False)
        circle = centre.buffer(radius_of(i, radii), quad_segs=16)
        polygons.append(shapely.transform(circle, inv.transform, interleaved=False))
    return polygons


def bench_impact(
    session: Session, settings: Settings, *, count: int = 50, repeat: int = 3, radii: tuple[int, ...] = RADII_M
) -> dict:
    """The impact preview against the bare household join on the same ``count`` fixed polygons.

    Besides the figures over all polygons: per radius (the issue's targets hold "for every area up
    to a sub-district"), and for the largest radius drawn the speed-up over the bare join.
    """
    polygons = fixed_polygons(session, settings, count, radii=radii)
    wkbs = [to_ewkb(p) for p in polygons]
    # Warm the caches for both paths alike.
    for p, w in zip(polygons, wkbs, strict=True):
        compute_impact(session, p, "sealed", settings)
        session.execute(BARE_SQL, {"wkb": w}).one()
    impact_calls = [lambda p=p: compute_impact(session, p, "sealed", settings) for p in polygons]
    bare_calls = [lambda w=w: session.execute(BARE_SQL, {"wkb": w}).one() for w in wkbs]
    # Every call timed once; the figures over all polygons and per radius come from the same samples.
    impact_ms = sample_calls(impact_calls, repeat)
    bare_ms = sample_calls(bare_calls, repeat)

    def pooled(samples: list[list[float]], chosen: range | list[int]) -> Timing:
        return timing_of([ms for i in chosen for ms in samples[i]])

    impact, bare = pooled(impact_ms, range(count)), pooled(bare_ms, range(count))
    by_radius = {}
    for radius in sorted({radius_of(i, radii) for i in range(count)}):
        chosen = [i for i in range(count) if radius_of(i, radii) == radius]
        by_radius[str(radius)] = {"impact": pooled(impact_ms, chosen).as_dict(),
                                  "bare": pooled(bare_ms, chosen).as_dict()}
    largest = by_radius[str(max(radius_of(i, radii) for i in range(count)))]
    return {
        "polygons": count,
        "repeat": repeat,
        "radii_m": list(radii),
        "impact": impact.as_dict(),
        "bare_household_join": bare.as_dict(),
        "ratio_p95": round(impact.p95_ms / bare.p95_ms, 2) if bare.p95_ms else None,
        "ratio_p50": round(impact.p50_ms / bare.p50_ms, 2) if bare.p50_ms else None,
        "impact_p95_max_per_radius_ms": max(r["impact"]["p95_ms"] for r in by_radius.values()),
        "by_radius_m": by_radius,
        "largest_radius_m": max(radius_of(i, radii) for i in range(count)),
        "impact_largest": largest["impact"],
        "bare_largest": largest["bare"],
        "speedup_p50_largest": (round(largest["bare"]["p50_ms"] / largest["impact"]["p50_ms"], 2)
                                if largest["impact"]["p50_ms"] else None),
    }


# The issues' targets (issue 4 at demo scale, issue 8 at city scale): (path in the bench's JSON,
# "max" or "min", the bound). The paths that a run did not measure are left out.
TARGETS: dict[str, tuple[tuple[str, str, str, float], ...]] = {
    "demo": (
        ("impact_p95_ms", "impact.impact.p95_ms", "max", 150.0),
        ("impact_vs_bare_p95", "impact.ratio_p95", "max", 1.5),
        ("metrics_all_grids_ms", "coverage.metrics_all_grids.p95_ms", "max", 1000.0),
    ),
    "city": (
        ("impact_p95_every_radius_ms", "impact.impact_p95_max_per_radius_ms", "max", 100.0),
        ("impact_vs_bare_largest", "impact.speedup_p50_largest", "min", 10.0),
        ("impact_vs_naive_p95", "city.naive.speedup_p95", "min", 10.0),
        ("metrics_all_grids_ms", "coverage.metrics_all_grids.p95_ms", "max", 2000.0),
        ("coverage_full_ms", "coverage.service_coverage_full.p95_ms", "max", 60000.0),
        ("coverage_incremental_ms", "coverage.service_coverage_incremental.max_ms", "max", 1000.0),
        ("map_first_paint_ms", "city.map.first_paint_cold_max_ms", "max", 3000.0),
        ("map_bytes_gzip", "city.map.bytes_gzip", "max", 5 * 1024 * 1024),
        ("worker_peak_rss_mb", "city.map.worker_peak_rss_after_map_mb", "max", 1024.0),
    ),
}


def _at(result: dict, path: str):
    for key in path.split("."):
        if not isinstance(result, dict) or key not in result:
            return None
        result = result[key]
    return result


def check_targets(result: dict, scale: str) -> dict:
    """Each target of ``scale`` the run measured: its value, its bound and whether it is met."""
    out = {}
    for name, path, kind, bound in TARGETS[scale]:
        value = _at(result, path)
        if isinstance(value, int | float):
            out[name] = {"value": value, kind: bound, "met": value <= bound if kind == "max" else value >= bound}
    return out
