"""``import_layer`` on the small demo district: good files land, every class of bad input is refused
with its row numbers and code, and a refused file changes nothing."""

from __future__ import annotations

import json
import math
from pathlib import Path

import geopandas
import numpy as np
import openpyxl
import pytest
import shapely
from pyproj import Geod, Transformer
from shapely import wkb
from shapely.geometry import Point, Polygon, box, mapping
from sqlalchemy import text

from gridmap.io.gcj02 import wgs84_to_gcj02
from gridmap.services.importing import ImportRejected, import_layer

GEOD = Geod(ellps="WGS84")
TABLES = ("subdistrict", "community", "grid", "compound", "gate", "building", "household", "key_person",
          "key_person_category_link", "staff", "checkpoint", "service_point")


# --- helpers -------------------------------------------------------------------------------------


def _scalar(session, sql: str, **params):
    return session.execute(text(sql), params).scalar_one()


def _counts(session) -> dict[str, int]:
    return {t: _scalar(session, f'SELECT count(*) FROM "{t}"') for t in TABLES}


def _geom(session, sql: str, **params):
    return wkb.loads(bytes(_scalar(session, sql, **params)))


def _square(center: Point, half_m: float) -> Polygon:
    """A square of ``2 * half_m`` metres around ``center`` (counter-clockwise)."""
    dlat = half_m / 111_320.0
    dlon = half_m / (111_320.0 * math.cos(math.radians(center.y)))
    return box(center.x - dlon, center.y - dlat, center.x + dlon, center.y + dlat)


def _inside(session, table: str, code: str, half_m: float = 5.0) -> Polygon:
    """A small square around the point on surface of a row of ``table``; asserted to be inside it."""
    center = _geom(session, f"SELECT ST_AsBinary(ST_PointOnSurface(geom)) FROM {table} WHERE code = :c", c=code)
    square = _square(center, half_m)
    assert _scalar(
        session, f"SELECT ST_CoveredBy(ST_GeomFromText(:w, 4326), geom) FROM {table} WHERE code = :c",
        w=square.wkt, c=code,
    )
    return square


def _code(session, table: str, offset: int = 0) -> str:
    return _scalar(session, f"SELECT code FROM {table} ORDER BY id OFFSET :o LIMIT 1", o=offset)


def _geojson(path: Path, features: list[tuple[object, dict]], crs: str | None = None) -> Path:
    data: dict = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": props, "geometry": None if g is None else mapping(g)}
            for g, props in features
        ],
    }
    if crs:
        data["crs"] = {"type": "name", "properties": {"name": crs}}
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def _xlsx(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    book = openpyxl.Workbook()
    ws = book.active
    ws.append(header)
    for row in rows:
        ws.append(row)
    book.save(path)
    return path


def _csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _rejected(session, layer: str, path: Path, settings, **kw) -> ImportRejected:
    """Import, expect a refusal, and check that no table changed."""
    before = _counts(session)
    with pytest.raises(ImportRejected) as err:
        import_layer(session, layer, path, settings=settings, **kw)
    assert _counts(session) == before
    return err.value


def _issues(exc: ImportRejected) -> list[tuple[int, str]]:
    return [(i.row, i.code) for i in exc.report.errors]


def _metres(a: Point, b: Point) -> float:
    return GEOD.inv(a.x, a.y, b.x, b.y)[2]


# --- good files ----------------------------------------------------------------------------------


def test_grids_from_geojson_with_chinese_headers(session, settings, tmp_path):
    community = _code(session, "community")
    squares = [_inside(session, "community", community, 5), _inside(session, "community", community, 3)]
    path = _geojson(
        tmp_path / "grids.geojson",
        [(squares[0], {"编码": "GT-1", "名称": "测试一网格", "社区编码": community}),
         (squares[1], {"编码": "GT-2", "名称": "测试二网格", "社区编码": community})],
    )
    before = _counts(session)
    report = import_layer(session, "grid", path, settings=settings)
    assert (report.rows_read, report.rows_written, report.errors) == (2, 2, [])
    assert _counts(session)["grid"] == before["grid"] + 2
    rows = session.execute(
        text("SELECT g.code, g.name, c.code, g.households, ST_AsBinary(g.geom) FROM grid g "
             "JOIN community c ON c.id = g.community_id WHERE g.code LIKE 'GT-%' ORDER BY g.code")
    ).all()
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [("GT-1", "测试一网格", community, 0),
                                                         ("GT-2", "测试二网格", community, 0)]
    stored = wkb.loads(bytes(rows[0][4]))
    assert stored.geom_type == "MultiPolygon" and stored.equals(squares[0])
    # the Polygon was promoted for the MULTIPOLYGON column, and said so
    assert {(r.row, r.code) for r in report.repairs} == {(1, "promoted_to_multi"), (2, "promoted_to_multi")}
    # ids came from the sequence: above every demo id
    assert _scalar(session, "SELECT min(id) FROM grid WHERE code LIKE 'GT-%'") > before["grid"]


def test_parent_found_by_location_without_a_code_column(session, settings, tmp_path):
    community = _code(session, "community", 2)
    path = _geojson(tmp_path / "g.geojson", [(_inside(session, "community", community), {"code": "GT-L", "name": "x"})])
    import_layer(session, "grid", path, settings=settings)
    assert _scalar(
        session, "SELECT c.code FROM grid g JOIN community c ON c.id = g.community_id WHERE g.code = 'GT-L'"
    ) == community


def test_buildings_from_geopackage(session, settings, tmp_path):
    grid = _code(session, "grid", 1)
    footprint = _inside(session, "grid", grid, 4)
    path = tmp_path / "buildings.gpkg"
    # In a file of buildings, 楼栋编码 is the building's own code.
    geopandas.GeoDataFrame(
        {"楼栋编码": ["BT-1"], "名称": ["测试楼"], "层数": [18], "网格编码": [grid]}, geometry=[footprint], crs=4326
    ).to_file(path)
    report = import_layer(session, "building", path, settings=settings)
    assert report.rows_written == 1
    row = session.execute(
        text("SELECT b.floors, g.code, b.households, ST_Equals(b.geom, ST_GeomFromText(:w, 4326)) FROM building b "
             "JOIN grid g ON g.id = b.grid_id WHERE b.code = 'BT-1'"),
        {"w": footprint.wkt},
    ).one()
    assert tuple(row) == (18, grid, 0, True)


def test_households_from_csv_are_placed_on_their_building(session, settings, tmp_path):
    building = _code(session, "building")
    before = _scalar(session, "SELECT households FROM building WHERE code = :c", c=building)
    path = _csv(tmp_path / "households.csv", [
        "楼栋编码,单元,房号,人数,户主姓名,电话",
        f"{building},9单元,901,3,张三,13800000001",
        f"{building},9单元,902,,李四,",
    ])
    report = import_layer(session, "household", path, settings=settings)
    assert report.rows_written == 2
    rows = session.execute(
        text("SELECT h.room, h.residents, h.head_name, h.phone, ST_Intersects(h.geom, b.geom) FROM household h "
             "JOIN building b ON b.id = h.building_id WHERE b.code = :c AND h.unit = '9单元' ORDER BY h.room"),
        {"c": building},
    ).all()
    assert [tuple(r) for r in rows] == [("901", 3, "张三", "13800000001", True), ("902", 1, "李四", None, True)]
    # the building's total is kept by the trigger
    assert _scalar(session, "SELECT households FROM building WHERE code = :c", c=building) == before + 2


def test_households_from_xlsx_with_chinese_headers(session, settings, tmp_path):
    building = _code(session, "building", 3)
    path = _xlsx(tmp_path / "households.xlsx", ["楼栋编码", "单元", "房号", "人数", "户主姓名", "电话"],
                 [[building, None, 9901, 2, "王五", 13900000002], [building, None, "9902", 1.0, "赵六", None]])
    report = import_layer(session, "household", path, settings=settings)
    assert report.rows_written == 2
    rows = session.execute(
        text("SELECT h.unit, h.room, h.residents, h.phone FROM household h JOIN building b ON b.id = h.building_id "
             "WHERE b.code = :c AND h.room LIKE '990%' ORDER BY h.room"), {"c": building}
    ).all()
    assert [tuple(r) for r in rows] == [(None, "9901", 2, "13900000002"), (None, "9902", 1, None)]


def test_key_persons_with_categories_by_name_and_code(session, settings, tmp_path):
    # a household of the demo: its unit is '1单元'; the file may write just '1'
    code, unit, room, hid = session.execute(
        text("SELECT b.code, h.unit, h.room, h.id FROM household h JOIN building b ON b.id = h.building_id "
             "WHERE h.unit = '1单元' ORDER BY h.id LIMIT 1")
    ).one()
    path = _xlsx(
        tmp_path / "key.xlsx",
        ["楼栋编码", "单元", "房号", "姓名", "性别", "出生年份", "电话", "身份证号", "类别"],
        [
            [code, "1", room, "测试甲", "男", 1950, None, "500103195001010011", "中高风险地区来人、入境人员、慢性病患者"],
            [code, unit, room, "测试乙", "女", 1988, "13700000000", None, "home_isolation;独居老人"],
        ],
    )
    report = import_layer(session, "key_person", path, settings=settings)
    assert report.rows_written == 2
    rows = session.execute(
        text("SELECT k.name, k.gender, k.birth_year, k.household_id, ST_Equals(k.geom, h.geom), "
             "array_agg(c.code ORDER BY c.code) FROM key_person k JOIN household h ON h.id = k.household_id "
             "JOIN key_person_category_link l ON l.key_person_id = k.id "
             "JOIN key_person_category c ON c.id = l.category_id WHERE k.name LIKE '测试%' "
             "GROUP BY k.id, h.geom ORDER BY k.name")
    ).all()
    assert [tuple(r) for r in rows] == [
        ("测试乙", "F", 1988, hid, True, ["elderly_alone", "home_isolation"]),
        ("测试甲", "M", 1950, hid, True, ["chronic", "risk_area_arrival"]),
    ]


def test_staff_with_roles_by_chinese_name_or_code(session, settings, tmp_path):
    community = _code(session, "community")
    path = _csv(tmp_path / "staff.csv", [
        "姓名,角色,电话,社区编码",
        f"测试网格员,网格员,13600000000,{community}",
        f"测试志愿者,volunteer,,{community}",
    ])
    assert import_layer(session, "staff", path, settings=settings).rows_written == 2
    rows = session.execute(
        text("SELECT s.name, s.role, s.active, c.code, s.geom IS NULL FROM staff s "
             "JOIN community c ON c.id = s.community_id WHERE s.name LIKE '测试%' ORDER BY s.id")
    ).all()
    assert [tuple(r) for r in rows] == [("测试网格员", "grid_leader", True, community, True),
                                        ("测试志愿者", "volunteer", True, community, True)]


def test_gates_and_checkpoints_find_their_parents_nearby(session, settings, tmp_path):
    compound_id, corner = session.execute(
        text("SELECT id, ST_AsBinary(ST_PointN(ST_ExteriorRing(geom), 1)) FROM compound ORDER BY id LIMIT 1")
    ).one()
    on_edge = wkb.loads(bytes(corner))
    path = _geojson(tmp_path / "gates.geojson", [(on_edge, {"名称": "测试门", "类型": "人行"})])
    assert import_layer(session, "gate", path, settings=settings).rows_written == 1
    gate_id, kind, parent = session.execute(
        text("SELECT id, kind, compound_id FROM gate WHERE name = '测试门'")
    ).one()
    assert (kind, parent) == ("pedestrian", compound_id)

    path = _csv(tmp_path / "checkpoints.csv", ["名称,出入口ID,经度,纬度", f"测试卡点,{gate_id},{on_edge.x},{on_edge.y}"])
    assert import_layer(session, "checkpoint", path, settings=settings).rows_written == 1
    row = session.execute(
        text("SELECT gate_id, shifts_per_day, staff_per_shift FROM checkpoint WHERE name = '测试卡点'")
    ).one()
    assert tuple(row) == (gate_id, settings.checkpoint_shifts_per_day, settings.checkpoint_staff_per_shift)


def test_service_points_point_and_delivery_zone(session, settings, tmp_path):
    community = _code(session, "community")
    zone = _inside(session, "community", community, 10)
    center = zone.centroid
    path = _geojson(tmp_path / "sp.geojson", [
        (center, {"类型": "便民核酸检测点", "名称": "测试检测点", "容量": 500}),
        (zone, {"类型": "delivery_zone", "名称": "测试配送区"}),
    ])
    assert import_layer(session, "service_point", path, settings=settings).rows_written == 2
    rows = session.execute(
        text("SELECT s.kind, s.capacity, GeometryType(s.geom), c.code FROM service_point s "
             "LEFT JOIN community c ON c.id = s.community_id WHERE s.name LIKE '测试%' ORDER BY s.id")
    ).all()
    assert [tuple(r) for r in rows] == [("testing_point", 500, "POINT", community),
                                        ("delivery_zone", None, "POLYGON", community)]


# --- repairs -------------------------------------------------------------------------------------


def test_clockwise_ring_and_repeated_point_are_repaired_and_reported(session, settings, tmp_path):
    grid = _code(session, "grid")
    square = _inside(session, "grid", grid, 4)
    coords = list(square.exterior.coords)
    clockwise = Polygon(coords[::-1])
    repeated = Polygon([coords[0], coords[1], coords[1], coords[2], coords[3], coords[0]])
    path = _geojson(tmp_path / "b.geojson", [
        (clockwise, {"code": "BT-CW", "name": "顺时针", "grid_code": grid}),
        (repeated, {"code": "BT-DUP", "name": "重复点", "grid_code": grid}),
    ])
    report = import_layer(session, "building", path, settings=settings)
    assert report.rows_written == 2
    assert [(r.row, r.code) for r in report.repairs] == [(1, "reoriented_rings"), (2, "removed_repeated_points")]
    stored = session.execute(
        text("SELECT code, ST_IsPolygonCCW(geom), ST_NPoints(geom) FROM building WHERE code LIKE 'BT-%' ORDER BY code")
    ).all()
    assert [tuple(r) for r in stored] == [("BT-CW", True, 5), ("BT-DUP", True, 5)]


# --- CRS -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("epsg", "fmt"), [(3857, "geojson"), (32648, "gpkg")])
def test_projected_files_are_reprojected(session, settings, tmp_path, epsg, fmt):
    grid = _code(session, "grid", 2)
    footprint = _inside(session, "grid", grid, 6)
    to_proj = Transformer.from_crs(4326, epsg, always_xy=True)
    projected = shapely.transform(footprint, lambda xy: np.column_stack(to_proj.transform(xy[:, 0], xy[:, 1])))
    props = {"code": "BT-PROJ", "name": "投影", "grid_code": grid}
    if fmt == "geojson":
        path = _geojson(tmp_path / "b.geojson", [(projected, props)], crs=f"urn:ogc:def:crs:EPSG::{epsg}")
    else:
        path = tmp_path / "b.gpkg"
        geopandas.GeoDataFrame({k: [v] for k, v in props.items()}, geometry=[projected], crs=epsg).to_file(path)
    report = import_layer(session, "building", path, settings=settings)
    assert any(f"EPSG:{epsg}" in n for n in report.notes)
    stored = _geom(session, "SELECT ST_AsBinary(geom) FROM building WHERE code = 'BT-PROJ'")
    first = Point(stored.exterior.coords[0])
    assert min(_metres(first, Point(c)) for c in footprint.exterior.coords) < 0.01


def test_gcj02_option_converts_to_wgs84(session, settings, tmp_path):
    community = _code(session, "community")
    truth = _inside(session, "community", community).centroid
    glon, glat = wgs84_to_gcj02(truth.x, truth.y)
    path = _geojson(tmp_path / "sp.geojson", [(Point(float(glon), float(glat)), {"kind": "testing_point", "name": "测试GCJ"})])
    import_layer(session, "service_point", path, settings=settings, gcj02=True)
    stored = _geom(session, "SELECT ST_AsBinary(geom) FROM service_point WHERE name = '测试GCJ'")
    assert _metres(stored, truth) < 0.5
    assert _metres(Point(float(glon), float(glat)), truth) > 50  # the offset was real


# --- bad rows: each class refused with its rows and code, nothing written ------------------------


def test_invalid_geometry_is_reported_with_reason_and_location(session, settings, tmp_path):
    community = _code(session, "community")
    square = _inside(session, "community", community, 5)
    (x0, y0, x1, y1) = square.bounds
    bowtie = Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])
    path = _geojson(tmp_path / "g.geojson", [
        (square, {"code": "GT-OK", "name": "好", "community_code": community}),
        (bowtie, {"code": "GT-BAD", "name": "坏", "community_code": community}),
    ])
    err = _rejected(session, "grid", path, settings)
    assert err.code == "rows_rejected"
    assert _issues(err) == [(2, "invalid_geometry")]
    assert "Self-intersection[" in err.report.errors[0].message


def test_wrong_geometry_type_and_empty_geometry(session, settings, tmp_path):
    community = _code(session, "community")
    square = _inside(session, "community", community)
    path = _geojson(tmp_path / "g.geojson", [
        (square.centroid, {"code": "GT-P", "name": "点", "community_code": community}),
        (None, {"code": "GT-N", "name": "空", "community_code": community}),
        (square, {"code": "GT-OK", "name": "好", "community_code": community}),
    ])
    err = _rejected(session, "grid", path, settings)
    assert _issues(err) == [(1, "wrong_geometry_type"), (2, "empty_geometry")]


def test_delivery_zone_must_be_an_area(session, settings, tmp_path):
    point = _inside(session, "community", _code(session, "community")).centroid
    path = _geojson(tmp_path / "sp.geojson", [(point, {"kind": "delivery_zone", "name": "测试"})])
    assert _issues(_rejected(session, "service_point", path, settings)) == [(1, "wrong_geometry_type")]


def test_too_many_vertices(session, settings, tmp_path):
    community = _code(session, "community")
    circle = _inside(session, "community", community).centroid.buffer(0.00003, quad_segs=32)
    path = _geojson(tmp_path / "g.geojson", [(circle, {"code": "GT-C", "name": "圆", "community_code": community})])
    err = _rejected(session, "grid", path, settings.model_copy(update={"max_polygon_vertices": 50}))
    assert _issues(err) == [(1, "too_many_vertices")]


def test_outside_the_district(session, settings, tmp_path):
    community = _code(session, "community")
    chengdu = _square(Point(104.06, 30.67), 10)
    path = _geojson(tmp_path / "g.geojson", [
        (_inside(session, "community", community), {"code": "GT-IN", "name": "内", "community_code": community}),
        (chengdu, {"code": "GT-OUT", "name": "外", "community_code": community}),
    ])
    err = _rejected(session, "grid", path, settings)
    assert _issues(err) == [(2, "outside_district")]
    assert "m²" in err.report.errors[0].message


def test_outside_its_parent(session, settings, tmp_path):
    here, other = _code(session, "community", 0), _code(session, "community", 3)
    path = _geojson(tmp_path / "g.geojson", [(_inside(session, "community", here), {"code": "GT-X", "name": "错", "社区编码": other})])
    err = _rejected(session, "grid", path, settings)
    assert _issues(err) == [(1, "outside_parent")]
    assert err.report.errors[0].field == "社区编码"


def test_unknown_parent_code(session, settings, tmp_path):
    path = _csv(tmp_path / "h.csv", ["楼栋编码,房号", "NO-SUCH-BUILDING,101"])
    err = _rejected(session, "household", path, settings)
    assert _issues(err) == [(2, "unknown_parent")]
    assert err.report.errors[0].field == "楼栋编码"


def test_no_parent_at_the_location(session, settings, tmp_path):
    far = _geom(
        session,
        "SELECT ST_AsBinary(g.p) FROM (SELECT (ST_Dump(ST_GeneratePoints(geom, 200, 7))).geom AS p "
        "FROM district) g WHERE NOT EXISTS (SELECT 1 FROM compound c "
        "WHERE ST_DWithin(c.geom::geography, g.p::geography, 50)) LIMIT 1",
    )
    path = _geojson(tmp_path / "gates.geojson", [(far, {"名称": "孤门"})])
    err = _rejected(session, "gate", path, settings)
    assert _issues(err) == [(1, "no_parent")]
    assert "compound_code" in err.report.errors[0].message


def test_id_number_typed_as_a_number_in_excel(session, settings, tmp_path):
    code, unit, room = session.execute(
        text("SELECT b.code, h.unit, h.room FROM household h JOIN building b ON b.id = h.building_id ORDER BY h.id LIMIT 1")
    ).one()
    path = _xlsx(tmp_path / "k.xlsx", ["楼栋编码", "单元", "房号", "姓名", "身份证号", "类别"],
                 [[code, unit, room, "甲", 5.00103195001010e17, "慢性病患者"]])
    err = _rejected(session, "key_person", path, settings)
    assert _issues(err) == [(2, "lost_precision")]
    assert err.report.errors[0].field == "身份证号"


def test_missing_column_is_named_with_the_columns_found(session, settings, tmp_path):
    path = _csv(tmp_path / "h.csv", ["楼栋编码,单元,人数", "B000001,1单元,3"])
    err = _rejected(session, "household", path, settings)
    assert err.code == "missing_column"
    assert "房号 (room)" in err.message and "楼栋编码, 单元, 人数" in err.message


def test_unknown_category_and_unknown_household(session, settings, tmp_path):
    code, unit, room = session.execute(
        text("SELECT b.code, h.unit, h.room FROM household h JOIN building b ON b.id = h.building_id ORDER BY h.id LIMIT 1")
    ).one()
    path = _csv(tmp_path / "k.csv", [
        "楼栋编码,单元,房号,姓名,类别",
        f"{code},{unit},{room},甲,独居老人",
        f"{code},{unit},{room},乙,外星人、慢性病患者",
        f"{code},{unit},99999,丙,慢性病患者",
        f"{code},{unit},{room},丁,",
    ])
    err = _rejected(session, "key_person", path, settings)
    assert _issues(err) == [(3, "unknown_category"), (4, "unknown_household"), (5, "missing_value")]
    assert "外星人" in err.report.errors[0].message


def test_unknown_staff_role(session, settings, tmp_path):
    community = _code(session, "community")
    path = _csv(tmp_path / "s.csv", ["姓名,角色,社区编码", f"甲,网格员,{community}", f"乙,队长,{community}"])
    err = _rejected(session, "staff", path, settings)
    assert _issues(err) == [(3, "unknown_role")]


def test_duplicate_codes_in_the_file_and_in_the_database(session, settings, tmp_path):
    grid = _code(session, "grid")
    existing = _code(session, "building")
    squares = [_inside(session, "grid", grid, h) for h in (2, 3, 4)]
    path = _geojson(tmp_path / "b.geojson", [
        (squares[0], {"code": "BT-D", "name": "一", "grid_code": grid}),
        (squares[1], {"code": "BT-D", "name": "二", "grid_code": grid}),
        (squares[2], {"code": existing, "name": "三", "grid_code": grid}),
    ])
    err = _rejected(session, "building", path, settings)
    assert _issues(err) == [(2, "duplicate_code"), (3, "code_exists")]
    assert "1" in err.report.errors[0].message  # names the first occurrence


def test_duplicate_and_existing_household_addresses(session, settings, tmp_path):
    code, room = session.execute(
        text("SELECT b.code, h.room FROM household h JOIN building b ON b.id = h.building_id "
             "WHERE h.unit = '1单元' ORDER BY h.id LIMIT 1")
    ).one()
    path = _csv(tmp_path / "h.csv", [
        "楼栋编码,单元,房号", f"{code},8,801", f"{code},8单元,801", f"{code},1,{room}",
    ])
    assert _issues(_rejected(session, "household", path, settings)) == [(3, "duplicate_address"), (4, "address_exists")]


def test_negative_and_non_numeric_values(session, settings, tmp_path):
    building = _code(session, "building")
    path = _xlsx(tmp_path / "h.xlsx", ["楼栋编码", "房号", "人数"],
                 [[building, "A1", -2], [building, "A2", "三"], [building, "A3", 2.5], [building, "A4", 2]])
    err = _rejected(session, "household", path, settings)
    assert _issues(err) == [(2, "negative_value"), (3, "not_a_number"), (4, "not_a_number")]
    assert {i.field for i in err.report.errors} == {"人数"}


def test_every_bad_row_is_listed_not_just_the_first(session, settings, tmp_path):
    building = _code(session, "building")
    lines = ["楼栋编码,房号,人数"] + [f"{building},Z{i},{-i}" for i in range(1, 6)] + [f"{building},Z9,1"]
    err = _rejected(session, "household", _csv(tmp_path / "h.csv", lines), settings)
    assert _issues(err) == [(r, "negative_value") for r in range(2, 7)]
    assert "5 of 6 rows" in err.message


@pytest.mark.parametrize("layer", ["staff", "household"])
def test_a_rule_only_the_database_knows_rejects_cleanly(session, settings, tmp_path, layer):
    """A constraint the checks do not know (DDL is transactional: it vanishes with the rollback)."""
    community, building = _code(session, "community"), _code(session, "building")
    if layer == "staff":
        session.execute(text("ALTER TABLE staff ADD CONSTRAINT test_only CHECK (name <> 'Bob')"))
        path = _csv(tmp_path / "s.csv", ["姓名,角色,社区编码", f"Ann,网格员,{community}", f"Bob,网格员,{community}"])
    else:
        session.execute(text("ALTER TABLE household ADD CONSTRAINT test_only CHECK (room <> 'BOB')"))
        path = _csv(tmp_path / "h.csv", ["楼栋编码,房号", f"{building},ANN", f"{building},BOB"])
    err = _rejected(session, layer, path, settings)
    assert err.code == "rejected_by_database" and "test_only" in err.message
    # the caller's transaction is still usable
    assert _scalar(session, "SELECT count(*) FROM community") > 0


# --- bad files -----------------------------------------------------------------------------------


def test_missing_file(session, settings, tmp_path):
    assert _rejected(session, "grid", tmp_path / "nope.geojson", settings).code == "file_missing"


def test_unknown_format(session, settings, tmp_path):
    path = tmp_path / "grid.kml"
    path.write_text("<kml/>")
    assert _rejected(session, "grid", path, settings).code == "unknown_format"


def test_unreadable_file(session, settings, tmp_path):
    path = tmp_path / "grid.geojson"
    path.write_text("{ not json")
    assert _rejected(session, "grid", path, settings).code == "unreadable_file"


def test_file_over_the_size_limit(session, settings, tmp_path):
    building = _code(session, "building")
    path = _csv(tmp_path / "h.csv", ["楼栋编码,房号"] + [f"{building},R{i}" for i in range(200)])
    small = settings.model_copy(update={"max_upload_bytes": 1024})
    err = _rejected(session, "household", path, small)
    assert err.code == "file_too_large"


def test_more_rows_than_allowed(session, settings, tmp_path):
    building = _code(session, "building")
    path = _csv(tmp_path / "h.csv", ["楼栋编码,房号"] + [f"{building},R{i}" for i in range(11)])
    err = _rejected(session, "household", path, settings.model_copy(update={"max_import_rows": 10}))
    assert err.code == "too_many_rows"


def test_no_crs_and_metre_coordinates(session, settings, tmp_path):
    path = tmp_path / "g.shp"
    with pytest.warns(UserWarning, match="crs"):
        geopandas.GeoDataFrame({"code": ["X"], "name": ["x"]}, geometry=[box(11.86e6, 3.44e6, 11.87e6, 3.45e6)]).to_file(path)
    assert _rejected(session, "grid", path, settings).code == "no_crs"


def test_swapped_lat_lon(session, settings, tmp_path):
    square = _inside(session, "community", _code(session, "community"))
    swapped = shapely.transform(square, lambda xy: xy[:, ::-1].copy())
    path = _geojson(tmp_path / "g.geojson", [(swapped, {"code": "GT-S", "name": "反"})])
    err = _rejected(session, "grid", path, settings)
    assert err.code == "swapped_coordinates"
    assert "latitude, longitude" in err.message


def test_polygon_layer_from_a_table_without_geometry(session, settings, tmp_path):
    path = _csv(tmp_path / "g.csv", ["编码,名称,社区编码", "GT-T,表,500103001001"])
    assert _rejected(session, "grid", path, settings).code == "missing_geometry"


def test_empty_file_and_unknown_layer(session, settings, tmp_path):
    path = _csv(tmp_path / "h.csv", ["楼栋编码,房号"])
    assert _rejected(session, "household", path, settings).code == "empty_file"
    assert _rejected(session, "risk_class", path, settings).code == "unknown_layer"
