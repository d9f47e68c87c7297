"""services.layers on the small demo district: the GeoJSON and geobuf the maps draw (whole, generalised per
zoom band, cut to a viewport) and the side panel's facts."""

from __future__ import annotations

import json

import pytest
from shapely.geometry import box, shape
from sqlalchemy import text

from gridmap.config import Settings
from gridmap.domain.errors import InvalidInput, NotFound
from gridmap.services import layers
from gridmap.services.layers import View

# layer -> the SQL counting the features it must have
EXPECTED_COUNTS = {
    "district": "SELECT count(*) FROM district",
    "subdistrict": "SELECT count(*) FROM subdistrict",
    "community": "SELECT count(*) FROM community",
    "grid": "SELECT count(*) FROM grid",
    "compound": "SELECT count(*) FROM compound",
    "building": "SELECT count(*) FROM building",
    "gate": "SELECT count(*) FROM gate",
    "checkpoint": "SELECT count(*) FROM checkpoint",
    "service_point": "SELECT count(*) FROM service_point",
    "key_household": "SELECT count(DISTINCT household_id) FROM key_person",
    "controlled_area": "SELECT count(DISTINCT area_key) FROM controlled_area a WHERE a.ended_at IS NULL "
    "AND a.version = (SELECT max(version) FROM controlled_area v WHERE v.area_key = a.area_key)",
}

PERSONAL_FIELDS = {"name_of_person", "head_name", "phone", "id_number", "birth_year", "gender", "note"}


def _scalar(session, sql: str, **params):
    return session.execute(text(sql), params).scalar_one()


def _elevated_community(session, code: str) -> int:
    cid = session.execute(
        text(
            "SELECT ra.community_id FROM risk_assignment ra JOIN risk_class rc ON rc.id = ra.risk_class_id "
            "WHERE rc.code = :c AND ra.valid_to IS NULL AND ra.community_id IS NOT NULL ORDER BY 1 LIMIT 1"
        ),
        {"c": code},
    ).scalar()
    assert cid is not None, f"the demo has no {code}-risk community"
    return cid


def test_every_layer_is_a_feature_collection(session, now):
    for layer in layers.LAYERS:
        fc = layers.layer_geojson(session, layer, lang="zh", now=now)
        assert fc["type"] == "FeatureCollection"
        for f in fc["features"][:5]:
            assert f["type"] == "Feature"
            assert f["geometry"]["type"]
            assert {"id", "code", "name"} <= set(f["properties"])


@pytest.mark.parametrize("layer", sorted(EXPECTED_COUNTS))
def test_feature_counts_equal_table_counts(session, now, layer):
    fc = layers.layer_geojson(session, layer, lang="zh", now=now)
    assert len(fc["features"]) == _scalar(session, EXPECTED_COUNTS[layer])


def test_core_layers_are_not_empty(session, now):
    for layer in ("district", "community", "grid", "building", "checkpoint", "service_point", "key_household"):
        assert layers.layer_geojson(session, layer, now=now)["features"], layer


def test_coordinates_have_at_most_six_decimals(session, now):
    raw = layers.layer_geojson_text(session, "grid", now=now)
    coords = json.loads(raw)["features"][0]["geometry"]["coordinates"][0][0]
    for x, y in coords:
        assert len(repr(x).split(".")[-1]) <= 6 and len(repr(y).split(".")[-1]) <= 6


def test_elevated_community_has_its_risk_class_and_colour(session, now):
    cid = _elevated_community(session, "high")
    fc = layers.layer_geojson(session, "community", lang="en", now=now)
    props = next(f["properties"] for f in fc["features"] if f["id"] == cid)
    assert props["risk"] == "high"
    assert props["risk_name"] == "High risk"
    assert props["color"] == _scalar(session, "SELECT color FROM risk_class WHERE scheme='tier' AND code='high'")
    low = [f["properties"] for f in fc["features"] if f["properties"]["risk"] == "low"]
    assert low and all(p["severity"] == 1 for p in low)


def test_grids_inherit_their_communitys_class_unless_they_have_their_own(session, now):
    cid = _elevated_community(session, "high")
    fc = layers.layer_geojson(session, "grid", lang="zh", now=now)
    grids = [f["properties"] for f in fc["features"] if f["properties"]["community"]
             == _scalar(session, "SELECT name FROM community WHERE id = :id", id=cid)]
    own = {
        r.grid_id: r.code
        for r in session.execute(
            text(
                "SELECT ra.grid_id, rc.code FROM risk_assignment ra JOIN risk_class rc ON rc.id = ra.risk_class_id "
                "WHERE ra.valid_to IS NULL AND ra.grid_id IS NOT NULL"
            )
        )
    }
    assert grids
    for g in grids:
        if g["id"] in own:
            assert g["risk"] == own[g["id"]] and g["risk_inherited"] is False
        else:
            assert g["risk"] == "high" and g["risk_inherited"] is True
    # every grid carries a class and the household totals
    for f in fc["features"]:
        assert f["properties"]["risk"] is not None
        assert f["properties"]["households"] >= 0


def test_strictest_current_class_wins(session, now):
    cid = _elevated_community(session, "medium")
    # Add a second, stricter, current assignment: the community must show it.
    session.execute(
        text(
            "INSERT INTO risk_assignment (risk_class_id, community_id, valid_from, reason, author) "
            "SELECT id, :c, :t, 'test', 'test' FROM risk_class WHERE scheme = 'tier' AND code = 'high'"
        ),
        {"c": cid, "t": now.replace(year=now.year - 1)},
    )
    fc = layers.layer_geojson(session, "community", now=now)
    assert next(f for f in fc["features"] if f["id"] == cid)["properties"]["risk"] == "high"


def test_key_households_carry_counts_not_people(session, now):
    raw = layers.layer_geojson_text(session, "key_household", lang="zh", now=now)
    fc = json.loads(raw)
    assert fc["features"]
    for f in fc["features"]:
        props = f["properties"]
        assert f["geometry"]["type"] == "Point"
        assert not PERSONAL_FIELDS & set(props)
        assert props["persons"] >= 1
        assert sum(props["categories"].values()) >= props["persons"] or props["persons"] >= 1
    # Not a single key person's name, phone or ID number appears anywhere in the layer.
    people = session.execute(text("SELECT name, phone, id_number FROM key_person")).all()
    for name, phone, id_number in people:
        assert name not in raw
        if phone:
            assert phone not in raw
        if id_number:
            assert id_number not in raw
    total = sum(f["properties"]["persons"] for f in fc["features"])
    assert total == _scalar(session, "SELECT count(*) FROM key_person")


def test_grid_details_for_the_side_panel(session, now):
    gid = _scalar(session, "SELECT min(id) FROM grid")
    d = layers.feature_details(session, "grid", gid, "zh", now=now)
    assert d["layer"] == "grid" and d["id"] == gid
    assert d["households"] == _scalar(
        session, "SELECT count(*) FROM household h JOIN building b ON b.id = h.building_id WHERE b.grid_id = :g", g=gid
    )
    assert d["buildings"] == _scalar(session, "SELECT count(*) FROM building WHERE grid_id = :g", g=gid)
    assert d["leaders"], "every demo grid has a grid leader"
    assert d["leaders"][0]["name"] and d["leaders"][0]["phone"]
    assert d["risk"]["code"]
    assert sum(k["count"] for k in d["key_persons"]) >= d["key_persons_total"]
    assert all(set(k) == {"code", "name", "vulnerable", "count"} for k in d["key_persons"])


def test_community_details_have_measures_and_history(session, now):
    cid = _elevated_community(session, "high")
    d = layers.feature_details(session, "community", cid, "en", now=now)
    assert d["risk"]["code"] == "high"
    assert d["risk"]["measures"].startswith("No spread")
    assert d["grids"] == _scalar(session, "SELECT count(*) FROM grid WHERE community_id = :c", c=cid)
    codes = [h["code"] for h in d["history"] if h["grid"] is None]
    assert codes[0] == "high" and "low" in codes  # newest first, the old low tier kept
    assert d["households"] > 0


def test_building_checkpoint_service_point_details(session, now):
    bid = _scalar(session, "SELECT min(id) FROM building WHERE households > 0")
    b = layers.feature_details(session, "building", bid, "zh", now=now)
    assert b["households"] > 0 and b["floors"] >= 1 and b["grid"]

    kid = _scalar(session, "SELECT min(id) FROM checkpoint")
    k = layers.feature_details(session, "checkpoint", kid, "zh", now=now)
    assert k["gate"] and k["shifts_per_day"] >= 1 and k["staff_per_shift"] >= 1
    assert k["staff_per_day"] == k["shifts_per_day"] * k["staff_per_shift"]

    sid = _scalar(session, "SELECT min(id) FROM service_point")
    s = layers.feature_details(session, "service_point", sid, "en", now=now)
    assert s["kind"] and s["kind_name"] and "hours" in s and "capacity" in s


def test_key_household_details_have_no_names(session, now):
    hid = _scalar(session, "SELECT min(household_id) FROM key_person")
    d = layers.feature_details(session, "key_household", hid, "zh", now=now)
    assert d["key_persons_total"] >= 1
    assert not PERSONAL_FIELDS & set(d)
    names = {r[0] for r in session.execute(text("SELECT name FROM key_person WHERE household_id = :h"), {"h": hid})}
    assert not names & set(map(str, d.values()))


def test_every_layer_has_details(session, now):
    for layer in layers.LAYERS:
        fc = layers.layer_geojson(session, layer, now=now)
        if fc["features"]:
            d = layers.feature_details(session, layer, fc["features"][0]["id"], "en", now=now)
            assert d["layer"] == layer


def test_risk_legend_comes_from_the_table(session):
    legend = layers.risk_legend(session, "zh")
    assert len(legend) == _scalar(session, "SELECT count(*) FROM risk_class")
    assert {"低风险", "中风险", "高风险"} <= {r["name"] for r in legend}
    assert all(r["color"].startswith("#") for r in legend)
    assert layers.risk_legend(session, "en")[0]["name"] == "Low risk"


def test_bounds_and_errors(session, now):
    (s, w), (n, e) = layers.district_bounds(session)
    assert s < n and w < e
    with pytest.raises(InvalidInput):
        layers.layer_geojson(session, "household", now=now)
    with pytest.raises(NotFound):
        layers.feature_details(session, "grid", 10**9, "zh", now=now)


# --- city scale (issue 8): views of a layer ---------------------------------------------------------

SETTINGS = Settings()


def _geoms(session, table: str) -> dict[int, object]:
    rows = session.execute(text(f"SELECT id, ST_AsGeoJSON(geom, 15) FROM {table}")).all()
    return {fid: shape(json.loads(gj)) for fid, gj in rows}


def _centre_bbox(session, fraction: float = 0.3) -> tuple[float, float, float, float]:
    w, s, e, n = session.execute(
        text("SELECT ST_XMin(x), ST_YMin(x), ST_XMax(x), ST_YMax(x) FROM (SELECT ST_Extent(geom) AS x FROM grid) q")
    ).one()
    cx, cy, dx, dy = (w + e) / 2, (s + n) / 2, (e - w) * fraction / 2, (n - s) * fraction / 2
    return (cx - dx, cy - dy, cx + dx, cy + dy)


@pytest.mark.parametrize("layer", ["building", "grid", "key_household", "gate"])
def test_bbox_returns_exactly_the_features_that_intersect_it(session, now, layer):
    bbox = _centre_bbox(session)
    fc = layers.layer_geojson(session, layer, now=now, view=View(18, bbox), settings=SETTINGS)
    got = {f["id"] for f in fc["features"]}
    table = "household" if layer == "key_household" else layer
    expected = {fid for fid, g in _geoms(session, table).items() if g.intersects(box(*bbox))}
    if layer == "key_household":
        expected &= set(session.execute(text("SELECT DISTINCT household_id FROM key_person")).scalars())
    assert got and got == expected
    assert len(got) < _scalar(session, f"SELECT count(*) FROM {table}")  # a part, not the whole layer


def test_bbox_answer_is_capped(session, now):
    capped = SETTINGS.model_copy(update={"map_viewport_max_features": 7})
    fc = layers.layer_geojson(session, "building", now=now, view=View(18, _centre_bbox(session, 1.0)), settings=capped)
    assert len(fc["features"]) == 7


@pytest.mark.parametrize("zoom", [10, 12.5, 14])
@pytest.mark.parametrize("layer", ["grid", "community", "district"])
def test_generalised_geometry_is_valid_and_within_tolerance(session, now, layer, zoom):
    band = layers.zoom_band(SETTINGS, zoom)
    tolerance = layers.tolerance_deg(SETTINGS, band)
    original = _geoms(session, layer)
    fc = layers.layer_geojson(session, layer, now=now, view=View(zoom), settings=SETTINGS)
    assert {f["id"] for f in fc["features"]} == set(original)  # no polygon dropped
    vertices_before = vertices_after = 0
    for f in fc["features"]:
        g, o = shape(f["geometry"]), original[f["id"]]
        assert g.is_valid and not g.is_empty, f["id"]
        # Douglas-Peucker within the tolerance, plus the snapping (half a snap cell per axis)
        assert g.hausdorff_distance(o) <= tolerance + tolerance / 4, (f["id"], g.hausdorff_distance(o), tolerance)
        vertices_before += len(o.exterior.coords) if o.geom_type == "Polygon" else sum(
            len(p.exterior.coords) for p in o.geoms)
        vertices_after += len(g.exterior.coords) if g.geom_type == "Polygon" else sum(
            len(p.exterior.coords) for p in g.geoms)
    assert vertices_after <= vertices_before
    if layer == "district" and zoom <= 12:
        assert vertices_after < vertices_before  # a real boundary loses vertices far out


def test_full_detail_zoom_sends_the_stored_geometry(session, now):
    stored = layers.layer_geojson(session, "grid", now=now)
    near = layers.layer_geojson(session, "grid", now=now, view=View(SETTINGS.map_full_detail_zoom), settings=SETTINGS)
    assert near == stored


def test_geobuf_decodes_to_the_same_features(session, now):
    import geobuf

    for layer, view in (("grid", View(12)), ("building", View(18, _centre_bbox(session))), ("checkpoint", View())):
        fc = layers.layer_geojson(session, layer, now=now, view=view, settings=SETTINGS)
        decoded = geobuf.decode(layers.layer_geobuf(session, layer, now=now, view=view, settings=SETTINGS))
        assert decoded["type"] == "FeatureCollection"
        assert [f["properties"]["id"] for f in decoded["features"]] == [f["id"] for f in fc["features"]]
        assert [f["geometry"]["type"] for f in decoded["features"]] == [f["geometry"]["type"] for f in fc["features"]]
        assert set(decoded["features"][0]["properties"]) <= set(fc["features"][0]["properties"])
        assert {"id", "code", "name"} <= set(decoded["features"][0]["properties"])


def test_below_min_zoom_is_empty_without_a_query(session, now, monkeypatch):
    minimum = SETTINGS.map_viewport_min_zoom["building"]
    bbox = _centre_bbox(session)

    def no_query(*_a, **_k):
        raise AssertionError("the layer was read")

    monkeypatch.setattr(layers, "_layer_query", no_query)
    assert layers.layer_geojson(session, "building", now=now, view=View(minimum - 0.25, bbox), settings=SETTINGS) == {
        "type": "FeatureCollection", "features": []}
    assert layers.layer_geobuf(session, "building", view=View(minimum - 1, bbox), settings=SETTINGS) == layers.EMPTY_GEOBUF
    import geobuf

    assert geobuf.decode(layers.EMPTY_GEOBUF) == {"type": "FeatureCollection", "features": []}


def test_bad_views_are_refused():
    assert layers.parse_view("12.5", "106.5,29.5,106.6,29.6") == View(12.5, (106.5, 29.5, 106.6, 29.6))
    assert layers.parse_view(None, None) == View()
    for z, bbox in (("x", None), ("99", None), (None, "1,2,3"), (None, "106.6,29.5,106.5,29.6"), (None, "a,b,c,d")):
        with pytest.raises(InvalidInput):
            layers.parse_view(z, bbox)


def test_etag_follows_version_view_and_area():
    from gridmap.services.access import Principal

    base = {"version": 5, "layer": "grid", "fmt": "pbf", "lang": "zh", "view": View(12), "principal": None,
            "at": 1000.0}
    leader = Principal(user_id=1, username="leader", role="grid_leader", area_level="grid", area_id=3)
    etag = layers.layer_etag(SETTINGS, **base)
    assert etag == layers.layer_etag(SETTINGS, **base)
    for change in ({"version": 6}, {"view": View(14)}, {"fmt": "geojson"}, {"lang": "en"}, {"principal": leader},
                   {"at": 1000.0 + SETTINGS.map_layer_etag_seconds}):
        assert layers.layer_etag(SETTINGS, **{**base, **change}) != etag, change


def test_key_households_per_grid_while_zoomed_out(session, now):
    """Zoomed out the map shows key households as a count per grid (at a point of the grid), with
    the most pressing kind among them; from the households' own zoom on, the stand-in is empty."""
    rows = session.execute(text(
        "SELECT b.grid_id, h.id AS household, kp.id AS person, "
        "bool_or(c.is_case) AS is_case, bool_or(c.vulnerable) AS vulnerable "
        "FROM key_person kp JOIN household h ON h.id = kp.household_id JOIN building b ON b.id = h.building_id "
        "LEFT JOIN key_person_category_link l ON l.key_person_id = kp.id "
        "LEFT JOIN key_person_category c ON c.id = l.category_id GROUP BY 1, 2, 3")).all()
    want: dict[int, dict] = {}
    for r in rows:
        g = want.setdefault(r.grid_id, {"households": set(), "persons": 0, "case": False, "vulnerable": False})
        g["households"].add(r.household)
        g["persons"] += 1
        g["case"] |= bool(r.is_case)
        g["vulnerable"] |= bool(r.vulnerable)
    fc = layers.layer_geojson(session, "key_household_grid", now=now, view=View(14), settings=SETTINGS)
    got = {f["id"]: f["properties"] for f in fc["features"]}
    assert got and set(got) == set(want)
    for grid_id, p in got.items():
        w = want[grid_id]
        assert (p["households"], p["persons"], p["case"], p["vulnerable"]) == (
            len(w["households"]), w["persons"], w["case"], w["vulnerable"])
    # the point lies in its grid
    grids = {r.id: shape(json.loads(r.g)) for r in session.execute(
        text("SELECT id, ST_AsGeoJSON(geom) AS g FROM grid WHERE id = ANY(:ids)"), {"ids": list(got)})}
    assert all(grids[f["id"]].intersects(shape(f["geometry"])) for f in fc["features"])
    top = SETTINGS.map_viewport_max_zoom["key_household_grid"]
    assert top == SETTINGS.map_viewport_min_zoom["key_household"]  # one takes over where the other ends
    assert layers.layer_geojson(session, "key_household_grid", now=now, view=View(top), settings=SETTINGS)[
        "features"] == []
    assert layers.layer_geobuf(session, "key_household_grid", view=View(top + 1), settings=SETTINGS) == layers.EMPTY_GEOBUF


def test_key_households_per_grid_for_a_viewport(session, now):
    """For a viewport: the grids whose badge point lies in it, each with its whole count."""
    bbox = _centre_bbox(session, 0.5)
    whole = {f["id"]: f for f in layers.layer_geojson(session, "key_household_grid", now=now, view=View(14),
                                                      settings=SETTINGS)["features"]}
    part = layers.layer_geojson(session, "key_household_grid", now=now, view=View(14, bbox), settings=SETTINGS)
    got = {f["id"]: f for f in part["features"]}
    expected = {fid for fid, f in whole.items() if shape(f["geometry"]).intersects(box(*bbox))}
    assert got and set(got) == expected and len(got) < len(whole)
    assert all(got[g]["properties"] == whole[g]["properties"] for g in got)  # counts of whole grids
    below = layers.layer_geojson(session, "key_household_grid", now=now,
                                 view=View(SETTINGS.map_viewport_min_zoom["key_household_grid"] - 1, bbox),
                                 settings=SETTINGS)
    assert below["features"] == []
