"""``gridmap impact AREA_FILE``: the same impact as the preview, and every class of bad area file
refused with one line and exit status 2, no traceback, nothing written."""

import json

import pytest
import shapely
from shapely.geometry import mapping
from sqlalchemy import text

from gridmap.cli import main
from gridmap.services.impact import compute_impact


def _feature_collection(geom, crs: str | None = None) -> dict:
    fc = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": mapping(geom)}]}
    if crs:
        fc["crs"] = {"type": "name", "properties": {"name": crs}}
    return fc


@pytest.fixture
def grid_polygon(engine):
    with engine.connect() as conn:
        g = conn.execute(text("SELECT ST_AsText(ST_GeometryN(geom, 1)) FROM grid ORDER BY id LIMIT 1")).scalar_one()
    return shapely.from_wkt(g)


def _write(tmp_path, name: str, data) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
    return str(path)


def _counts(engine) -> dict:
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                for t in ("controlled_area", "building", "household", "key_person")}


def test_impact_json_has_the_promised_keys_and_matches_the_service(tmp_path, grid_polygon, settings, session, capsys):
    path = _write(tmp_path, "area.geojson", _feature_collection(grid_polygon))
    assert main(["impact", path, "--class", "controlled", "--json"], settings=settings) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("buildings", "households", "residents", "key_persons", "gates", "checkpoints_needed",
                "duty_staff_needed", "grids", "warnings"):
        assert key in out
    expected = compute_impact(session, grid_polygon, "controlled", settings)
    assert out["buildings"] == expected.buildings > 0
    assert out["households"] == expected.households and out["key_persons"] == expected.key_persons
    assert isinstance(out["warnings"], list)


BOWTIE = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}


def _bad_files(grid_polygon) -> dict:
    c = grid_polygon.centroid
    bowtie = shapely.affinity.translate(shapely.affinity.scale(shapely.geometry.shape(BOWTIE), 0.002, 0.002),
                                        c.x, c.y)
    swapped = shapely.transform(grid_polygon, lambda xy: xy[:, ::-1])
    beijing = shapely.box(116.38, 39.90, 116.40, 39.92)
    many = shapely.Point(c.x, c.y).buffer(0.003, quad_segs=1000)  # 4,000 vertices
    metres = shapely.affinity.scale(grid_polygon, 1000, 1000, origin=(0, 0))  # declared 4326, clearly metres
    return {
        "self_intersecting": (_feature_collection(bowtie), "invalid_geometry"),
        "not_a_polygon": (_feature_collection(shapely.LineString([(c.x, c.y), (c.x + 0.001, c.y)])), "not_polygon"),
        "wrong_crs": (_feature_collection(metres), "no_crs"),
        "swapped_lat_lon": (_feature_collection(swapped), "swapped_coordinates"),
        "outside_district": (_feature_collection(beijing), "outside_district"),
        "thousands_of_vertices": (_feature_collection(many), "too_many_vertices"),
        "empty": ({"type": "FeatureCollection", "features": []}, "empty_area"),
        "not_json": ("this is not a file of areas", "unreadable_file"),
    }


@pytest.mark.parametrize("case", ["self_intersecting", "not_a_polygon", "wrong_crs", "swapped_lat_lon",
                                  "outside_district", "thousands_of_vertices", "empty", "not_json"])
def test_bad_area_files_get_one_line_and_exit_2(case, tmp_path, grid_polygon, settings, engine, capsys):
    data, _code = _bad_files(grid_polygon)[case]
    path = _write(tmp_path, f"{case}.geojson", data)
    before = _counts(engine)
    assert main(["impact", path, "--json"], settings=settings) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err
    assert _counts(engine) == before


def test_bad_file_errors_carry_their_codes(tmp_path, grid_polygon, settings, session):
    from gridmap.domain.errors import GridmapError
    from gridmap.io.area import read_area_file
    from gridmap.services.impact import check_inside_district

    for case, (data, code) in _bad_files(grid_polygon).items():
        path = _write(tmp_path, f"{case}.geojson", data)
        with pytest.raises(GridmapError) as exc:
            area = read_area_file(path, max_bytes=settings.max_upload_bytes, max_vertices=settings.max_area_vertices)
            check_inside_district(session, area)
        assert exc.value.code == code, (case, exc.value)
