"""``export_layer`` on the small demo district: every format round-trips, rows and ids intact."""

from __future__ import annotations

import csv
import json

import geopandas
import openpyxl
import pyogrio
import pytest
from shapely import wkb, wkt
from sqlalchemy import text

from gridmap.domain.errors import GridmapError
from gridmap.services.exporting import export_layer
from gridmap.services.importing import import_layer

LAYERS = ("grid", "building", "household", "key_person", "staff", "service_point", "risk_class", "controlled_area")


def _ids(session, layer: str) -> list[int]:
    return list(session.execute(text(f'SELECT id FROM "{layer}" ORDER BY id')).scalars())


@pytest.mark.parametrize("layer", LAYERS)
def test_geojson_round_trip(session, tmp_path, layer):
    path = tmp_path / f"{layer}.geojson"
    n = export_layer(session, layer, path)
    ids = _ids(session, layer)
    assert n == len(ids)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert "crs" not in data  # RFC 7946: always EPSG:4326
    assert [f["properties"]["id"] for f in data["features"]] == ids


@pytest.mark.parametrize("layer", LAYERS)
def test_gpkg_round_trip(session, tmp_path, layer):
    path = tmp_path / "out.gpkg"
    n = export_layer(session, layer, path)
    assert [str(name) for name, _ in pyogrio.list_layers(path)] == [layer]
    back = pyogrio.read_dataframe(path, layer=layer)
    assert n == len(back) and list(back["id"]) == _ids(session, layer)
    if isinstance(back, geopandas.GeoDataFrame):
        assert back.crs.to_epsg() == 4326


@pytest.mark.parametrize("layer", LAYERS)
def test_xlsx_round_trip_with_chinese_headers(session, tmp_path, layer):
    path = tmp_path / f"{layer}.xlsx"
    n = export_layer(session, layer, path)
    rows = list(openpyxl.load_workbook(path, read_only=True).worksheets[0].iter_rows(values_only=True))
    header = rows[0]
    assert header[0] == "ID"
    assert len(rows) - 1 == n
    assert [r[0] for r in rows[1:]] == _ids(session, layer)
    if layer in ("grid", "building"):
        assert {"编码", "名称", "户数", "人数", "geom_wkt"} <= set(header)


@pytest.mark.parametrize("layer", LAYERS)
def test_csv_round_trip(session, tmp_path, layer):
    path = tmp_path / f"{layer}.csv"
    n = export_layer(session, layer, path)
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == n
    assert [int(r["id"]) for r in rows] == _ids(session, layer)


def test_grid_geometry_survives_every_format(session, tmp_path):
    gid, geom = session.execute(text("SELECT id, ST_AsBinary(geom) FROM grid ORDER BY id LIMIT 1")).one()
    original = wkb.loads(bytes(geom))
    export_layer(session, "grid", tmp_path / "g.geojson")
    export_layer(session, "grid", tmp_path / "g.gpkg")
    export_layer(session, "grid", tmp_path / "g.xlsx")
    export_layer(session, "grid", tmp_path / "g.csv")
    from_geojson = geopandas.read_file(tmp_path / "g.geojson").set_index("id").geometry[gid]
    from_gpkg = geopandas.read_file(tmp_path / "g.gpkg").set_index("id").geometry[gid]
    xlsx_rows = list(openpyxl.load_workbook(tmp_path / "g.xlsx").active.iter_rows(values_only=True))
    from_xlsx = wkt.loads(xlsx_rows[1][xlsx_rows[0].index("geom_wkt")])
    with open(tmp_path / "g.csv", encoding="utf-8-sig", newline="") as f:
        from_csv = wkt.loads(next(csv.DictReader(f))["geom_wkt"])
    # GeoJSON (RFC 7946) keeps 7 decimals, about a centimetre; the others are exact to a millimetre.
    assert from_geojson.hausdorff_distance(original) < 1e-7
    for geom in (from_gpkg, from_xlsx, from_csv):
        assert geom.equals_exact(original, tolerance=1e-8)


def test_points_are_lon_lat_in_tables(session, tmp_path):
    n = export_layer(session, "gate", tmp_path / "gates.csv")
    with open(tmp_path / "gates.csv", encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == n and {"lon", "lat"} <= set(rows[0]) and "geom_wkt" not in rows[0]
    x, y = session.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM gate WHERE id = :i"), {"i": int(rows[0]["id"])}).one()
    assert float(rows[0]["lon"]) == pytest.approx(x, abs=1e-8) and float(rows[0]["lat"]) == pytest.approx(y, abs=1e-8)


def test_key_persons_carry_their_categories(session, tmp_path):
    export_layer(session, "key_person", tmp_path / "k.csv")
    with open(tmp_path / "k.csv", encoding="utf-8-sig", newline="") as f:
        first = next(csv.DictReader(f))
    codes = set(session.execute(
        text("SELECT c.code FROM key_person_category_link l JOIN key_person_category c ON c.id = l.category_id "
             "WHERE l.key_person_id = :i"), {"i": int(first["id"])}
    ).scalars())
    assert set(first["categories"].split("、")) == codes


def test_an_export_imports_back(session, settings, tmp_path):
    """The Excel export of households reads back as an import (given building codes and new rooms)."""
    building_id, code = session.execute(text("SELECT id, code FROM building ORDER BY id LIMIT 1")).one()
    export_layer(session, "household", tmp_path / "h.xlsx")
    rows = list(openpyxl.load_workbook(tmp_path / "h.xlsx", read_only=True).active.iter_rows(values_only=True))
    header = list(rows[0])
    assert {"楼栋ID", "单元", "房号", "人数", "户主姓名", "电话"} <= set(header)
    mine = [list(r) for r in rows[1:] if r[header.index("楼栋ID")] == building_id]
    room = header.index("房号")
    book = openpyxl.Workbook()
    book.active.append(["楼栋编码", *header])
    for r in mine:
        r[room] = f"X{r[room]}"
        book.active.append([code, *r])
    book.save(tmp_path / "h2.xlsx")
    report = import_layer(session, "household", tmp_path / "h2.xlsx", settings=settings)
    assert report.rows_written == len(mine) > 0
    assert any("ID" in note for note in report.notes)  # the ignored id columns are named


def test_unknown_layer_and_format(session, tmp_path):
    with pytest.raises(GridmapError) as err:
        export_layer(session, "nope", tmp_path / "x.csv")
    assert err.value.code == "unknown_layer"
    with pytest.raises(GridmapError) as err:
        export_layer(session, "grid", tmp_path / "x.kml")
    assert err.value.code == "unknown_format"
