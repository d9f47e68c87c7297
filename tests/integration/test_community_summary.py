"""The impact summary kept per community and per grid (migration 0015) never drifts from the rows
it sums: every kind of change is followed by a repair from the change log, and the repaired tables
must be what a full computation gives. An impact preview over whole communities and grids stays
right after a change without anyone repairing by hand."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from gridmap.services.impact import compute_impact, refresh_community_summary
from tests.integration.test_impact import circle_around_building, independent_impact

_SNAPSHOTS = (
    text("SELECT community_id, name, ST_AsEWKB(extent), grids, households, residents, buildings, case_buildings, "
         "case_households, compounds, gates, open_gates, staffed_gates, key_counts, grid_cards, loose_compounds "
         "FROM community_summary ORDER BY community_id"),
    text("SELECT grid_id, community_id, ST_AsEWKB(extent), households, residents, buildings, case_buildings, "
         "case_households, compounds, gates, open_gates, staffed_gates, key_counts, key_households, key_persons, "
         "card, compound_ids "
         "FROM grid_summary ORDER BY grid_id"),
)


def _snapshot(session) -> list[tuple]:
    """Both kept tables, every column."""
    return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r)
            for sql in _SNAPSHOTS for r in session.execute(sql)]


def _repaired_equals_full(session) -> list[tuple]:
    """Repair from the log, then compare with a full computation; the repaired snapshot."""
    refresh_community_summary(session)
    repaired = _snapshot(session)
    refresh_community_summary(session, full=True)
    assert repaired == _snapshot(session)
    return repaired


def _one(session, sql: str, **params):
    return session.execute(text(sql), params).one()


# Each change moves at least one kept figure; (label, statements run in turn).
CHANGES = [
    ("household added to a case building", [
        "INSERT INTO household (building_id, room, residents, geom) "
        "SELECT b.id, 'T-1', 3, ST_Centroid(b.geom) FROM building b WHERE b.id = ("
        "  SELECT min(bk.building_id) FROM building_key_count bk JOIN key_person_category c ON c.id = bk.category_id "
        "  WHERE c.is_case AND bk.n > 0)"]),
    ("household moved within its grid out of a case building", [
        "UPDATE household SET room = 'moved-' || id, building_id = ("
        "  SELECT min(b2.id) FROM building b2 JOIN building b ON b.grid_id = b2.grid_id AND b.id = household.building_id "
        "  WHERE b2.id <> b.id AND NOT EXISTS (SELECT 1 FROM building_key_count k WHERE k.building_id = b2.id)) "
        "WHERE id = (SELECT min(h.id) FROM household h JOIN building_key_count bk ON bk.building_id = h.building_id "
        "  JOIN key_person_category c ON c.id = bk.category_id AND c.is_case "
        "  WHERE NOT EXISTS (SELECT 1 FROM key_person kp WHERE kp.household_id = h.id))"]),
    ("a case in a building without one", [
        "INSERT INTO key_person (household_id, name, version, geom) SELECT h.id, '测试', 1, h.geom FROM household h "
        "WHERE h.id = (SELECT min(h2.id) FROM household h2 WHERE NOT EXISTS ("
        "  SELECT 1 FROM building_key_count k WHERE k.building_id = h2.building_id))",
        "INSERT INTO key_person_category_link (key_person_id, category_id) "
        "SELECT max(kp.id), (SELECT min(id) FROM key_person_category WHERE is_case) FROM key_person kp"]),
    ("a key person without a category, in a household without one", [
        "INSERT INTO key_person (household_id, name, version, geom) SELECT h.id, '无类别', 1, h.geom FROM household h "
        "WHERE h.id = (SELECT min(h2.id) FROM household h2 JOIN household h3 ON h3.building_id = h2.building_id "
        "  JOIN key_person k3 ON k3.household_id = h3.id "
        "  WHERE NOT EXISTS (SELECT 1 FROM key_person k WHERE k.household_id = h2.id))"]),
    ("that person moved to a household of its building that has key persons", [
        "UPDATE key_person SET household_id = (SELECT min(h3.id) FROM household h3 JOIN household h2 "
        "  ON h2.building_id = h3.building_id AND h2.id = key_person.household_id "
        "  WHERE h3.id <> h2.id AND EXISTS (SELECT 1 FROM key_person k WHERE k.household_id = h3.id)) "
        "WHERE name = '无类别'"]),
    ("a category no longer a case", [
        "UPDATE key_person_category SET is_case = false WHERE id = (SELECT min(id) FROM key_person_category WHERE is_case)"]),
    ("a gate added, another closed", [
        "INSERT INTO gate (compound_id, name, kind, is_open, geom) "
        "SELECT id, '新门', 'both', true, ST_PointOnSurface(geom) FROM compound ORDER BY id LIMIT 1",
        "UPDATE gate SET is_open = false WHERE id = (SELECT max(id) FROM gate WHERE is_open AND compound_id <> "
        "  (SELECT min(id) FROM compound))"]),
    ("a checkpoint at an open unstaffed gate", [
        "INSERT INTO checkpoint (gate_id, name, shifts_per_day, staff_per_shift, active, geom) "
        "SELECT ga.id, '卡点', 3, 2, true, ga.geom FROM gate ga WHERE ga.is_open AND NOT EXISTS ("
        "  SELECT 1 FROM checkpoint ck WHERE ck.gate_id = ga.id) ORDER BY ga.id LIMIT 1"]),
    ("a checkpoint at an open gate stood down", [
        "UPDATE checkpoint SET active = false WHERE id = (SELECT max(ck.id) FROM checkpoint ck "
        "  JOIN gate ga ON ga.id = ck.gate_id WHERE ck.active AND ga.is_open)"]),
    ("a compound moved far out, another deleted", [
        "UPDATE compound SET geom = ST_Translate(geom, 0.05, 0.05) WHERE id = (SELECT max(id) FROM compound)",
        "DELETE FROM compound WHERE id = (SELECT min(id) FROM compound)"]),
    ("a grid leader renamed, another stood down", [
        "UPDATE staff SET name = '新名字', phone = '13900000000' WHERE id = (SELECT min(s.id) FROM staff s "
        "  JOIN staff_assignment sa ON sa.staff_id = s.id AND sa.grid_id IS NOT NULL WHERE s.role = 'grid_leader')",
        "UPDATE staff SET active = false WHERE id = (SELECT max(s.id) FROM staff s "
        "  JOIN staff_assignment sa ON sa.staff_id = s.id AND sa.grid_id IS NOT NULL WHERE s.role = 'grid_leader')"]),
    ("a grid leader's assignment removed", [
        "DELETE FROM staff_assignment WHERE id = (SELECT min(sa.id) FROM staff_assignment sa "
        "  JOIN staff s ON s.id = sa.staff_id WHERE s.role = 'grid_leader' AND sa.grid_id IS NOT NULL)"]),
    ("a grid renamed, another moved to another community", [
        "UPDATE grid SET code = 'ZZ-' || code, name = '改名网格' WHERE id = (SELECT min(id) FROM grid)",
        "UPDATE grid SET community_id = (SELECT min(id) FROM community) WHERE id = ("
        "  SELECT max(id) FROM grid WHERE community_id <> (SELECT min(id) FROM community))"]),
    ("a building moved to a grid of another community, another deleted", [
        "UPDATE building SET grid_id = (SELECT min(id) FROM grid) WHERE id = (SELECT max(b.id) FROM building b "
        "  JOIN grid g ON g.id = b.grid_id WHERE g.community_id <> (SELECT community_id FROM grid ORDER BY id LIMIT 1))",
        "DELETE FROM building WHERE id = (SELECT min(id) FROM building)"]),
    ("a community renamed and redrawn", [
        "UPDATE community SET name = '新社区', geom = ST_Multi(ST_Buffer(geom, 0.01)) "
        "WHERE id = (SELECT max(id) FROM community)"]),
    ("checkpoints truncated", ["TRUNCATE checkpoint CASCADE"]),
]


def test_the_summary_follows_every_kind_of_change(session):
    before = _repaired_equals_full(session)
    assert before and all(r[3] > 0 for r in before[:5])  # communities with grids
    grids = session.execute(text("SELECT count(*) FROM grid")).scalar_one()
    assert session.execute(text("SELECT count(*) FROM grid_summary")).scalar_one() == grids
    for label, statements in CHANGES:
        for statement in statements:
            session.execute(text(statement))
        assert session.execute(text("SELECT count(*) FROM community_summary_dirty")).scalar_one() > 0, label
        after = _repaired_equals_full(session)
        assert after != before, f"{label}: changed no kept figure, so tests nothing"
        assert session.execute(text("SELECT count(*) FROM community_summary_dirty")).scalar_one() == 0, label
        before = after


def test_changes_that_move_no_figure_log_nothing(session):
    refresh_community_summary(session)
    session.execute(text("UPDATE building SET name = name || '栋' WHERE id = (SELECT min(id) FROM building)"))
    session.execute(text("UPDATE staff SET skills = 'x' WHERE id = (SELECT min(id) FROM staff)"))
    assert session.execute(text("SELECT count(*) FROM community_summary_dirty")).scalar_one() == 0


@pytest.fixture
def wide_area(session):
    """A circle of the demo district that covers whole communities (and cuts others)."""
    area = circle_around_building(session, 60, 1500)
    whole = session.execute(text(
        "SELECT count(*) FROM community_summary WHERE ST_Covers(ST_GeomFromText(:a, 4326), extent)"),
        {"a": area.wkt}).scalar_one()
    assert whole >= 3
    # ... and, in the communities it cuts, grids whose extent it covers and grids it cuts
    covered, cut = session.execute(text(
        "SELECT count(*) FILTER (WHERE ST_Covers(a, g.extent)), "
        "       count(*) FILTER (WHERE ST_Intersects(a, gr.geom) AND NOT ST_Covers(a, gr.geom)) "
        "FROM (SELECT ST_GeomFromText(:a, 4326) AS a) x, community_summary s "
        "JOIN grid_summary g ON g.community_id = s.community_id JOIN grid gr ON gr.id = g.grid_id "
        "WHERE ST_Intersects(a, s.extent) AND NOT ST_Covers(a, s.extent)"), {"a": area.wkt}).one()
    assert covered >= 1 and cut >= 1
    return area


def test_a_preview_over_whole_communities_follows_changes_without_a_manual_repair(session, settings, wide_area):
    refresh_community_summary(session)
    hid, bid = _one(session, "SELECT h.id, h.building_id FROM household h JOIN building b ON b.id = h.building_id "
                             "JOIN grid g ON g.id = b.grid_id JOIN community_summary s ON s.community_id = g.community_id "
                             "WHERE ST_Covers(ST_GeomFromText(:a, 4326), s.extent) ORDER BY h.id LIMIT 1", a=wide_area.wkt)
    session.execute(text("INSERT INTO household (building_id, room, residents, geom) "
                         "SELECT building_id, 'T-2', 4, geom FROM household WHERE id = :h"), {"h": hid})
    session.execute(text("DELETE FROM gate WHERE id = (SELECT ga.id FROM gate ga JOIN compound cp ON cp.id = ga.compound_id "
                         "JOIN community_summary s ON s.community_id = cp.community_id "
                         "WHERE ST_Covers(ST_GeomFromText(:a, 4326), s.extent) ORDER BY ga.id LIMIT 1)"), {"a": wide_area.wkt})
    session.execute(text("INSERT INTO key_person (household_id, name, version, geom) "
                         "SELECT id, '测试', 1, geom FROM household WHERE id = :h"), {"h": hid})
    session.execute(text("INSERT INTO key_person_category_link (key_person_id, category_id) "
                         "SELECT max(id), (SELECT min(id) FROM key_person_category WHERE is_case) FROM key_person"))
    assert session.execute(text("SELECT count(*) FROM community_summary_dirty")).scalar_one() > 0
    got = compute_impact(session, wide_area, "sealed", settings)
    want = independent_impact(session, wide_area, settings.building_inside_share, settings.gate_boundary_distance_m)
    assert (got.buildings, got.households, got.residents) == (want["buildings"], want["households"], want["residents"])
    assert got.key_persons == want["key_persons"]
    assert (got.case_buildings, got.case_households) == (want["case_buildings"], want["case_households"])
    assert (got.compounds, got.compounds_cut) == (want["compounds"], want["compounds_cut"])
    assert abs(got.gates - want["gates"]) <= 1
    assert {g["id"]: (g["buildings"], g["households"]) for g in got.grids} == want["grids"]
    assert compute_impact(session, wide_area, "sealed", settings, with_building_ids=True).building_ids == \
        want["building_ids"]
    assert session.execute(text("SELECT count(*) FROM community_summary_dirty")).scalar_one() == 0
    assert bid in want["building_ids"]
