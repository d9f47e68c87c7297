"""The demo district on real PostGIS: the counts the foundation promises, zero nesting violations,
and totals per building and grid that never drift from the households they sum."""

from sqlalchemy import text

from gridmap.services.demo import DemoAlreadyLoaded, load_demo
from gridmap.services.stats import compute_stats


def test_small_demo_nests_without_violations(session, settings):
    stats = compute_stats(session, settings)
    assert stats.nesting_violations == 0, stats.violations
    assert stats.counts["grid"] >= 8 and stats.counts["household"] >= 8 * 300


def test_full_demo_meets_the_foundation_counts(session, settings, now):
    written = load_demo(session, settings=settings, now=now, scale="demo", seed=1, replace=True)
    assert written["household"] >= 40_000
    stats = compute_stats(session, settings)
    c = stats.counts
    assert c["community"] >= 10 and c["grid"] >= 100 and c["building"] >= 2_000 and c["household"] >= 40_000
    assert c["subdistrict"] >= 2 and c["compound"] > 0 and c["gate"] > 0
    assert c["key_person"] > 0 and c["staff"] > 0 and c["checkpoint"] > 0 and c["service_point"] > 0
    assert stats.nesting_violations == 0, stats.violations
    per_grid = session.execute(text("SELECT min(households), max(households) FROM grid")).one()
    assert settings.households_per_grid_min <= per_grid[0] and per_grid[1] <= settings.households_per_grid_max
    elevated = session.execute(text(
        "SELECT count(DISTINCT ra.community_id) FROM risk_assignment ra JOIN risk_class rc ON rc.id = ra.risk_class_id "
        "WHERE rc.code IN ('medium', 'high') AND ra.valid_to IS NULL AND ra.community_id IS NOT NULL"
    )).scalar_one()
    assert 2 <= elevated <= 3


def test_loading_twice_is_refused_without_replace(session, settings, now):
    try:
        load_demo(session, settings=settings, now=now, scale="small", seed=7)
    except DemoAlreadyLoaded as exc:
        assert exc.code == "demo_already_loaded"
    else:
        raise AssertionError("a second load must be refused")


def _drift(session) -> tuple[int, int]:
    buildings = session.execute(text(
        "SELECT count(*) FROM building b LEFT JOIN (SELECT building_id, count(*) n, sum(residents) r "
        "FROM household GROUP BY building_id) t ON t.building_id = b.id "
        "WHERE b.households <> coalesce(t.n, 0) OR b.residents <> coalesce(t.r, 0)"
    )).scalar_one()
    grids = session.execute(text(
        "SELECT count(*) FROM grid g LEFT JOIN (SELECT grid_id, sum(households) n, sum(residents) r, count(*) b "
        "FROM building GROUP BY grid_id) t ON t.grid_id = g.id "
        "WHERE g.households <> coalesce(t.n, 0) OR g.residents <> coalesce(t.r, 0) OR g.buildings <> coalesce(t.b, 0)"
    )).scalar_one()
    return buildings, grids


def test_totals_follow_every_change_of_households(session):
    assert _drift(session) == (0, 0)
    b1, b2 = session.execute(text(
        "SELECT b1.id, b2.id FROM building b1 JOIN building b2 ON b1.grid_id <> b2.grid_id LIMIT 1"
    )).one()
    session.execute(text(
        "INSERT INTO household (building_id, unit, room, residents, geom) "
        "SELECT :b, '9单元', '9' || g, 3, ST_PointOnSurface(geom) FROM building, generate_series(1, 5) g WHERE id = :b"
    ), {"b": b1})
    session.execute(text("UPDATE household SET residents = residents + 1 WHERE building_id = :b"), {"b": b1})
    session.execute(text(
        "UPDATE household SET building_id = :b2 WHERE id IN (SELECT id FROM household WHERE building_id = :b LIMIT 2)"
    ), {"b": b1, "b2": b2})
    session.execute(text("DELETE FROM household WHERE id IN (SELECT id FROM household WHERE building_id = :b2 LIMIT 1)"),
                    {"b2": b2})
    session.execute(text("UPDATE building SET grid_id = (SELECT grid_id FROM building WHERE id = :b2) WHERE id = :b"),
                    {"b": b1, "b2": b2})
    assert _drift(session) == (0, 0)
    # Buildings counted per grid (0011): a new building, and one removed with its households.
    session.execute(text(
        "INSERT INTO building (grid_id, compound_id, code, name, floors, geom) "
        "SELECT grid_id, compound_id, code || '-x', name, floors, geom FROM building WHERE id = :b"), {"b": b2})
    session.execute(text("DELETE FROM household WHERE building_id = :b"), {"b": b1})
    session.execute(text("DELETE FROM building WHERE id = :b"), {"b": b1})
    assert _drift(session) == (0, 0)


def _key_count_drift(session) -> int:
    return session.execute(text(
        "SELECT count(*) FROM (SELECT building_id, category_id, count(*) n FROM key_person_category_link "
        "GROUP BY 1, 2) t FULL JOIN building_key_count k USING (building_id, category_id) "
        "WHERE coalesce(t.n, 0) <> coalesce(k.n, 0)"
    )).scalar_one() + session.execute(text(
        "SELECT count(*) FROM key_person_category_link l JOIN key_person kp ON kp.id = l.key_person_id "
        "JOIN household h ON h.id = kp.household_id WHERE l.building_id <> h.building_id"
    )).scalar_one() + session.execute(text(
        "SELECT count(*) FROM (SELECT b.grid_id, k.category_id, sum(k.n) n FROM building_key_count k "
        "JOIN building b ON b.id = k.building_id GROUP BY 1, 2) t FULL JOIN grid_key_count g USING (grid_id, category_id) "
        "WHERE coalesce(t.n, 0) <> coalesce(g.n, 0)"
    )).scalar_one() + session.execute(text(
        "SELECT count(*) FROM building_key_count k JOIN building b ON b.id = k.building_id WHERE k.grid_id <> b.grid_id"
    )).scalar_one()


def test_key_person_counts_per_building_follow_every_change(session):
    assert _key_count_drift(session) == 0
    kp, hh_other = session.execute(text(
        "SELECT kp.id, (SELECT h2.id FROM household h2 WHERE h2.building_id <> h.building_id ORDER BY h2.id LIMIT 1) "
        "FROM key_person kp JOIN household h ON h.id = kp.household_id ORDER BY kp.id LIMIT 1"
    )).one()
    elderly = session.execute(text("SELECT id FROM key_person_category WHERE code = 'chronic'")).scalar_one()
    # a new person with two categories, inserted the way the ORM does (no building_id given)
    new_id = session.execute(text(
        "INSERT INTO key_person (household_id, name, version, geom) "
        "SELECT id, '测试', 1, geom FROM household WHERE id = :h RETURNING id"
    ), {"h": hh_other}).scalar_one()
    session.execute(text(
        "INSERT INTO key_person_category_link (key_person_id, category_id) "
        "SELECT :p, id FROM key_person_category WHERE code IN ('chronic', 'disabled')"
    ), {"p": new_id})
    assert _key_count_drift(session) == 0
    session.execute(text("UPDATE key_person SET household_id = :h WHERE id = :p"), {"h": hh_other, "p": kp})
    assert _key_count_drift(session) == 0
    session.execute(text(
        "UPDATE household SET building_id = (SELECT min(id) FROM building), room = 'T1' WHERE id = :h"), {"h": hh_other})
    assert _key_count_drift(session) == 0
    session.execute(text("DELETE FROM key_person_category_link WHERE key_person_id = :p AND category_id = :c"),
                    {"p": new_id, "c": elderly})
    session.execute(text("DELETE FROM household WHERE id = :h"), {"h": hh_other})  # cascades to persons, links
    assert _key_count_drift(session) == 0
    # a building moved to another grid carries its counts; a deleted building takes them away
    moved, other_grid = session.execute(text(
        "SELECT k.building_id, (SELECT min(id) FROM grid WHERE id <> b.grid_id) FROM building_key_count k "
        "JOIN building b ON b.id = k.building_id ORDER BY k.building_id LIMIT 1"
    )).one()
    session.execute(text("UPDATE building SET grid_id = :g WHERE id = :b"), {"g": other_grid, "b": moved})
    assert _key_count_drift(session) == 0
    session.execute(text("DELETE FROM building WHERE id = :b"), {"b": moved})
    assert _key_count_drift(session) == 0


def test_totals_and_key_counts_follow_a_truncate(session):
    """A TRUNCATE has no rows for the triggers to subtract: the sums are rebuilt from what is left."""
    assert session.execute(text("SELECT count(*) FROM grid_key_count")).scalar_one() > 0
    session.execute(text("TRUNCATE key_person CASCADE"))  # empties the category links too
    assert _key_count_drift(session) == 0
    assert session.execute(text("SELECT count(*) FROM grid_key_count")).scalar_one() == 0
    # a person again: counted from zero
    session.execute(text(
        "INSERT INTO key_person (household_id, name, version, geom) SELECT id, '测试', 1, geom FROM household "
        "ORDER BY id LIMIT 1"))
    session.execute(text("INSERT INTO key_person_category_link (key_person_id, category_id) "
                         "SELECT max(id), (SELECT min(id) FROM key_person_category) FROM key_person"))
    assert _key_count_drift(session) == 0
    assert session.execute(text("SELECT sum(n) FROM grid_key_count")).scalar_one() == 1
    session.execute(text("TRUNCATE household CASCADE"))
    assert _drift(session) == (0, 0)
    assert session.execute(text("SELECT sum(households) FROM grid")).scalar_one() == 0
    assert _key_count_drift(session) == 0
    session.execute(text("TRUNCATE building CASCADE"))
    assert _drift(session) == (0, 0)
    assert session.execute(text("SELECT sum(buildings) FROM grid")).scalar_one() == 0
