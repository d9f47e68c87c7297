"""How the city is cut into chunks: deterministic, tiling the city, distinct seeds, ids moved in order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely.geometry import shape

from gridmap.db import models
from gridmap.domain.city import (
    CHUNK_TABLES,
    ID_COLUMNS,
    CitySpec,
    chunk_offsets,
    chunk_seed,
    plan_city,
    shift_ids,
    subdistrict_names,
)
from gridmap.domain.demo import LocalMetric, _reproject

CORE = Path(__file__).resolve().parents[2] / "data" / "boundaries" / "chongqing_core.geojson"
TOL_M2 = 1.0


@pytest.fixture(scope="module")
def boundaries() -> list[tuple]:
    import json

    features = json.loads(CORE.read_text(encoding="utf-8"))["features"]
    return [(shape(f["geometry"]), f["properties"]) for f in features]


@pytest.fixture(scope="module")
def city(boundaries):
    return plan_city(boundaries, CitySpec(), seed=1)


def _metric(plan, geoms):
    return _reproject(list(geoms), LocalMetric(*plan.centre))


def test_the_default_city_has_about_ten_thousand_grids_of_a_dense_core(city):
    assert [d.name for d in city.districts] == ["渝中区", "江北区", "沙坪坝区", "南岸区"]
    assert city.grids == 10_000 and len(city.chunks) == 125
    per_grid = city.area_m2 / city.grids
    assert 25_000 <= per_grid <= 50_000  # a dense core: 300–500 households on 2.5–5 ha
    for d in city.districts:  # chunks in proportion to the land
        n = sum(c.district_id == d.id for c in city.chunks)
        assert abs(n - len(city.chunks) * d.area_m2 / city.area_m2) <= 1


def test_the_plan_is_deterministic_and_depends_on_the_seed(boundaries, city):
    again = plan_city(boundaries, CitySpec(), seed=1)
    assert [(c.subdistrict_code, c.seed, c.boundary.wkb) for c in again.chunks] == [
        (c.subdistrict_code, c.seed, c.boundary.wkb) for c in city.chunks
    ]
    other = plan_city(boundaries, CitySpec(), seed=2)
    assert [c.seed for c in other.chunks] != [c.seed for c in city.chunks]
    assert any(a.boundary.wkb != b.boundary.wkb for a, b in zip(other.chunks, city.chunks, strict=True))


def test_chunk_seeds_are_distinct(city):
    seeds = [c.seed for c in city.chunks]
    assert len(set(seeds)) == len(seeds)
    assert chunk_seed(1, 0) != chunk_seed(2, 0) and chunk_seed(1, 0) == city.chunks[0].seed


def test_chunks_tile_their_district_and_districts_stay_in_the_circle(city):
    radius = CitySpec().radius_m
    for d in city.districts:
        cells = _metric(city, [c.boundary for c in city.chunks if c.district_id == d.id])
        whole = _metric(city, [d.geom])[0]
        union = shapely.union_all(cells)
        assert shapely.difference(whole, union).area < TOL_M2, d.name
        assert shapely.difference(union, whole).area < TOL_M2, d.name
        for i, a in enumerate(cells):
            for b in cells[i + 1 :]:
                assert shapely.intersection(a, b).area < TOL_M2
        # inside the circle (its polygon has 256 sides: a few metres inside the true circle)
        assert np.hypot(*shapely.get_coordinates(whole).T).max() <= radius + 1
    # districts do not overlap: the real boundaries share their edges
    geoms = _metric(city, [d.geom for d in city.districts])
    for i, a in enumerate(geoms):
        for b in geoms[i + 1 :]:
            assert shapely.intersection(a, b).area < TOL_M2


def test_every_chunk_has_room_for_its_grids(city):
    spec = CitySpec()
    for cell, chunk in zip(_metric(city, [c.boundary for c in city.chunks]), city.chunks, strict=True):
        assert cell.area >= chunk.spec.grids * 20_000  # what the generator needs
        assert chunk.spec.subdistricts == 1 and chunk.spec.grids == spec.grids_per_chunk


def test_codes_and_names_of_sub_districts(city):
    codes = [c.subdistrict_code for c in city.chunks]
    assert len(set(codes)) == len(codes)
    for c in city.chunks:
        assert c.subdistrict_code.startswith(c.district_code) and len(c.subdistrict_code) == 9
    names = [(c.district_id, c.subdistrict_name) for c in city.chunks]
    assert len(set(names)) == len(names)
    assert subdistrict_names("500103", "渝中区", 2) == ["化龙桥街道", "南纪门街道"]  # spread evenly
    assert subdistrict_names("500108", "南岸区", 10)[-2:] == ["南岸区第9街道", "南岸区第10街道"]


def test_tiny_city_has_two_chunks_in_two_districts(boundaries):
    plan = plan_city(boundaries, CitySpec.tiny(), seed=1)
    assert len(plan.chunks) == 2 and len(plan.districts) == 2
    assert plan.grids == 8


def test_scaled_city_keeps_the_density(boundaries, city):
    plan = plan_city(boundaries, CitySpec().scaled(0.1), seed=1)
    assert 0.05 * city.grids <= plan.grids <= 0.15 * city.grids


def test_bad_specs_are_refused():
    with pytest.raises(ValueError):
        CitySpec(radius_m=0)
    with pytest.raises(ValueError):
        CitySpec(min_grid_area_m2=10_000)
    with pytest.raises(ValueError):
        CitySpec(households_min=600)


def test_id_columns_are_the_model_foreign_keys():
    for table in CHUNK_TABLES:
        model_table = models.Base.metadata.tables[table]
        expected = {fk.parent.name: fk.column.table.name for fk in model_table.foreign_keys}
        expected = {col: target for col, target in expected.items() if target in ID_COLUMNS or target == "district"}
        if "id" in model_table.columns and table != "key_person_category_link":
            expected["id"] = table
        assert ID_COLUMNS[table] == expected, table


def test_shift_ids_moves_ids_past_earlier_chunks_and_recodes_buildings(city):
    chunk = city.chunks[3]
    offsets = chunk_offsets({"building": 100, "grid": 10, "compound": 7}, chunk)
    assert offsets["district"] == chunk.district_id - 1
    rows = [[1, 2, None, "B000001"], [2, 3, 4, "B000002"]]
    shift_ids("building", ["id", "grid_id", "compound_id", "code"], rows, offsets)
    assert rows == [[101, 12, None, "B000101"], [102, 13, 11, "B000102"]]
    links = [[5, 3, 1]]
    shift_ids("key_person_category_link", ["key_person_id", "category_id", "building_id"], links,
              {"key_person": 1000, "building": 100})
    assert links == [[1005, 3, 101]]  # the category id is the database's, never moved


def test_seeds_are_plain_non_negative_integers(city):
    assert all(isinstance(c.seed, int) and 0 <= c.seed < 2**64 for c in city.chunks)
    np.random.SeedSequence(city.chunks[0].seed)  # what the generator does with it


def test_a_chunk_is_generated_the_same_twice_laid_out_for_copy(boundaries):
    from datetime import UTC, datetime

    from gridmap.domain.city import ChunkLayout, generate_chunk

    plan = plan_city(boundaries, CitySpec.tiny(), seed=1)
    columns = {
        t: tuple(c for c in models.LAYER_MODELS[t].__table__.columns.keys()
                 if c not in models.DERIVED_COLUMNS.get(t, frozenset()))
        for t in CHUNK_TABLES if t != "key_person_category_link"
    }
    layout = ChunkLayout(
        now=datetime(2022, 11, 25, 9, tzinfo=UTC),
        columns=columns,
        category_ids={code: i for i, code in enumerate(sorted(_category_codes()), start=1)},
        class_ids={("tier", "low"): 1, ("tier", "medium"): 2, ("tier", "high"): 3,
                   ("area", "sealed"): 4, ("area", "controlled"): 5, ("area", "precaution"): 6},
    )
    a, b = generate_chunk(plan.chunks[1], layout), generate_chunk(plan.chunks[1], layout)
    assert a.tables == b.tables and a.grids == 4 and a.index == 1
    cols, rows = a.tables["household"]
    assert cols == columns["household"] and [r[0] for r in rows] == list(range(1, len(rows) + 1))
    assert rows[0][cols.index("geom")].startswith("0101000020E6100000")  # EWKB point, SRID 4326
    sub_cols, (sub,) = a.tables["subdistrict"]
    assert sub[sub_cols.index("code")] == plan.chunks[1].subdistrict_code


def _category_codes() -> set[str]:
    from gridmap.domain.reference import KEY_PERSON_CATEGORIES

    return {c.code for c in KEY_PERSON_CATEGORIES}
