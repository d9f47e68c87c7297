"""Reading users' files: formats, limits, CRS, swapped axes, GCJ-02, geometry checks, Chinese headers."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas
import numpy as np
import openpyxl
import pytest
import shapely
from pyproj import Geod, Transformer
from shapely.geometry import MultiPoint, MultiPolygon, Point, Polygon

from gridmap.io import geometry as geo
from gridmap.io.columns import DuplicateColumn, MissingColumn, canonical_name, resolve_columns
from gridmap.io.gcj02 import gcj02_to_wgs84, geometry_gcj02_to_wgs84, wgs84_to_gcj02
from gridmap.io.readers import InvalidFile, as_text, read_source

# Files without a CRS are what some tests are about.
pytestmark = pytest.mark.filterwarnings("ignore:'crs' was not provided")

GEOD = Geod(ellps="WGS84")
# A square of ~100 m in Chongqing's Yuzhong district, counter-clockwise.
SQUARE = Polygon([(106.570, 29.555), (106.571, 29.555), (106.571, 29.556), (106.570, 29.556)])
BIG = 10**9


def _metres(lon1, lat1, lon2, lat2) -> np.ndarray:
    return np.asarray(GEOD.inv(lon1, lat1, lon2, lat2)[2])


def _write_geojson(path: Path, features: list[dict], crs: str | None = None) -> Path:
    data: dict = {"type": "FeatureCollection", "features": features}
    if crs:
        data["crs"] = {"type": "name", "properties": {"name": crs}}
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def _feature(geom, **props) -> dict:
    return {"type": "Feature", "properties": props, "geometry": shapely.geometry.mapping(geom)}


def _read(path: Path, **kw):
    return read_source(path, max_bytes=kw.pop("max_bytes", BIG), max_rows=kw.pop("max_rows", BIG), **kw)


# --- GCJ-02 ----------------------------------------------------------------------------------------


def test_gcj02_inverse_round_trips_below_half_a_metre():
    rng = np.random.default_rng(3)
    lon = rng.uniform(75, 134, 2000)
    lat = rng.uniform(19, 53, 2000)
    glon, glat = wgs84_to_gcj02(lon, lat)
    offset = _metres(lon, lat, glon, glat)
    assert offset.min() > 1.0  # the offset is really applied inside China (it is usually hundreds of metres)
    back_lon, back_lat = gcj02_to_wgs84(glon, glat)
    assert _metres(lon, lat, back_lon, back_lat).max() < 0.5


def test_gcj02_leaves_coordinates_outside_china_alone():
    lon, lat = gcj02_to_wgs84([2.35, -74.0], [48.85, 40.7])
    assert np.allclose(lon, [2.35, -74.0]) and np.allclose(lat, [48.85, 40.7])


def test_gcj02_geometry_conversion_moves_every_vertex():
    shifted = shapely.transform(SQUARE, lambda xy: np.column_stack(wgs84_to_gcj02(xy[:, 0], xy[:, 1])))
    back = geometry_gcj02_to_wgs84(shifted)
    assert back.geom_type == "Polygon"
    a = np.asarray(SQUARE.exterior.coords)
    b = np.asarray(back.exterior.coords)
    assert _metres(a[:, 0], a[:, 1], b[:, 0], b[:, 1]).max() < 0.5


# --- geometry checks and repairs -------------------------------------------------------------------


def test_self_intersection_is_an_error_with_reason_and_location():
    bowtie = Polygon([(106.5, 29.5), (106.6, 29.6), (106.6, 29.5), (106.5, 29.6)])
    check = geo.check_geometry(bowtie, geo.POLYGON, max_vertices=100)
    assert [e.code for e in check.errors] == ["invalid_geometry"]
    assert "Self-intersection[106.55 29.55]" in check.errors[0].message
    assert check.geom is None


def test_clockwise_ring_is_reoriented_and_reported():
    clockwise = Polygon(list(SQUARE.exterior.coords)[::-1])
    assert not clockwise.exterior.is_ccw
    check = geo.check_geometry(clockwise, geo.POLYGON, max_vertices=100)
    assert check.ok
    assert [r.code for r in check.repairs] == ["reoriented_rings"]
    assert check.geom.exterior.is_ccw and check.geom.equals(SQUARE)


def test_repeated_points_are_removed_and_reported():
    coords = list(SQUARE.exterior.coords)
    doubled = Polygon([coords[0], coords[1], coords[1], coords[2], coords[3], coords[0], coords[0]])
    check = geo.check_geometry(doubled, geo.POLYGON, max_vertices=100)
    assert check.ok
    assert [r.code for r in check.repairs] == ["removed_repeated_points"]
    assert shapely.get_num_coordinates(check.geom) == 5


def test_polygon_is_promoted_for_a_multipolygon_layer_and_z_dropped():
    with_z = Polygon([(x, y, 240.0) for x, y in SQUARE.exterior.coords])
    check = geo.check_geometry(with_z, geo.MULTIPOLYGON, max_vertices=100)
    assert check.ok
    assert {r.code for r in check.repairs} == {"dropped_z", "promoted_to_multi"}
    assert isinstance(check.geom, MultiPolygon) and not check.geom.has_z


def test_single_part_multis_are_taken_as_singles():
    assert geo.check_geometry(MultiPolygon([SQUARE]), geo.POLYGON, max_vertices=100).geom.equals(SQUARE)
    assert geo.check_geometry(MultiPoint([(106.5, 29.5)]), geo.POINT, max_vertices=100).geom == Point(106.5, 29.5)


@pytest.mark.parametrize(
    ("geom", "expected", "code"),
    [
        (Point(106.5, 29.5), geo.POLYGON, "wrong_geometry_type"),
        (SQUARE, geo.POINT, "wrong_geometry_type"),
        (MultiPolygon([SQUARE, shapely.affinity.translate(SQUARE, 0.01)]), geo.POLYGON, "wrong_geometry_type"),
        (None, geo.POLYGON, "empty_geometry"),
        (Polygon(), geo.MULTIPOLYGON, "empty_geometry"),
        (Polygon([(106.5, 29.5), (106.6, 29.5), (106.6, 29.5), (106.5, 29.5)]), geo.POLYGON, "invalid_geometry"),
    ],
)
def test_bad_geometries_are_errors(geom, expected, code):
    check = geo.check_geometry(geom, expected, max_vertices=100)
    assert [e.code for e in check.errors] == [code]
    assert check.geom is None


def test_too_many_vertices():
    circle = Point(106.57, 29.55).buffer(0.001, quad_segs=64)
    check = geo.check_geometry(circle, geo.POLYGON, max_vertices=100)
    assert [e.code for e in check.errors] == ["too_many_vertices"]
    assert geo.check_geometry(circle, geo.POLYGON, max_vertices=1000).ok


# --- file-level problems ---------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(InvalidFile) as err:
        _read(tmp_path / "nope.geojson")
    assert err.value.code == "file_missing"


@pytest.mark.parametrize("name", ["grids.kml", "households.xls", "noext"])
def test_unknown_format(tmp_path, name):
    (tmp_path / name).write_text("x")
    with pytest.raises(InvalidFile) as err:
        _read(tmp_path / name)
    assert err.value.code == "unknown_format"


def test_file_larger_than_the_limit(tmp_path):
    path = _write_geojson(tmp_path / "g.geojson", [_feature(SQUARE, code="A")])
    with pytest.raises(InvalidFile) as err:
        _read(path, max_bytes=100)
    assert err.value.code == "file_too_large"


def test_too_many_rows_vector_and_table(tmp_path):
    path = _write_geojson(tmp_path / "g.geojson", [_feature(SQUARE, code=str(i)) for i in range(5)])
    with pytest.raises(InvalidFile) as err:
        _read(path, max_rows=4)
    assert err.value.code == "too_many_rows"
    csv = tmp_path / "h.csv"
    csv.write_text("房号\n" + "\n".join(str(i) for i in range(5)), encoding="utf-8")
    with pytest.raises(InvalidFile) as err:
        _read(csv, max_rows=4)
    assert err.value.code == "too_many_rows"
    assert len(_read(csv, max_rows=5).records) == 5


@pytest.mark.parametrize("name", ["broken.geojson", "broken.gpkg", "broken.xlsx"])
def test_unreadable_file(tmp_path, name):
    (tmp_path / name).write_bytes(b"this is not what the name says {")
    with pytest.raises(InvalidFile) as err:
        _read(tmp_path / name)
    assert err.value.code == "unreadable_file"


# --- CRS -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("epsg", [3857, 32648])
def test_projected_file_is_reprojected(tmp_path, epsg):
    to_projected = Transformer.from_crs(4326, epsg, always_xy=True)
    projected = shapely.transform(SQUARE, lambda xy: np.column_stack(to_projected.transform(xy[:, 0], xy[:, 1])))
    path = tmp_path / "g.gpkg"
    geopandas.GeoDataFrame({"code": ["A"]}, geometry=[projected], crs=f"EPSG:{epsg}").to_file(path)
    data = _read(path)
    got = data.records[0].geom
    x, y = got.exterior.coords[0]
    assert _metres(x, y, 106.570, 29.555) < 0.01
    assert data.crs == f"EPSG:{epsg}"
    assert any("reprojected" in n for n in data.notes)


def test_file_without_crs_in_degrees_is_read_as_wgs84(tmp_path):
    path = tmp_path / "g.shp"
    geopandas.GeoDataFrame({"code": ["A"]}, geometry=[SQUARE]).to_file(path)
    assert not path.with_suffix(".prj").exists()
    data = _read(path)
    assert data.records[0].geom.equals(SQUARE)
    assert any("no CRS" in n for n in data.notes)


def test_file_without_crs_in_metres_is_refused(tmp_path):
    path = tmp_path / "g.shp"
    geopandas.GeoDataFrame({"code": ["A"]}, geometry=[Point(11_863_000, 3_445_000)]).to_file(path)
    with pytest.raises(InvalidFile) as err:
        _read(path)
    assert err.value.code == "no_crs"


def test_geojson_with_metre_coordinates_and_no_crs_member_is_refused(tmp_path):
    path = _write_geojson(tmp_path / "g.geojson", [_feature(Point(11_863_000, 3_445_000), name="x")])
    with pytest.raises(InvalidFile) as err:
        _read(path)
    assert err.value.code == "no_crs"


@pytest.mark.parametrize("suffix", ["geojson", "shp"])
def test_swapped_lat_lon_is_refused(tmp_path, suffix):
    swapped = shapely.transform(SQUARE, lambda xy: xy[:, ::-1].copy())
    path = tmp_path / f"g.{suffix}"
    if suffix == "geojson":
        _write_geojson(path, [_feature(swapped, code="A")])
    else:
        geopandas.GeoDataFrame({"code": ["A"]}, geometry=[swapped]).to_file(path)
    with pytest.raises(InvalidFile) as err:
        _read(path)
    assert err.value.code == "swapped_coordinates"


def test_gcj02_is_converted_only_when_asked(tmp_path):
    glon, glat = wgs84_to_gcj02(106.57, 29.555)
    path = _write_geojson(tmp_path / "p.geojson", [_feature(Point(float(glon), float(glat)), name="门")])
    as_is = _read(path).records[0].geom
    assert (as_is.x, as_is.y) == pytest.approx((float(glon), float(glat)))
    converted = _read(path, gcj02=True)
    p = converted.records[0].geom
    assert _metres(p.x, p.y, 106.57, 29.555) < 0.5
    assert any("GCJ-02" in n for n in converted.notes)


def test_zipped_shapefile(tmp_path):
    import zipfile

    folder = tmp_path / "shp"
    folder.mkdir()
    geopandas.GeoDataFrame({"code": ["A"]}, geometry=[SQUARE], crs=4326).to_file(folder / "grid.shp")
    archive = tmp_path / "grid.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for part in folder.iterdir():
            z.write(part, part.name)
    data = _read(archive)
    assert [r.values["code"] for r in data.records] == ["A"]
    assert data.records[0].geom.equals(SQUARE)


# --- tables with Chinese headers -------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030"])
def test_csv_in_utf8_or_gbk_with_row_numbers_as_seen(tmp_path, encoding):
    path = tmp_path / "h.csv"
    path.write_bytes("楼栋编码,单元,房号,人数,户主姓名\nB1,1单元,101,3,张三\n\nB1,1单元,102,2,李四\n".encode(encoding))
    data = _read(path)
    assert data.columns == ["楼栋编码", "单元", "房号", "人数", "户主姓名"]
    assert [r.row for r in data.records] == [2, 4]  # the header is row 1; the blank line keeps its number
    assert data.records[1].values["户主姓名"] == "李四"
    assert not data.has_geometry


def test_xlsx_numbers_become_text_where_text_is_meant(tmp_path):
    path = tmp_path / "h.xlsx"
    book = openpyxl.Workbook()
    ws = book.active
    ws.append(["building_code", "房号", "人数", "电话"])
    ws.append(["B1", 101, 3, 13800138000.0])
    ws.append([None, None, None, None])
    ws.append(["B1", "102", None, None])
    book.save(path)
    data = _read(path)
    assert [r.row for r in data.records] == [2, 4]
    first = data.records[0].values
    assert as_text(first["电话"]) == "13800138000"
    assert as_text(first["房号"]) == "101"
    assert data.records[1].values["人数"] is None


def test_table_with_lon_lat_columns_has_points(tmp_path):
    path = tmp_path / "gates.csv"
    path.write_text("名称,经度,纬度\n1号门,106.57,29.555\n2号门,东,29.556\n", encoding="utf-8")
    data = _read(path)
    assert data.has_geometry
    assert data.records[0].geom == Point(106.57, 29.555)
    assert data.records[1].geom is None
    assert 3 in data.geometry_errors


def test_table_with_swapped_lon_lat_columns_is_refused(tmp_path):
    path = tmp_path / "gates.csv"
    path.write_text("名称,经度,纬度\n1号门,29.555,106.57\n", encoding="utf-8")
    with pytest.raises(InvalidFile) as err:
        _read(path)
    assert err.value.code == "swapped_coordinates"


def test_table_with_wkt_column(tmp_path):
    path = tmp_path / "grids.csv"
    path.write_text(f'code,name,geom_wkt\nG1,一网格,"{SQUARE.wkt}"\nG2,二网格,"POLYGON ((1 2"\n', encoding="utf-8")
    data = _read(path)
    assert data.records[0].geom.equals(SQUARE)
    assert data.records[1].geom is None and "WKT" in data.geometry_errors[3]


def test_headers_resolve_chinese_and_english():
    assert canonical_name(" 楼栋编码 ") == "building_code"
    assert canonical_name("Building_Code") == "building_code"
    assert canonical_name("户主姓名*") == "head_name"
    found = resolve_columns(["楼栋编码", "单元", "房号", "备用"], ["building_code", "unit", "room", "phone"], ["room"])
    assert found == {"building_code": "楼栋编码", "unit": "单元", "room": "房号"}


def test_missing_column_names_it_and_lists_the_columns_found():
    with pytest.raises(MissingColumn) as err:
        resolve_columns(["单元", "人数"], ["building_code", "unit", "room"], ["building_code", "room"])
    assert err.value.code == "missing_column"
    assert "楼栋编码 (building_code)" in err.value.message
    assert "单元, 人数" in err.value.message


def test_two_headers_for_one_column_are_refused():
    with pytest.raises(DuplicateColumn):
        resolve_columns(["code", "编码"], ["code"], ["code"])


def test_shapefile_truncated_names_are_recognised(tmp_path):
    path = tmp_path / "grid.shp"
    frame = geopandas.GeoDataFrame({"code": ["G1"], "community_code": ["C1"]}, geometry=[SQUARE], crs=4326)
    with pytest.warns(UserWarning, match="truncated"), pytest.warns(RuntimeWarning, match="laundered"):
        frame.to_file(path)
    data = _read(path)
    assert "community_" in data.columns
    found = resolve_columns(data.columns, ["code", "name", "community_code"], ["code", "community_code"])
    assert found == {"code": "code", "community_code": "community_"}
