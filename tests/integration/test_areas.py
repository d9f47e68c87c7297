"""Controlled-area versions: every save a new version, compare, revert, lift, and conflicts that
lose nothing (two real connections, one racing the other)."""

import threading
from datetime import timedelta

import pytest
import shapely
from shapely import wkb
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.services.areas import (
    AreaConflict,
    ReasonRequired,
    compare_versions,
    create_area,
    get_version,
    lift,
    list_versions,
    revert,
    save_version,
)


def building_footprints(session, n: int):
    rows = session.execute(text("SELECT ST_AsBinary(geom) FROM building ORDER BY id LIMIT :n"), {"n": n}).scalars()
    return [wkb.loads(bytes(r)) for r in rows]


def small_area(session, n: int = 1):
    return shapely.union_all([b.buffer(0.00002) for b in building_footprints(session, n)]).convex_hull


def test_each_save_is_a_new_version_with_its_impact(session, settings, now):
    a1 = create_area(session, small_area(session, 1), "controlled", settings=settings, author="指挥长甲", now=now,
                     name="一号管控区", reason="确诊病例所在楼栋")
    a2 = save_version(session, a1.area_key, 1, small_area(session, 3), "sealed", settings=settings,
                      author="指挥长乙", now=now + timedelta(minutes=5), reason="扩大到相邻楼栋")
    versions = list_versions(session, a1.area_key)
    assert [v.version for v in versions] == [1, 2]
    assert [v.class_code for v in versions] == ["controlled", "sealed"]
    assert versions[1].author == "指挥长乙" and versions[1].reason == "扩大到相邻楼栋"
    assert a2.impact["buildings"] >= a1.impact["buildings"] >= 1
    diff = compare_versions(session, a1.area_key, 1, 2)
    assert diff["added_m2"] > 0 and diff["released_m2"] == pytest.approx(0, abs=1.0)


def test_revert_adds_a_version_equal_to_the_old_one(session, settings, now):
    a1 = create_area(session, small_area(session, 1), "controlled", settings=settings, author="甲", now=now, reason="r")
    save_version(session, a1.area_key, 1, small_area(session, 4), "sealed", settings=settings, author="乙",
                 now=now, reason="r2")
    v3 = revert(session, a1.area_key, 1, 2, settings=settings, author="丙", now=now, reason="")
    assert v3.version == 3 and v3.class_code == "controlled"
    assert shapely.geometry.shape(v3.geometry).equals(shapely.geometry.shape(a1.geometry))
    assert "1" in v3.reason


def test_lifting_needs_a_reason_and_ends_the_area(session, settings, now):
    a1 = create_area(session, small_area(session, 1), "controlled", settings=settings, author="甲", now=now, reason="r")
    with pytest.raises(Exception) as exc:
        lift(session, a1.area_key, 1, author="乙", now=now, reason=" ")
    assert getattr(exc.value, "code", None) == "reason_required"
    ended = lift(session, a1.area_key, 1, author="乙", now=now + timedelta(days=14), reason="14天无新增")
    assert ended.version == 2 and ended.ended_at is not None and ended.end_reason == "14天无新增"


def test_over_control_needs_a_written_reason(session, settings, now):
    whole = wkb.loads(bytes(session.execute(text("SELECT ST_AsBinary(geom) FROM community ORDER BY id LIMIT 1")).scalar_one()))
    with pytest.raises(ReasonRequired) as exc:
        create_area(session, whole, "sealed", settings=settings, author="甲", now=now, reason="")
    assert exc.value.impact.warnings
    saved = create_area(session, whole, "sealed", settings=settings, author="甲", now=now, reason="全域筛查期间")
    assert saved.reason == "全域筛查期间" and saved.impact["warnings"]


def test_a_stale_save_is_refused_with_the_other_change(session, settings, now):
    a1 = create_area(session, small_area(session, 1), "controlled", settings=settings, author="甲", now=now, reason="r")
    save_version(session, a1.area_key, 1, small_area(session, 2), "controlled", settings=settings, author="乙",
                 now=now, reason="r")
    with pytest.raises(AreaConflict) as exc:
        save_version(session, a1.area_key, 1, small_area(session, 5), "sealed", settings=settings, author="丙",
                     now=now, reason="r")
    assert exc.value.current["version"] == 2 and exc.value.current["author"] == "乙"
    assert "乙" in exc.value.message
    assert get_version(session, a1.area_key).author == "乙"  # nothing lost, nothing overwritten


def test_two_commanders_racing_on_real_connections(engine, settings, now):
    """Both read version 1; A's insert holds the row; B blocks, then gets the conflict when A commits."""
    setup = Session(bind=engine)
    area = small_area(setup, 1)
    a1 = create_area(setup, area, "controlled", settings=settings, author="甲", now=now, reason="r")
    setup.commit()
    key = a1.area_key
    try:
        first, second = Session(bind=engine), Session(bind=engine)
        assert get_version(first, key).version == get_version(second, key).version == 1
        save_version(first, key, 1, small_area(first, 2), "controlled", settings=settings, author="A", now=now, reason="a")
        outcome: dict = {}

        def second_save():
            try:
                # Passes the version check (A has not committed), then blocks on the unique index.
                save_version(second, key, 1, small_area(second, 3), "sealed", settings=settings, author="B",
                             now=now, reason="b")
                second.commit()
                outcome["result"] = "saved"
            except AreaConflict as exc:
                second.rollback()
                outcome["result"] = exc

        t = threading.Thread(target=second_save)
        t.start()
        t.join(timeout=1.0)
        assert t.is_alive(), "the second save should wait for the first transaction"
        first.commit()
        t.join(timeout=10)
        assert isinstance(outcome["result"], AreaConflict)
        assert outcome["result"].current["author"] == "A"
        check = Session(bind=engine)
        assert [v.author for v in list_versions(check, key)] == ["甲", "A"]
        check.close()
        first.close()
        second.close()
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM controlled_area WHERE area_key = :k"), {"k": key})
        setup.close()
