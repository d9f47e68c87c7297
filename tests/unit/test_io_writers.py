"""Writing layers: GeoJSON (RFC 7946), GeoPackage, Excel with Chinese headers, CSV; formulas neutralised."""

from __future__ import annotations

import csv
import json
from datetime import UTC, date, datetime

import geopandas
import openpyxl
import pandas as pd
import pyogrio
import pytest
from shapely.geometry import Point, Polygon

from gridmap.io.writers import (
    EXCEL_MAX_CELL,
    ExportFailed,
    geometry_as_columns,
    neutralize,
    write_csv,
    write_geojson,
    write_gpkg,
    write_xlsx,
)

CLOCKWISE = Polygon([(106.570, 29.555), (106.570, 29.556), (106.571, 29.556), (106.571, 29.555)])


def _grids() -> geopandas.GeoDataFrame:
    return geopandas.GeoDataFrame(
        {
            "id": [1, 2],
            "code": ["G1", "G2"],
            "name": ["=HYPERLINK(\"http://x\")", "二网格"],
            "households": [310, 420],
            "observation_start": [date(2022, 11, 20), None],
            "created_at": [datetime(2022, 11, 25, 9, tzinfo=UTC), datetime(2022, 11, 25, 10, tzinfo=UTC)],
            "impact": [{"households": 12}, None],
        },
        geometry=[CLOCKWISE, CLOCKWISE.buffer(-0.0001)],
        crs="EPSG:4326",
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+8613800138000", "'+8613800138000"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("张三", "张三"),
        (-2, -2),
        (None, None),
    ],
)
def test_neutralize(value, expected):
    assert neutralize(value) == expected


def test_geojson_is_rfc7946(tmp_path):
    path = tmp_path / "grid.geojson"
    write_geojson(_grids().to_crs(3857), path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert "crs" not in data
    ring = data["features"][0]["geometry"]["coordinates"][0]
    assert Polygon(ring).exterior.is_ccw  # RFC 7946: exterior rings counter-clockwise
    assert ring[0][0] == pytest.approx(106.57, abs=1e-6)  # back in degrees
    back = geopandas.read_file(path)
    assert list(back["id"]) == [1, 2] and list(back["code"]) == ["G1", "G2"]
    assert [p.name for p in tmp_path.iterdir()] == ["grid.geojson"]  # no temporary file left behind


def test_gpkg_layer_name_and_crs(tmp_path):
    path = tmp_path / "out.gpkg"
    write_gpkg(_grids(), path, layer="grid")
    assert [str(name) for name, _ in pyogrio.list_layers(path)] == ["grid"]
    back = geopandas.read_file(path, layer="grid")
    assert back.crs.to_epsg() == 4326
    assert list(back["id"]) == [1, 2]
    assert back.geometry.iloc[0].equals(CLOCKWISE)


def test_gpkg_attribute_table(tmp_path):
    path = tmp_path / "out.gpkg"
    write_gpkg(pd.DataFrame({"id": [1, 2], "code": ["low", "high"]}), path, layer="risk_class")
    back = pyogrio.read_dataframe(path, layer="risk_class", read_geometry=False)
    assert list(back["code"]) == ["low", "high"]


def test_xlsx_chinese_headers_neutralised_formulas_and_plain_numbers(tmp_path):
    path = tmp_path / "grid.xlsx"
    table = geometry_as_columns(_grids())
    write_xlsx(table, path, headers={"code": "编码", "name": "名称", "households": "户数"}, sheet="grid")
    ws = openpyxl.load_workbook(path).active
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][:4] == ("id", "编码", "名称", "户数")
    assert rows[0][-1] == "geom_wkt"
    assert rows[1][2] == "'=HYPERLINK(\"http://x\")"
    assert ws.cell(row=2, column=3).data_type == "s"  # text, not a formula
    assert rows[1][3] == 310
    assert rows[1][5] == "2022-11-25T09:00:00+00:00"
    assert json.loads(rows[1][6]) == {"households": 12}
    assert rows[1][-1].startswith("POLYGON ((106.57 29.555")
    assert ws.title == "grid"


def test_xlsx_refuses_cells_excel_cannot_hold(tmp_path):
    table = pd.DataFrame({"geom_wkt": ["x" * (EXCEL_MAX_CELL + 1)]})
    with pytest.raises(ExportFailed) as err:
        write_xlsx(table, tmp_path / "big.xlsx")
    assert err.value.code == "cell_too_long"
    assert not (tmp_path / "big.xlsx").exists()


def test_points_become_lon_lat_columns():
    frame = geopandas.GeoDataFrame({"id": [1, 2]}, geometry=[Point(106.57, 29.555), None], crs=4326)
    table = geometry_as_columns(frame)
    assert list(table.columns) == ["id", "lon", "lat"]
    assert table["lon"].iloc[0] == 106.57 and pd.isna(table["lat"].iloc[1])


def test_csv_has_bom_english_headers_and_neutralised_text(tmp_path):
    path = tmp_path / "grid.csv"
    write_csv(geometry_as_columns(_grids()), path)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert rows[0][:3] == ["id", "code", "name"]
    assert rows[1][2].startswith("'=")
    assert rows[2][1:3] == ["G2", "二网格"]


@pytest.mark.parametrize("suffix", ["csv", "xlsx", "geojson", "gpkg"])
def test_missing_folder_is_a_user_error(tmp_path, suffix):
    frame = geopandas.GeoDataFrame({"a": [1]}, geometry=[Point(106.5, 29.5)], crs=4326)
    writer = {"csv": write_csv, "xlsx": write_xlsx, "geojson": write_geojson}.get(suffix)
    with pytest.raises(ExportFailed) as err:
        if writer is None:
            write_gpkg(frame, tmp_path / "nowhere" / f"x.{suffix}", layer="x")
        else:
            writer(frame, tmp_path / "nowhere" / f"x.{suffix}")
    assert err.value.code == "bad_path"
