"""The benchmarks run in CI at demo scale, with small counts, so that they cannot rot (issue 8).

The command runs with ``--polygons 10``: one polygon of every radius of ``bench.RADII_M``.
"""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import text

from gridmap import cli
from gridmap.config import Settings
from gridmap.services import bench_city
from gridmap.services.bench import CITY_RADII_M, RADII_M, bench_impact
from gridmap.services.bench_city import bench_naive

# Labels, not figures.
LABELS = {"scale", "database", "distance", "kind"}


def _leaves(figures, path: str = ""):
    if isinstance(figures, dict):
        for key, value in figures.items():
            yield from _leaves(value, f"{path}.{key}" if path else key)
    elif isinstance(figures, list):
        for i, value in enumerate(figures):
            yield from _leaves(value, f"{path}[{i}]")
    else:
        yield path, figures


def _not_numbers(figures) -> list[str]:
    return [
        f"{path} = {value!r}"
        for path, value in _leaves(figures)
        if path.rsplit(".", 1)[-1] not in LABELS and not isinstance(value, int | float)
    ]


def test_naive_path_answers_like_the_indexed_join_and_is_timed(session, settings):
    result = bench_naive(session, settings, count=5, repeat=1)
    assert _not_numbers(result) == []
    assert result["naive_matches_bare_join"] is True
    assert result["polygons"] == 5 and result["naive_per_request"]["n"] == 5
    households = session.execute(text("SELECT count(*) FROM household")).scalar_one()
    assert result["households"] == households > 0
    for timing in ("impact", "naive_per_request", "naive_cached"):
        assert result[timing]["p95_ms"] >= result[timing]["p50_ms"] > 0
    speedup = result["naive_per_request"]["p95_ms"] / result["impact"]["p95_ms"]  # of the rounded figures
    assert result["speedup_p95"] == pytest.approx(speedup, rel=0.01, abs=0.1)
    assert _not_numbers(bench_impact(session, settings, count=len(RADII_M), repeat=1)) == []


@pytest.mark.browser
def test_gridmap_bench_with_scale_gives_every_figure_as_a_number(database_url, capsys, monkeypatch):
    # The whole command, browser included, with counts small enough for CI.
    full = bench_city.bench_map
    monkeypatch.setattr(bench_city, "bench_map", lambda *a, **k: full(*a, **{**k, "requests": 5, "paints": 1}))
    started = time.monotonic()
    code = cli.main(["bench", "--scale", "demo", "--json", "--polygons", str(len(RADII_M)), "--repeat", "1"],
                    settings=Settings(database_url=database_url))
    out = capsys.readouterr().out
    assert code == 0
    result = json.loads(out)
    assert _not_numbers(result) == []
    city = result["city"]
    assert city["scale"] == "demo"
    assert city["naive"]["naive_matches_bare_join"] is True
    figures = city["map"]
    assert figures["grids"] == city["sizes"]["grids"] > 0
    assert {"grid", "building"} <= set(figures["layers"])
    assert 0 < figures["bytes_gzip"] < figures["bytes_raw"]
    assert figures["first_paint_cold_ms"] > 0 and figures["paint_timeouts"] == 0
    assert figures["first_paint_first_ms"] == figures["first_paint_cold_ms"]  # one paint here: the same visit
    assert figures["worker_peak_rss_after_map_mb"] >= figures["worker_rss_idle_mb"] > 0
    assert figures["throughput"]["changes"]["errors"] == 0 and figures["throughput"]["changes"]["rps"] > 0
    # The targets, each with its value, bound and verdict, for a script to read.
    targets = result["targets"]
    assert set(targets) == {"impact_p95_ms", "impact_vs_bare_p95", "metrics_all_grids_ms"}
    assert targets["impact_p95_ms"]["value"] == result["impact"]["impact"]["p95_ms"]
    assert targets["impact_p95_ms"]["met"] == (result["impact"]["impact"]["p95_ms"] <= 150)
    print(f"gridmap bench --scale demo ran in {time.monotonic() - started:.1f} s")


def test_bench_impact_with_fewer_polygons_than_radii_reports_the_largest_drawn(session, settings):
    result = bench_impact(session, settings, count=3, repeat=1)
    assert _not_numbers(result) == []
    assert result["largest_radius_m"] == RADII_M[2]
    assert sorted(result["by_radius_m"], key=int) == [str(r) for r in RADII_M[:3]]
    assert result["impact_p95_max_per_radius_ms"] == max(r["impact"]["p95_ms"] for r in result["by_radius_m"].values())
    assert result["speedup_p50_largest"] == pytest.approx(
        result["bare_largest"]["p50_ms"] / result["impact_largest"]["p50_ms"], rel=0.02, abs=0.01)


def test_city_radii_reach_a_sub_district(session, settings):
    # Issue 8: "from one building to a whole sub-district of ~5 km radius".
    assert min(CITY_RADII_M) <= 20 and max(CITY_RADII_M) == 5000
    result = bench_impact(session, settings, count=2, repeat=1, radii=CITY_RADII_M)
    assert result["radii_m"] == list(CITY_RADII_M) and result["largest_radius_m"] == CITY_RADII_M[1]


def test_targets_of_the_city_are_checked_from_the_figures():
    from gridmap.services.bench import check_targets

    result = {"impact": {"impact_p95_max_per_radius_ms": 83.2, "speedup_p50_largest": 1.86},
              "coverage": {"metrics_all_grids": {"p95_ms": 1495.3}},
              "city": {"map": {"bytes_gzip": 526913, "first_paint_cold_max_ms": 1803.4}}}
    targets = check_targets(result, "city")
    assert targets["impact_p95_every_radius_ms"] == {"value": 83.2, "max": 100.0, "met": True}
    assert targets["impact_vs_bare_largest"] == {"value": 1.86, "min": 10.0, "met": False}
    assert targets["metrics_all_grids_ms"]["met"] and targets["map_bytes_gzip"]["met"]
    assert "worker_peak_rss_mb" not in targets  # not measured in this run
