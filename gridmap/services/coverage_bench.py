"""Benchmark of the coverage metrics (issue 5): all grids at once, and one service point moved.

The moves run inside savepoints that are rolled back, so the benchmark leaves the data as it
found it whatever the caller does with the transaction. Each move is also checked: the coverage
recomputed in full after the move must equal the coverage before plus the incremental change,
and the kept coverage (migration 0012), repaired after the move, must equal the full recomputation.

The target for the metrics of all grids depends on the scale: ``metrics_target_ms`` for a district
(issue 5), ``metrics_target_city_ms`` from ``metrics_city_grids`` grids on (issue 8).
"""

from __future__ import annotations

import math
import time
from datetime import datetime

import shapely
from shapely import wkb
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.config import Settings
from gridmap.services.bench import time_calls
from gridmap.services.coverage import (
    grid_metrics,
    kept_service_coverage,
    recompute_service_coverage,
    refresh_service_coverage,
    service_coverage,
)

# How far each benchmarked point moves: far enough to change who is within reach.
MOVE_M = 400.0


def _moved_points(session: Session, settings: Settings, count: int) -> list[tuple[int, str]]:
    """``count`` points of the coverage kinds, spread over the id range, the same on every run."""
    rows = session.execute(
        text("SELECT id, kind FROM service_point WHERE kind = ANY(:kinds) ORDER BY id"),
        {"kinds": list(settings.coverage_service_kinds)},
    ).all()
    if not rows:
        return []
    step = max(len(rows) // count, 1)
    return [(r.id, r.kind) for r in rows[::step][:count]]


def bench_coverage(
    session: Session, settings: Settings, now: datetime, *, repeat: int = 3, moves: int = 10
) -> dict:
    grids = session.execute(text("SELECT count(*) FROM grid")).scalar_one()
    households = session.execute(text("SELECT count(*) FROM household")).scalar_one()
    if not grids:
        raise RuntimeError("no grids: load the demo district first (gridmap demo load)")
    grid_metrics(session, settings, now)  # warm the caches
    metrics = time_calls([lambda: grid_metrics(session, settings, now)], repeat)
    full = time_calls([lambda: service_coverage(session, settings)], repeat)
    one_kind = settings.coverage_service_kinds[0]
    full_one = time_calls([lambda: service_coverage(session, settings, kinds=(one_kind,))], repeat)

    full_kept = time_calls([lambda: refresh_service_coverage(session, settings, full=True)], 1)

    incremental_ms: list[float] = []
    repair_ms: list[float] = []
    checked: list[int] = []
    consistent = True
    for point_id, kind in _moved_points(session, settings, moves):
        savepoint = session.begin_nested()
        try:
            before = service_coverage(session, settings, kinds=(kind,))
            old = wkb.loads(bytes(session.execute(
                text("SELECT ST_AsBinary(geom) FROM service_point WHERE id = :id"), {"id": point_id}
            ).scalar_one()))
            session.execute(
                text("UPDATE service_point SET geom = ST_Translate(geom, :dx, 0) WHERE id = :id"),
                {"id": point_id, "dx": MOVE_M / (111_320.0 * math.cos(math.radians(shapely.centroid(old).y)))},
            )
            t0 = time.perf_counter()
            change = recompute_service_coverage(session, settings, point_id, old)
            incremental_ms.append((time.perf_counter() - t0) * 1000)
            checked.append(change.households_checked)
            repair_ms.append(refresh_service_coverage(session, settings).ms)
            after = service_coverage(session, settings, kinds=(kind,))
            expected = {g: dict(k) for g, k in before.items()}
            for d in change.grids:
                expected.setdefault(d.grid_id, {kind: 0})[kind] += d.gained - d.lost
            kept = {g: k[kind] for g, k in kept_service_coverage(session, settings).items() if k.get(kind)}
            consistent = consistent and expected == after and kept == {g: k[kind] for g, k in after.items() if k[kind]}
        finally:
            savepoint.rollback()
    incremental = sorted(incremental_ms)
    repair = sorted(repair_ms)
    target = settings.metrics_target_city_ms if grids >= settings.metrics_city_grids else settings.metrics_target_ms
    return {
        "grids": grids,
        "households": households,
        "metrics_all_grids": metrics.as_dict(),
        "target_ms": target,
        "within_target": metrics.p95_ms <= target,
        "service_coverage_full": full.as_dict(),
        "service_coverage_full_one_kind": {"kind": one_kind, **full_one.as_dict()},
        "service_coverage_kept_full": full_kept.as_dict(),
        "service_point_moves": len(incremental),
        "move_m": MOVE_M,
        "service_coverage_incremental": {
            "p50_ms": round(incremental[len(incremental) // 2], 2) if incremental else None,
            "max_ms": round(incremental[-1], 2) if incremental else None,
            "households_checked_mean": round(sum(checked) / len(checked)) if checked else None,
        },
        "service_coverage_kept_repair": {
            "p50_ms": round(repair[len(repair) // 2], 2) if repair else None,
            "max_ms": round(repair[-1], 2) if repair else None,
        },
        "incremental_matches_full": consistent,
        "distance": f"{settings.service_walk_distance_m:g} m straight-line",
    }
