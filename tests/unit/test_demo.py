"""The synthetic demo district: deterministic, nested without gaps or overlaps, plausible people."""

from __future__ import annotations

import itertools
import json
import math
import re
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon, box, shape

from gridmap.db import models
from gridmap.domain.demo import (
    TABLES,
    DemoDistrict,
    DemoSpec,
    LocalMetric,
    _absorb_fragments,
    _partition,
    generate_district,
    id_check_digit,
)
from gridmap.domain.errors import InvalidInput
from gridmap.domain.reference import KEY_PERSON_CATEGORIES, RISK_CLASSES, SERVICE_POINT_KINDS, STAFF_ROLES

NOW = datetime(2022, 11, 25, 9, 0, tzinfo=UTC)
TOL_M2 = 1.0  # settings.nesting_tolerance_m2
YUZHONG = Path(__file__).resolve().parents[2] / "data" / "boundaries" / "yuzhong.geojson"

# Measured in the generator's own affine frame: in UTM a sliver on a straight lon/lat edge shows
# as square metres of false gap (see migration 0004).
_TO_METRIC = LocalMetric(106.55, 29.55)
_TO_LONLAT = LocalMetric(106.55, 29.55, inverse=True)

CATEGORY_CODES = {c.code for c in KEY_PERSON_CATEGORIES}
CHILD_CATEGORIES = {"scattered_orphan", "unattended_child", "child_in_difficulty", "left_behind_child"}


def _apply(transformer, geoms):
    arr = np.empty(len(geoms), dtype=object)
    arr[:] = list(geoms)

    def fn(coords):
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(arr, fn)


def metric(rows: list[dict]) -> np.ndarray:
    """The rows' geometries in the metric CRS, as an array."""
    return _apply(_TO_METRIC, [r["geom"] for r in rows])


def irregular_boundary(width_m: float = 3000.0, height_m: float = 3000.0) -> Polygon:
    """A concave lon/lat polygon of about width x height metres near Yuzhong (a bite out of one side)."""
    x0, y0 = _TO_METRIC.transform(106.57, 29.55)
    w, h = width_m, height_m
    ring = [
        (0, 0),
        (0.55 * w, -0.05 * h),
        (w, 0.1 * h),
        (1.05 * w, 0.6 * h),
        (0.7 * w, h),
        (0.45 * w, 0.62 * h),  # the bite: makes clipped Voronoi cells fall apart
        (0.3 * w, 1.02 * h),
        (-0.05 * w, 0.75 * h),
    ]
    poly = Polygon([(x0 + x, y0 + y) for x, y in ring])
    return _apply(_TO_LONLAT, [poly])[0]


@pytest.fixture(scope="module")
def small() -> DemoDistrict:
    return generate_district(irregular_boundary(), DemoSpec.small(), seed=3, now=NOW)


# --- structure ---------------------------------------------------------------------------------------


def test_same_seed_gives_identical_rows_and_another_seed_does_not(small):
    again = generate_district(irregular_boundary(), DemoSpec.small(), seed=3, now=NOW)
    assert again.tables() == small.tables()
    other = generate_district(irregular_boundary(), DemoSpec.small(), seed=4, now=NOW)
    assert other.building != small.building


def test_row_keys_are_the_model_columns(small):
    derived = getattr(models, "DERIVED_COLUMNS", {})
    for table in TABLES:
        if table == "key_person_category_link":
            expected = {"key_person_id", "category_code"}
        else:
            columns = set(models.LAYER_MODELS[table].__table__.columns.keys()) - derived.get(
                table, frozenset()
            )
            if table == "risk_assignment":
                columns = (columns - {"risk_class_id"}) | {"risk_class_code", "risk_scheme"}
            expected = columns
        rows = getattr(small, table)
        if table == "controlled_area":
            assert rows == []
            continue
        assert rows, table
        for row in rows:
            assert set(row) == expected, table


def test_ids_run_from_one_and_foreign_keys_resolve(small):
    ids = {t: {r["id"] for r in getattr(small, t)} for t in TABLES if t != "key_person_category_link"}
    for table, found in ids.items():
        assert found == set(range(1, len(found) + 1)), table
    references = {
        "subdistrict": {"district_id": "district"},
        "community": {"subdistrict_id": "subdistrict"},
        "grid": {"community_id": "community"},
        "compound": {"community_id": "community"},
        "gate": {"compound_id": "compound"},
        "building": {"grid_id": "grid", "compound_id": "compound"},
        "household": {"building_id": "building"},
        "key_person": {"household_id": "household"},
        "key_person_category_link": {"key_person_id": "key_person"},
        "staff": {"community_id": "community"},
        "staff_assignment": {
            "staff_id": "staff",
            "grid_id": "grid",
            "building_id": "building",
            "household_id": "household",
        },
        "risk_assignment": {"community_id": "community", "grid_id": "grid"},
        "checkpoint": {"gate_id": "gate"},
        "service_point": {"community_id": "community"},
    }
    for table, fks in references.items():
        for row in getattr(small, table):
            for column, parent in fks.items():
                assert row[column] is None or row[column] in ids[parent], (table, column, row[column])
    # A building's compound lies in the building's community.
    grid_comm = {g["id"]: g["community_id"] for g in small.grid}
    compound_comm = {c["id"]: c["community_id"] for c in small.compound}
    for b in small.building:
        if b["compound_id"] is not None:
            assert compound_comm[b["compound_id"]] == grid_comm[b["grid_id"]]


def test_geometry_types_and_validity(small):
    kinds = {
        "district": MultiPolygon,
        "subdistrict": MultiPolygon,
        "community": MultiPolygon,
        "grid": MultiPolygon,
        "compound": Polygon,
        "gate": Point,
        "building": Polygon,
        "household": Point,
        "key_person": Point,
        "checkpoint": Point,
    }
    for table, kind in kinds.items():
        for row in getattr(small, table):
            assert isinstance(row["geom"], kind), table
            assert row["geom"].is_valid and not row["geom"].is_empty, table
    for row in small.service_point:
        assert isinstance(row["geom"], Polygon if row["kind"] == "delivery_zone" else Point)
        assert row["geom"].is_valid
    for row in small.staff:
        assert row["geom"] is None or isinstance(row["geom"], Point)
    # lon/lat, near the boundary we gave
    x, y = small.grid[0]["geom"].centroid.coords[0]
    assert 106.5 < x < 106.7 and 29.5 < y < 29.6


def test_codes_are_unique_and_hierarchical(small):
    for table in ("district", "subdistrict", "community", "grid", "compound", "building"):
        codes = [r["code"] for r in getattr(small, table)]
        assert len(codes) == len(set(codes)), table
    by_id = {t: {r["id"]: r for r in getattr(small, t)} for t in ("district", "subdistrict", "community")}
    for s in small.subdistrict:
        assert re.fullmatch(r"500103\d{3}", s["code"]) and s["name"].endswith("街道")
    for c in small.community:
        assert (
            c["code"].startswith(by_id["subdistrict"][c["subdistrict_id"]]["code"]) and len(c["code"]) == 12
        )
        assert c["name"].endswith("社区")
    for g in small.grid:
        assert g["code"] == "G" + by_id["community"][g["community_id"]]["code"] + g["code"][-2:]
    assert all(re.fullmatch(r"B\d{6}", b["code"]) for b in small.building)
    assert len({c["name"] for c in small.community}) == len(small.community)


# --- geometry ---------------------------------------------------------------------------------------


def assert_tiles(parents: list[dict], children: list[dict], fk: str) -> None:
    """Children lie in their parent, siblings do not overlap, and together they leave no gap."""
    parent_geom = dict(zip([p["id"] for p in parents], metric(parents), strict=True))
    kids = defaultdict(list)
    for row, geom in zip(children, metric(children), strict=True):
        kids[row[fk]].append(geom)
    assert set(kids) == set(parent_geom)
    for pid, geoms in kids.items():
        parent = parent_geom[pid]
        assert parent.difference(shapely.union_all(geoms)).area <= TOL_M2, f"gap in {pid}"
        for g in geoms:
            assert g.difference(parent).area <= TOL_M2, f"child outside {pid}"
        tree = shapely.STRtree(geoms)
        left, right = tree.query(geoms, predicate="intersects")
        for i, j in zip(left, right, strict=True):
            if i < j:
                assert geoms[i].intersection(geoms[j]).area <= TOL_M2, f"siblings overlap in {pid}"


def assert_nested(d: DemoDistrict) -> None:
    assert_tiles(d.district, d.subdistrict, "district_id")
    assert_tiles(d.subdistrict, d.community, "subdistrict_id")
    assert_tiles(d.community, d.grid, "community_id")


def assert_buildings_placed(d: DemoDistrict) -> None:
    grids = dict(zip([g["id"] for g in d.grid], metric(d.grid), strict=True))
    compounds = dict(zip([c["id"] for c in d.compound], metric(d.compound), strict=True))
    footprints = metric(d.building)
    by_grid = defaultdict(list)
    for row, geom in zip(d.building, footprints, strict=True):
        assert geom.difference(grids[row["grid_id"]]).area <= 1e-3
        if row["compound_id"] is not None:
            assert geom.difference(compounds[row["compound_id"]]).area <= 1e-3
        by_grid[row["grid_id"]].append(geom)
        assert 6 <= row["floors"] <= 33
    # At least 3 m apart, checked through a tree over all footprints.
    tree = shapely.STRtree(footprints)
    left, right = tree.query(footprints, predicate="dwithin", distance=2.999)
    assert (left == right).all(), "buildings closer than 3 m"
    # Rectangles of 12-40 m by 10-18 m.
    for geom in footprints:
        xy = np.asarray(shapely.oriented_envelope(geom).exterior.coords)
        sides = sorted([np.hypot(*(xy[1] - xy[0])), np.hypot(*(xy[2] - xy[1]))])
        assert 10 - 0.01 <= sides[0] <= 18 + 0.01 and 12 - 0.01 <= sides[1] <= 40 + 0.01
        assert abs(geom.area - sides[0] * sides[1]) < 0.5


def assert_households_per_grid(d: DemoDistrict, spec: DemoSpec) -> None:
    building_grid = {b["id"]: b["grid_id"] for b in d.building}
    per_grid = Counter(building_grid[h["building_id"]] for h in d.household)
    assert set(per_grid) == {g["id"] for g in d.grid}
    assert all(spec.households_min <= n <= spec.households_max for n in per_grid.values()), per_grid


def test_admin_levels_tile_their_parents(small):
    assert_nested(small)


def test_buildings_inside_grids_compounds_and_apart(small):
    assert_buildings_placed(small)


def test_every_grid_holds_300_to_500_households(small):
    assert_households_per_grid(small, DemoSpec.small())


def test_compounds_lie_in_one_grid_without_overlap(small):
    grids = metric(small.grid)
    grid_rows = small.grid
    tree = shapely.STRtree(grids)
    compounds = metric(small.compound)
    per_grid = Counter()
    for row, geom in zip(small.compound, compounds, strict=True):
        hits = [
            int(i)
            for i in tree.query(geom, predicate="intersects")
            if grids[int(i)].intersection(geom).area > TOL_M2
        ]
        assert len(hits) == 1, "a compound straddles grids"
        grid = grid_rows[hits[0]]
        assert geom.difference(grids[hits[0]]).area <= 1e-3
        assert grid["community_id"] == row["community_id"]
        # set back from the grid edge
        assert geom.distance(grids[hits[0]].boundary) >= 3.0
        per_grid[grid["id"]] += 1
    assert all(1 <= n <= 3 for n in per_grid.values()) and len(per_grid) == len(grid_rows)
    ctree = shapely.STRtree(compounds)
    left, right = ctree.query(compounds, predicate="intersects")
    assert (left == right).all()


def test_gates_sit_on_their_compound_boundary(small):
    compounds = dict(zip([c["id"] for c in small.compound], metric(small.compound), strict=True))
    per_compound = Counter()
    for row, geom in zip(small.gate, metric(small.gate), strict=True):
        assert compounds[row["compound_id"]].boundary.distance(geom) < 0.01
        assert re.fullmatch(r"\d号门", row["name"]) and row["kind"] in {"pedestrian", "vehicle", "both"}
        per_compound[row["compound_id"]] += 1
    assert set(per_compound) == set(compounds) and all(1 <= n <= 3 for n in per_compound.values())


# --- people -----------------------------------------------------------------------------------------


def test_households_have_unique_addresses_inside_their_building(small):
    addresses = [(h["building_id"], h["unit"], h["room"]) for h in small.household]
    assert len(addresses) == len(set(addresses))
    buildings = {b["id"]: b for b in small.building}
    footprints = dict(zip(buildings, metric(small.building), strict=True))
    for h, point in zip(small.household, metric(small.household), strict=True):
        assert footprints[h["building_id"]].distance(point) < 0.01
        floor = int(h["room"][:-2])
        assert 1 <= floor <= buildings[h["building_id"]]["floors"] and re.fullmatch(r"\d+单元", h["unit"])
        assert 1 <= h["residents"] <= 5
        assert re.fullmatch(r"17[01]\d{8}", h["phone"]) and 2 <= len(h["head_name"]) <= 3
    mean = np.mean([h["residents"] for h in small.household])
    assert 2.2 < mean < 3.0


def test_key_persons_are_consistent_with_their_categories(small):
    cats = defaultdict(set)
    for link in small.key_person_category_link:
        assert link["category_code"] in CATEGORY_CODES
        cats[link["key_person_id"]].add(link["category_code"])
    households = {h["id"]: h for h in small.household}
    today = NOW.date()
    assert set(cats) == {k["id"] for k in small.key_person}
    for k in small.key_person:
        c = cats[k["id"]]
        age = today.year - k["birth_year"]
        if "pregnant" in c:
            assert k["gender"] == "F"
        if "elderly_alone" in c:
            assert age >= 70 and households[k["household_id"]]["residents"] == 1
            assert households[k["household_id"]]["head_name"] == k["name"]
        if c & CHILD_CATEGORIES:
            assert age < 18
        if c & {"home_isolation", "risk_area_arrival"}:
            assert today - timedelta(days=14) < k["observation_start"] <= today
        number = k["id_number"]
        assert len(number) == 18 and number.startswith("500103") and number[6:10] == str(k["birth_year"])
        assert id_check_digit(number[:17]) == number[17]
        assert int(number[16]) % 2 == (1 if k["gender"] == "M" else 0)
        assert k["version"] == 1 and k["geom"].equals(households[k["household_id"]]["geom"])
    assert any(len(c) > 1 for c in cats.values()), "some people belong to several categories"


def test_positive_cases_only_in_elevated_communities(small):
    elevated = {
        r["community_id"]
        for r in small.risk_assignment
        if r["community_id"] and r["risk_class_code"] in {"medium", "high"}
    }
    building_grid = {b["id"]: b["grid_id"] for b in small.building}
    grid_comm = {g["id"]: g["community_id"] for g in small.grid}
    household_comm = {h["id"]: grid_comm[building_grid[h["building_id"]]] for h in small.household}
    positive = {
        link["key_person_id"]
        for link in small.key_person_category_link
        if link["category_code"] == "positive"
    }
    comms = {household_comm[k["household_id"]] for k in small.key_person if k["id"] in positive}
    assert comms and comms <= elevated


def test_staff_and_assignments(small):
    assert {s["role"] for s in small.staff} <= set(STAFF_ROLES)
    staff = {s["id"]: s for s in small.staff}
    grid_comm = {g["id"]: g["community_id"] for g in small.grid}
    building_grid = {b["id"]: b["grid_id"] for b in small.building}
    household_grid = {h["id"]: building_grid[h["building_id"]] for h in small.household}
    targets = defaultdict(list)
    for a in small.staff_assignment:
        set_ = [a[k] for k in ("grid_id", "building_id", "household_id") if a[k] is not None]
        assert len(set_) == 1
        targets[a["staff_id"]].append(a)
        s = staff[a["staff_id"]]
        grid = a["grid_id"] or building_grid.get(a["building_id"]) or household_grid.get(a["household_id"])
        assert grid_comm[grid] == s["community_id"], "assigned outside the staff's community"
    pairs = [
        (a["staff_id"], a["grid_id"], a["building_id"], a["household_id"]) for a in small.staff_assignment
    ]
    assert len(pairs) == len(set(pairs))

    leaders = Counter(
        a["grid_id"] for a in small.staff_assignment if staff[a["staff_id"]]["role"] == "grid_leader"
    )
    assert leaders == Counter({g["id"]: 1 for g in small.grid})
    building_leaders = Counter(
        a["building_id"] for a in small.staff_assignment if staff[a["staff_id"]]["role"] == "building_leader"
    )
    assert set(building_leaders) == set(building_grid) and set(building_leaders.values()) == {1}
    per_role = Counter((s["community_id"], s["role"]) for s in small.staff)
    for c in small.community:
        assert 4 <= per_role[(c["id"], "community_worker")] <= 6
        assert 1 <= per_role[(c["id"], "medical")] <= 2
        assert per_role[(c["id"], "police")] == 1 and per_role[(c["id"], "social_worker")] == 1
    for sid, rows in targets.items():
        role = staff[sid]["role"]
        if role == "volunteer":
            assert 1 <= len(rows) <= 30 and all(r["household_id"] for r in rows)
            assert len({household_grid[r["household_id"]] for r in rows}) == 1
        elif role == "building_leader":
            assert 1 <= len(rows) <= 3 and all(r["building_id"] for r in rows)
        elif role in {"grid_leader", "community_worker", "sunk_cadre", "police"}:
            assert all(r["grid_id"] for r in rows)
    communities = dict(zip([c["id"] for c in small.community], metric(small.community), strict=True))
    for s, geom in zip(small.staff, _apply(_TO_METRIC, [s["geom"] for s in small.staff]), strict=True):
        if geom is not None:
            assert communities[s["community_id"]].distance(geom) < 0.01


def test_risk_history(small):
    spec = DemoSpec.small()
    codes = {(r.scheme, r.code) for r in RISK_CLASSES}
    by_comm = defaultdict(list)
    for r in small.risk_assignment:
        assert (r["risk_scheme"], r["risk_class_code"]) in codes
        assert (r["community_id"] is None) != (r["grid_id"] is None)
        assert r["valid_to"] is None or r["valid_to"] > r["valid_from"]
        assert r["reason"] and r["author"]
        if r["community_id"]:
            by_comm[r["community_id"]].append(r)
    assert set(by_comm) == {c["id"] for c in small.community}
    current = {}
    for cid, rows in by_comm.items():
        rows.sort(key=lambda r: r["valid_from"])
        assert rows[0]["risk_class_code"] == "low" and rows[0]["valid_from"] == NOW - timedelta(days=60)
        for a, b in itertools.pairwise(rows):
            assert a["valid_to"] == b["valid_from"]
        assert rows[-1]["valid_to"] is None
        current[cid] = rows[-1]["risk_class_code"]
    elevated = [cid for cid, code in current.items() if code != "low"]
    assert len(elevated) == spec.elevated_communities
    assert {"high", "medium"} <= set(current.values())
    sub_of = {c["id"]: c["subdistrict_id"] for c in small.community}
    assert len({sub_of[c] for c in elevated}) == min(spec.elevated_communities, spec.subdistricts)
    grid_rows = [r for r in small.risk_assignment if r["grid_id"]]
    assert {r["risk_class_code"] for r in grid_rows} >= {"sealed"}
    grid_comm = {g["id"]: g["community_id"] for g in small.grid}
    assert all(current[grid_comm[r["grid_id"]]] == "high" and r["risk_scheme"] == "area" for r in grid_rows)


def test_checkpoints_at_every_gate_of_elevated_communities():
    d = generate_district(
        irregular_boundary(),
        DemoSpec.small(),
        seed=3,
        now=NOW,
        checkpoint_shifts_per_day=4,
        checkpoint_staff_per_shift=3,
    )
    elevated = {
        r["community_id"]
        for r in d.risk_assignment
        if r["community_id"] and r["valid_to"] is None and r["risk_class_code"] != "low"
    }
    compound_comm = {c["id"]: c["community_id"] for c in d.compound}
    gates = {g["id"]: g for g in d.gate}
    staffed = {c["gate_id"] for c in d.checkpoint}
    assert len(staffed) == len(d.checkpoint)
    for gate in d.gate:
        if compound_comm[gate["compound_id"]] in elevated:
            assert gate["id"] in staffed
    for c in d.checkpoint:
        assert (c["shifts_per_day"], c["staff_per_shift"], c["active"]) == (4, 3, True)
        assert c["geom"].equals(gates[c["gate_id"]]["geom"]) and c["name"].endswith("卡点")


def test_service_points(small):
    spec = DemoSpec.small()
    assert {s["kind"] for s in small.service_point} <= set(SERVICE_POINT_KINDS)
    per = Counter((s["community_id"], s["kind"]) for s in small.service_point)
    for c in small.community:
        for kind in ("supply_point", "health_station", "delivery_zone"):
            assert per[(c["id"], kind)] == 1
        assert per[(c["id"], "testing_point")] == math.ceil(spec.grids_per_community / 2)
    kinds = Counter(s["kind"] for s in small.service_point)
    assert kinds["vaccination_point"] == spec.subdistricts
    assert 2 <= kinds["vaccination_vehicle"] <= 3
    assert kinds["elderly_green_channel"] <= len(small.community)
    communities = dict(zip([c["id"] for c in small.community], metric(small.community), strict=True))
    buildings = shapely.STRtree(metric(small.building))
    for s, geom in zip(small.service_point, metric(small.service_point), strict=True):
        assert communities[s["community_id"]].distance(geom) < 0.01
        assert not len(buildings.query(geom, predicate="intersects"))
        assert s["capacity"] > 0 and re.fullmatch(r"\d\d:\d\d-\d\d:\d\d", s["hours"])
        if s["kind"] == "delivery_zone":
            assert 250 <= geom.area <= 650 and geom.difference(communities[s["community_id"]]).area < 1e-3


# --- inputs -----------------------------------------------------------------------------------------


def test_partition_gives_detached_pieces_to_a_neighbour():
    # A comb: Voronoi cells clipped to it fall apart across the gaps between the teeth.
    comb = shapely.union_all([box(0, 0, 3000, 300)] + [box(x, 0, x + 200, 2000) for x in range(0, 3000, 500)])
    for seed in range(3):
        pieces = _partition(comb, 4, np.random.default_rng(seed))
        assert len(pieces) == 4 and all(isinstance(p, Polygon) and p.is_valid for p in pieces)
        assert comb.symmetric_difference(shapely.union_all(pieces)).area < 1e-6
        assert sum(a.intersection(b).area for a, b in itertools.combinations(pieces, 2)) < 1e-6
    # and directly: the stray square joins the cell it shares an edge with
    a = MultiPolygon([box(0, 0, 10, 10), box(20, 0, 22, 2)])
    b = box(10, 0, 20, 10)
    fixed = _absorb_fragments([a, b])
    assert fixed[0].equals(box(0, 0, 10, 10)) and isinstance(fixed[1], Polygon)
    assert fixed[1].area == pytest.approx(104.0)


def test_a_multipolygon_boundary_still_tiles():
    x0, y0 = _TO_METRIC.transform(106.55, 29.55)
    parts = [box(x0, y0, x0 + 2200, y0 + 2000), box(x0 + 2600, y0, x0 + 4400, y0 + 2400)]
    boundary = _apply(_TO_LONLAT, [MultiPolygon(parts)])[0]
    d = generate_district(boundary, DemoSpec.small(), seed=11, now=NOW)
    assert_nested(d)
    assert_households_per_grid(d, DemoSpec.small())


def test_bad_boundaries_are_refused():
    with pytest.raises(InvalidInput) as err:
        generate_district(Point(106.57, 29.55), DemoSpec.small(), now=NOW)
    assert err.value.code == "bad_boundary"
    tiny = _apply(
        _TO_LONLAT, [box(*_TO_METRIC.transform(106.57, 29.55), *_TO_METRIC.transform(106.571, 29.551))]
    )[0]
    with pytest.raises(InvalidInput) as err:
        generate_district(tiny, DemoSpec.small(), now=NOW)
    assert err.value.code == "boundary_too_small"


def test_small_spec_keeps_the_household_range():
    spec = DemoSpec.small()
    assert (spec.households_min, spec.households_max) == (300, 500)
    assert spec.grids == 8 and spec.communities == 4
    with pytest.raises(ValueError):
        DemoSpec(households_min=600, households_max=500)


# --- the real boundary ------------------------------------------------------------------------------


def test_default_spec_on_the_real_yuzhong_boundary():
    data = json.loads(YUZHONG.read_text(encoding="utf-8"))
    feature = data["features"][0] if data.get("type") == "FeatureCollection" else data
    boundary = shape(feature["geometry"])
    spec = DemoSpec()
    started = time.perf_counter()
    d = generate_district(boundary, spec, seed=1, now=NOW)
    elapsed = time.perf_counter() - started
    assert elapsed < 30, f"generation took {elapsed:.1f} s"

    counts = d.counts()
    assert counts["community"] >= 10 and counts["grid"] >= 100
    assert counts["building"] >= 2000 and counts["household"] >= 40000
    assert_nested(d)
    assert_households_per_grid(d, spec)
    assert_buildings_placed(d)

    loose = sum(b["compound_id"] is None for b in d.building)
    assert 0 < loose < 0.2 * counts["building"], "most buildings stand in a compound, some do not"
    share = Counter(link["category_code"] for link in d.key_person_category_link)
    assert 0.02 < share["elderly_alone"] / counts["household"] < 0.04
    assert 0.045 < share["chronic"] / counts["household"] < 0.08
    assert 2.4 < np.mean([h["residents"] for h in d.household]) < 2.8
    names = {s["name"] for s in d.subdistrict}
    assert {"解放碑街道", "朝天门街道", "化龙桥街道"} <= names
