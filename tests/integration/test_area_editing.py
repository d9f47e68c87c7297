"""The area editor's glue on PostGIS: a drawing (GeoJSON from the map) previewed, checked, grown by
a click on a grid, holed by a cut, and saved as a new area or a new version."""

from __future__ import annotations

import pytest
import shapely
from shapely import wkb
from shapely.geometry import box, mapping, shape
from sqlalchemy import text

from gridmap.services.area_editing import (
    DrawingError,
    add_feature_at,
    area_for_editing,
    cut_drawing,
    cut_hole,
    drawing_geometry,
    editable_areas,
    editing_state,
    editor_features,
    preview,
    save_drawing,
    union_with_feature,
    version_history,
)
from gridmap.services.areas import AreaConflict, ReasonRequired, get_version, list_versions
from gridmap.services.impact import ImpactError, compute_impact


def feature_collection(*geoms, created: int | None = None) -> dict:
    return {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"created": True} if i == created else {}, "geometry": mapping(g)}
            for i, g in enumerate(geoms)
        ],
    }


def grid_geometry(session, offset: int = 0):
    gid, raw = session.execute(
        text("SELECT id, ST_AsBinary(geom) FROM grid ORDER BY id OFFSET :o LIMIT 1"), {"o": offset}
    ).one()
    return gid, wkb.loads(bytes(raw))


def around_buildings(session, n: int = 6):
    rows = session.execute(text("SELECT ST_AsBinary(geom) FROM building ORDER BY id LIMIT :n"), {"n": n}).scalars()
    return shapely.union_all([wkb.loads(bytes(r)).buffer(0.00003) for r in rows]).convex_hull


def test_preview_gives_the_numbers_of_compute_impact(session, settings):
    _, grid = grid_geometry(session, 3)
    # Drawn as two overlapping rectangles, the way a commander might: the preview takes their union.
    minx, miny, maxx, maxy = grid.bounds
    midx = (minx + maxx) / 2
    left, right = box(minx, miny, midx + 0.0003, maxy), box(midx - 0.0003, miny, maxx, maxy)
    got = preview(session, feature_collection(left, right), "sealed", settings)
    want = compute_impact(session, shapely.union(left, right), "sealed", settings).as_dict()
    for key, value in want.items():
        assert got[key] == value, key
    assert got["buildings"] > 0 and got["households"] > 0
    assert got["area_m2"] > 0
    assert sum(r["count"] for r in got["key_person_rows"]) == sum(want["key_persons"].values())
    assert all(r["name"] for r in got["key_person_rows"])


def test_preview_names_key_person_categories_in_english_too(session, settings):
    area = around_buildings(session, 40)
    zh = preview(session, feature_collection(area), "controlled", settings, lang="zh")
    en = preview(session, feature_collection(area), "controlled", settings, lang="en")
    assert [r["count"] for r in zh["key_person_rows"]] == [r["count"] for r in en["key_person_rows"]]
    if zh["key_person_rows"]:
        assert zh["key_person_rows"][0]["name"] != en["key_person_rows"][0]["name"]


def test_the_area_being_edited_is_not_its_own_overlap(session, settings, now):
    area = around_buildings(session, 6)
    saved = save_drawing(session, feature_collection(area), "controlled", settings=settings, author="甲", now=now,
                         reason="病例楼栋")
    assert [o["area_key"] for o in preview(session, feature_collection(area), "controlled", settings)["overlaps"]] \
        == [saved.area_key]
    assert preview(session, feature_collection(area), "controlled", settings, base_area_key=saved.area_key)[
        "overlaps"] == []


def test_a_bow_tie_is_an_invalid_geometry(session, settings):
    _, grid = grid_geometry(session)
    minx, miny, maxx, maxy = grid.bounds
    bow_tie = {"type": "Polygon", "coordinates": [[[minx, miny], [maxx, maxy], [maxx, miny], [minx, maxy], [minx, miny]]]}
    fc = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": bow_tie}]}
    with pytest.raises(DrawingError) as exc:
        preview(session, fc, "sealed", settings)
    assert exc.value.code == "invalid_geometry"
    assert "Self-intersection" in exc.value.message


def test_a_drawing_outside_the_district_is_refused(session, settings):
    with pytest.raises(ImpactError) as exc:
        preview(session, feature_collection(box(2.30, 48.85, 2.31, 48.86)), "sealed", settings)
    assert exc.value.code == "outside_district"


@pytest.mark.parametrize(
    ("fc", "code"),
    [
        (None, "empty_drawing"),
        ({"type": "FeatureCollection", "features": []}, "empty_drawing"),
        (
            {"type": "FeatureCollection",
             "features": [{"type": "Feature", "properties": {},
                           "geometry": {"type": "LineString", "coordinates": [[106.5, 29.55], [106.51, 29.56]]}}]},
            "not_polygon",
        ),
    ],
)
def test_drawings_that_are_no_area(settings, fc, code):
    with pytest.raises(DrawingError) as exc:
        drawing_geometry(fc, settings)
    assert exc.value.code == code


def test_too_many_vertices(settings):
    circle = shapely.Point(106.57, 29.56).buffer(0.001, quad_segs=settings.max_area_vertices)
    with pytest.raises(DrawingError) as exc:
        drawing_geometry(feature_collection(circle), settings)
    assert exc.value.code == "too_many_vertices"


def test_union_with_a_grid_contains_the_grid(session, settings):
    gid, grid = grid_geometry(session, 5)
    small = grid.centroid.buffer(0.0002)
    grown = union_with_feature(session, small, "grid", gid)
    assert grown.buffer(1e-9).contains(grid)
    assert grown.area >= grid.area
    # From nothing, the grid itself.
    assert union_with_feature(session, None, "grid", gid).equals(grid)
    with pytest.raises(DrawingError) as exc:
        union_with_feature(session, small, "household", 1)
    assert exc.value.code == "bad_layer"


def test_add_a_grid_by_clicking_inside_it(session, settings):
    _, grid = grid_geometry(session, 7)
    point = grid.representative_point()
    fc = add_feature_at(session, None, "grid", point.x, point.y, settings)
    assert drawing_geometry(fc, settings).buffer(1e-7).contains(grid)
    # Clicking where there is no compound is a message, not a crash.
    with pytest.raises(DrawingError) as exc:
        add_feature_at(session, fc, "compound", 2.3, 48.8, settings)
    assert exc.value.code == "nothing_here"


def test_cut_hole_reduces_the_area(session, settings):
    _, grid = grid_geometry(session, 2)
    hole = grid.centroid.buffer(0.0003)
    cut = cut_hole(grid, hole)
    assert cut.area == pytest.approx(grid.area - grid.intersection(hole).area, rel=1e-9)
    assert cut.area < grid.area
    with pytest.raises(DrawingError) as exc:
        cut_hole(grid, box(2.3, 48.8, 2.4, 48.9))
    assert exc.value.code == "hole_outside"
    with pytest.raises(DrawingError) as exc:
        cut_hole(grid, grid.buffer(0.001))
    assert exc.value.code == "cut_everything"


def test_cut_mode_takes_the_new_shape_out_and_the_hole_survives_the_round_trip(session, settings):
    _, grid = grid_geometry(session, 2)
    hole = grid.centroid.buffer(0.0003)
    fc = cut_drawing(feature_collection(grid, hole, created=1), settings)
    assert len(fc["features"]) == 1
    result = shape(fc["features"][0]["geometry"])
    assert len(result.interiors) == 1 and result.area < grid.area
    assert drawing_geometry(fc, settings).area == pytest.approx(result.area)
    # Preview of a holed drawing counts fewer buildings than the whole grid.
    assert preview(session, fc, "sealed", settings)["buildings"] <= preview(
        session, feature_collection(grid), "sealed", settings)["buildings"]


def test_editor_features_split_a_multipolygon(session):
    a, b = box(106.5, 29.5, 106.501, 29.501), box(106.502, 29.5, 106.503, 29.501)
    fc = editor_features(shapely.union(a, b))
    assert [f["geometry"]["type"] for f in fc["features"]] == ["Polygon", "Polygon"]
    assert editor_features(None) == {"type": "FeatureCollection", "features": []}


def test_save_a_new_area_then_a_version_and_a_stale_save(session, settings, now):
    area = around_buildings(session, 6)
    v1 = save_drawing(session, feature_collection(area), "controlled", settings=settings, author=" 指挥长 ", now=now,
                      reason="确诊楼栋", name="一号区")
    assert (v1.version, v1.author, v1.name) == (1, "指挥长", "一号区")
    bigger = around_buildings(session, 12)
    v2 = save_drawing(session, feature_collection(bigger), "controlled", settings=settings, author="乙", now=now,
                      reason="扩大", area_key=v1.area_key, base_version=1)
    assert v2.version == 2 and v2.name == "一号区"
    with pytest.raises(AreaConflict) as exc:
        save_drawing(session, feature_collection(area), "controlled", settings=settings, author="丙", now=now,
                     reason="r", area_key=v1.area_key, base_version=1)
    assert exc.value.current["version"] == 2
    assert [v.version for v in list_versions(session, v1.area_key)] == [1, 2]


def test_save_needs_an_author_and_a_reason_when_warned(session, settings, now):
    whole = wkb.loads(bytes(session.execute(text("SELECT ST_AsBinary(geom) FROM community ORDER BY id LIMIT 1")).scalar_one()))
    with pytest.raises(Exception) as exc:
        save_drawing(session, feature_collection(whole), "sealed", settings=settings, author="  ", now=now)
    assert getattr(exc.value, "code", None) == "author_required"
    with pytest.raises(ReasonRequired):
        save_drawing(session, feature_collection(whole), "sealed", settings=settings, author="甲", now=now, reason=" ")


def test_areas_to_pick_and_their_history(session, settings, now):
    _, grid = grid_geometry(session, 4)
    holed = cut_hole(grid, grid.centroid.buffer(0.0002))
    v1 = save_drawing(session, editor_features(holed), "controlled", settings=settings, author="甲", now=now,
                      reason="r1", name="测试区")
    save_drawing(session, feature_collection(grid), "sealed", settings=settings, author="乙", now=now, reason="r2",
                 area_key=v1.area_key, base_version=1)
    listed = {a["area_key"]: a for a in editable_areas(session, "en")}
    mine = listed[v1.area_key]
    assert (mine["version"], mine["class_name"], mine["name"]) == (2, "Sealed area", "测试区")
    assert mine["households"] > 0 and "geometry" not in mine
    history = version_history(session, v1.area_key, "zh")
    assert [(v["version"], v["class_name"], v["author"]) for v in history] == [(1, "管控区", "甲"), (2, "封控区", "乙")]
    # The editor gets version 1 back with its hole, ready to drag.
    state = editing_state(get_version(session, v1.area_key, 1))
    assert state["base"] == {"area_key": v1.area_key, "version": 1, "class_code": "controlled", "name": "测试区",
                             "ended": False}
    back = drawing_geometry(state["geojson"], settings)
    assert back.symmetric_difference(holed).area < 1e-4 * holed.area  # coordinates kept to ~1 cm
    assert len(shape(state["geojson"]["features"][0]["geometry"]).interiors) == 1
    assert area_for_editing(session, v1.area_key)["base"]["version"] == 2
