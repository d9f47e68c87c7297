"""The impact of a drawn area, checked against an independent computation in shapely/pyproj on
the same rows."""

from collections import Counter

import pytest
import shapely
from pyproj import Transformer
from shapely import wkb
from sqlalchemy import text

from gridmap.services.impact import ImpactError, compute_impact

_TO_M = Transformer.from_crs("EPSG:4326", "EPSG:32648", always_xy=True)
_TO_DEG = Transformer.from_crs("EPSG:32648", "EPSG:4326", always_xy=True)


def to_m(g):
    return shapely.transform(g, _TO_M.transform, interleaved=False)


def to_deg(g):
    return shapely.transform(g, _TO_DEG.transform, interleaved=False)


def circle_around_building(session, offset: int, radius_m: float):
    lon, lat = session.execute(
        text("SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(geom) c FROM building ORDER BY id OFFSET :o LIMIT 1) s"),
        {"o": offset},
    ).one()
    return to_deg(to_m(shapely.Point(lon, lat)).buffer(radius_m, quad_segs=16))


def independent_impact(session, area, share: float, gate_distance_m: float) -> dict:
    buildings = session.execute(text("SELECT id, ST_AsBinary(geom) FROM building")).all()
    inside = set()
    for bid, g in buildings:
        geom = wkb.loads(bytes(g))
        part = geom.intersection(area)
        if not part.is_empty and part.area >= share * geom.area:
            inside.add(bid)
    households = session.execute(text("SELECT building_id, residents FROM household")).all()
    hh = [r for r in households if r.building_id in inside]
    cats = session.execute(text(
        "SELECT h.building_id, c.code, kp.id FROM key_person kp JOIN household h ON h.id = kp.household_id "
        "JOIN key_person_category_link l ON l.key_person_id = kp.id JOIN key_person_category c ON c.id = l.category_id"
    )).all()
    by_cat = Counter(code for b, code, _ in cats if b in inside)
    area_m = to_m(area)
    gates = [
        (gid, is_open) for gid, is_open, g in session.execute(text("SELECT id, is_open, ST_AsBinary(geom) FROM gate"))
        if to_m(wkb.loads(bytes(g))).distance(area_m) <= gate_distance_m
    ]
    compounds = [
        (area.covers(g), g.intersection(area).area > 0)
        for g in (wkb.loads(bytes(r[0])) for r in session.execute(text("SELECT ST_AsBinary(geom) FROM compound")))
        if g.intersects(area)
    ]
    case_buildings = {b for b, code, _ in session.execute(text(
        "SELECT h.building_id, c.code, kp.id FROM key_person kp JOIN household h ON h.id = kp.household_id "
        "JOIN key_person_category_link l ON l.key_person_id = kp.id "
        "JOIN key_person_category c ON c.id = l.category_id AND c.is_case")) if b in inside}
    grid_of = dict(session.execute(text("SELECT id, grid_id FROM building")).all())
    per_grid = Counter(grid_of[b] for b in inside)
    hh_per_grid = Counter(grid_of[r.building_id] for r in hh)
    return {"buildings": len(inside), "households": len(hh), "residents": sum(r.residents for r in hh),
            "key_persons": dict(by_cat), "gates": len(gates),
            "compounds": sum(1 for _whole, meets in compounds if meets),
            "compounds_cut": sum(1 for whole, meets in compounds if meets and not whole),
            "case_buildings": len(case_buildings),
            "case_households": sum(1 for r in households if r.building_id in case_buildings),
            "grids": {g: (per_grid[g], hh_per_grid[g]) for g in per_grid},
            "building_ids": sorted(inside)}


@pytest.mark.parametrize(("offset", "radius"), [(0, 30), (40, 150), (120, 400), (60, 900)])
def test_impact_matches_an_independent_computation(session, settings, offset, radius):
    area = circle_around_building(session, offset, radius)
    got = compute_impact(session, area, "sealed", settings)
    want = independent_impact(session, area, settings.building_inside_share, settings.gate_boundary_distance_m)
    assert got.buildings == want["buildings"] > 0
    assert (got.households, got.residents) == (want["households"], want["residents"])
    assert got.key_persons == want["key_persons"]
    # Gates: within 5 m measured on geography vs UTM; allow a gate sitting right at the limit.
    assert abs(got.gates - want["gates"]) <= 1
    assert got.duty_staff_needed == got.open_gates * settings.checkpoint_shifts_per_day * settings.checkpoint_staff_per_shift
    assert got.delivery_volunteers_needed == -(-got.households // settings.households_per_delivery_volunteer)
    assert {g["id"] for g in got.grids} and all(g["leader"] for g in got.grids)
    # Compounds meeting the area (interiors, not a shared edge) and those it cuts; buildings with cases.
    assert (got.compounds, got.compounds_cut) == (want["compounds"], want["compounds_cut"])
    assert (got.case_buildings, got.case_households) == (want["case_buildings"], want["case_households"])
    # Per grid: whole grids count as one row each, cut grids building by building: the same sums.
    assert {g["id"]: (g["buildings"], g["households"]) for g in got.grids} == want["grids"]
    assert got.building_ids == []  # only when asked
    ids = compute_impact(session, area, "sealed", settings, with_building_ids=True).building_ids
    assert ids == want["building_ids"]


def test_a_sealed_area_far_larger_than_its_cases_is_warned(session, settings):
    # One case in the district: keep the first case person's categories, drop every other case mark.
    keep = session.execute(text(
        "SELECT min(l.key_person_id) FROM key_person_category_link l "
        "JOIN key_person_category c ON c.id = l.category_id AND c.is_case"
    )).scalar_one()
    session.execute(text(
        "DELETE FROM key_person_category_link l USING key_person_category c "
        "WHERE c.id = l.category_id AND c.is_case AND l.key_person_id <> :k"
    ), {"k": keep})
    case_building = session.execute(text(
        "SELECT h.building_id FROM key_person kp JOIN household h ON h.id = kp.household_id WHERE kp.id = :k"
    ), {"k": keep}).scalar_one()
    lon, lat = session.execute(
        text("SELECT ST_X(ST_Centroid(geom)), ST_Y(ST_Centroid(geom)) FROM building WHERE id = :b"), {"b": case_building}
    ).one()
    huge = to_deg(to_m(shapely.Point(lon, lat)).buffer(1500))
    impact = compute_impact(session, huge, "sealed", settings)
    assert impact.case_buildings == 1
    case_households = session.execute(text("SELECT households FROM building WHERE id = :b"), {"b": case_building}).scalar()
    assert impact.case_households == case_households
    warning = next(w for w in impact.warnings if w["code"] == "overcontrol_ratio")
    assert warning["numbers"]["ratio"] == pytest.approx(impact.households / case_households, abs=0.01)
    assert warning["numbers"]["ratio"] > settings.overcontrol_households_ratio
    assert str(impact.households) in warning["message_zh"]

    footprint = wkb.loads(bytes(session.execute(
        text("SELECT ST_AsBinary(geom) FROM building WHERE id = :b"), {"b": case_building}
    ).scalar_one()))
    just_the_building = compute_impact(session, footprint, "sealed", settings)
    assert just_the_building.case_buildings == 1
    assert "overcontrol_ratio" not in {w["code"] for w in just_the_building.warnings}


def test_sealing_a_whole_community_is_flagged(session, settings):
    community = session.execute(text("SELECT ST_AsBinary(geom) FROM community ORDER BY id LIMIT 1")).scalar_one()
    area = wkb.loads(bytes(community))
    impact = compute_impact(session, area, "sealed", settings)
    assert "whole_community_sealed" in {w["code"] for w in impact.warnings}


def test_unknown_class_is_a_user_error(session, settings):
    with pytest.raises(ImpactError) as exc:
        compute_impact(session, circle_around_building(session, 0, 50), "lockdown", settings)
    assert exc.value.code == "bad_class"
