"""A tiny city (two chunks, two districts) loaded like the real one: nesting, unique ids across
chunks, trigger totals, and the same database whether the chunks come from workers or not."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from gridmap.domain.city import CHUNK_TABLES, CitySpec
from gridmap.services.city import load_city
from gridmap.services.demo import load_demo
from gridmap.services.stats import compute_stats
from tests.integration.kept_checks import KEPT_TABLES, assert_kept_per_grid_figures_are_live

# Tables whose content must not depend on how the chunks were generated.
COMPARED = ("district", *(t for t in CHUNK_TABLES if t != "key_person_category_link"), "contact_log", "duty_shift")


def _load(session, settings, now, workers: int) -> dict[str, int]:
    return load_city(session, settings=settings, now=now, seed=5, spec=CitySpec.tiny(), replace=True, workers=workers)


def _digest(session) -> dict[str, str]:
    out = {}
    for table in COMPARED:
        out[table] = session.execute(
            text(f'SELECT md5(coalesce(string_agg(t::text, \'|\' ORDER BY t.id), \'\')) FROM "{table}" t')
        ).scalar_one()
    out["key_person_category_link"] = session.execute(text(
        "SELECT md5(string_agg(t::text, '|' ORDER BY key_person_id, category_id)) FROM key_person_category_link t"
    )).scalar_one()
    return out


def test_tiny_city_loads_nested_with_unique_ids_and_totals(session, settings, now):
    written = _load(session, settings, now, workers=0)
    c = compute_stats(session, settings)
    assert c.nesting_violations == 0, c.violations
    counts = c.counts
    assert counts["district"] == 2 and counts["subdistrict"] == 2 and counts["grid"] == 8
    assert written["household"] == counts["household"]
    assert 8 * settings.households_per_grid_min <= counts["household"] <= 8 * settings.households_per_grid_max
    assert counts["key_person"] > 0 and counts["checkpoint"] > 0 and written["contact_log"] > 0

    # ids run 1..n across both chunks, the second chunk after the first
    for table in ("subdistrict", "community", "grid", "building", "household", "key_person", "staff"):
        n, lo, hi = session.execute(text(f'SELECT count(*), min(id), max(id) FROM "{table}"')).one()
        assert (lo, hi) == (1, n), table
    split = session.execute(text(
        "SELECT s.district_id, min(g.id), max(g.id) FROM grid g JOIN community c ON c.id = g.community_id "
        "JOIN subdistrict s ON s.id = c.subdistrict_id GROUP BY 1 ORDER BY 1"
    )).all()
    assert [tuple(r) for r in split] == [(1, 1, 4), (2, 5, 8)]
    # every row of a chunk points into its own chunk: a household's grid is in its building's district
    crossed = session.execute(text(
        "SELECT count(*) FROM household h JOIN building b ON b.id = h.building_id JOIN grid g ON g.id = b.grid_id "
        "JOIN community c ON c.id = g.community_id JOIN subdistrict s ON s.id = c.subdistrict_id "
        "JOIN compound cp ON cp.id = b.compound_id WHERE cp.community_id <> c.id"
    )).scalar_one()
    assert crossed == 0
    codes = session.execute(text("SELECT count(DISTINCT code) = count(*) FROM building")).scalar_one()
    assert codes
    assert session.execute(text("SELECT count(*) FROM grid WHERE code NOT LIKE 'G' || "
                                "(SELECT code FROM district WHERE id = 1) || '%' "
                                "AND code NOT LIKE 'G' || (SELECT code FROM district WHERE id = 2) || '%'")
                           ).scalar_one() == 0

    # totals kept by the triggers during COPY
    drift = session.execute(text(
        "SELECT count(*) FROM grid g JOIN (SELECT b.grid_id, count(*) n, sum(h.residents) r FROM household h "
        "JOIN building b ON b.id = h.building_id GROUP BY 1) t ON t.grid_id = g.id "
        "WHERE g.households <> t.n OR g.residents <> t.r"
    )).scalar_one()
    assert drift == 0
    per_grid = session.execute(text("SELECT min(households), max(households) FROM grid")).one()
    assert settings.households_per_grid_min <= per_grid[0] and per_grid[1] <= settings.households_per_grid_max
    key_drift = session.execute(text(
        "SELECT count(*) FROM (SELECT building_id, category_id, count(*) n FROM key_person_category_link "
        "GROUP BY 1, 2) t FULL JOIN building_key_count k USING (building_id, category_id) "
        "WHERE coalesce(t.n, 0) <> coalesce(k.n, 0)"
    )).scalar_one()
    assert key_drift == 0
    grid_drift = session.execute(text(
        "SELECT count(*) FROM (SELECT grid_id, category_id, sum(n) n FROM building_key_count GROUP BY 1, 2) t "
        "FULL JOIN grid_key_count k USING (grid_id, category_id) WHERE coalesce(t.n, 0) <> coalesce(k.n, 0)"
    )).scalar_one()
    assert grid_drift == 0

    # the demo users are bound to the city, and the next insert gets a fresh id
    assert session.execute(text("SELECT count(*) FROM app_user WHERE area_id IS NOT NULL")).scalar_one() > 0
    new_id = session.execute(text(
        "INSERT INTO district (code, name, geom) SELECT 'X1', 'x', geom FROM district WHERE id = 1 RETURNING id"
    )).scalar_one()
    assert new_id == 3


def test_worker_processes_give_the_same_city(session, settings, now):
    _load(session, settings, now, workers=0)
    inline = _digest(session)
    _load(session, settings, now, workers=2)
    assert _digest(session) == inline


def test_load_demo_dispatches_the_city_scale(session, settings, now, monkeypatch):
    import gridmap.services.city as city

    monkeypatch.setattr(city, "CitySpec", lambda **_kw: CitySpec.tiny())
    monkeypatch.setattr(city, "default_workers", lambda: 0)  # the worker path has its own test
    written = load_demo(session, settings=settings, now=now, scale="city", seed=5, replace=True)
    assert written["grid"] == 8 and written["district"] == 2


@pytest.mark.parametrize("scale", ["city", "small"])
def test_a_load_leaves_the_kept_per_grid_figures_computed(session, settings, now, monkeypatch, scale):
    """The loaders compute the kept figures (0012-0015) in their transaction: the first metrics
    read after a load repairs nothing, and finds what the live computations find."""
    import gridmap.services.city as city
    from gridmap.services import coverage

    monkeypatch.setattr(city, "CitySpec", lambda **_kw: CitySpec.tiny())
    monkeypatch.setattr(city, "default_workers", lambda: 0)
    load_demo(session, settings=settings, now=now, scale=scale, seed=5, replace=True)
    for state, dirty in KEPT_TABLES:
        assert session.execute(text(f"SELECT computed_at IS NOT NULL FROM {state}")).scalar_one(), state
        assert session.execute(text(f"SELECT count(*) FROM {dirty}")).scalar_one() == 0, dirty
    refreshed = coverage.refresh_kept_figures(session, settings)
    assert {k: r.mode for k, r in refreshed.items()} == dict.fromkeys(
        ("key_person_counts", "staff_counts", "service_coverage", "community_summary"), "fresh")
    assert_kept_per_grid_figures_are_live(session, settings)


def test_a_committed_load_is_vacuumed_and_a_rolled_back_one_is_not(engine):
    from sqlalchemy.orm import Session

    from gridmap.services.demo import vacuum_after_commit

    said: list[str] = []
    with Session(engine) as s:
        vacuum_after_commit(s, said.append)
        s.execute(text("SELECT 1"))
        s.rollback()
    assert said == []
    with Session(engine) as s:
        vacuum_after_commit(s, said.append)
        s.execute(text("SELECT 1"))
        s.commit()
        s.execute(text("SELECT 1"))
        s.commit()  # once, not at every commit
    assert len(said) == 1 and said[0].startswith("VACUUM (ANALYZE) in")
