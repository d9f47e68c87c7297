"""Tasks on a real PostGIS: creation from every kind of selection (counts checked against an
independent query), proposed assignees, locks that expire (time injected), the field workflow,
history for every action, contact rounds, and two real connections racing for one item."""

import threading
from datetime import date, timedelta

import pytest
import shapely
from shapely import wkb
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.domain.errors import InvalidInput, NotFound
from gridmap.domain.tasks import (
    BadTransition,
    ItemLocked,
    NotLockHolder,
    NotValidator,
    Selection,
    TaskClosed,
    TaskConflict,
    TaskError,
)
from gridmap.services.areas import create_area, lift
from gridmap.services.tasks import (
    close_task,
    create_task,
    finish_item,
    generate_contact_rounds,
    get_item,
    list_task_types,
    list_tasks,
    overdue_items,
    reassign_item,
    release_item,
    take_item,
    task_history,
    task_items,
    task_progress,
    validate_item,
)


# --- helpers ------------------------------------------------------------------------------------
def scalar(session, sql, **params):
    return session.execute(text(sql), params).scalar_one()


def first_grid(session) -> int:
    return scalar(session, "SELECT id FROM grid ORDER BY id LIMIT 1")


def households_in_buildings(session, ids) -> int:
    return scalar(session, "SELECT count(*) FROM household WHERE building_id = ANY(:ids)", ids=list(ids))


def area_around_buildings(session, n: int):
    rows = session.execute(text("SELECT ST_AsBinary(geom) FROM building ORDER BY id LIMIT :n"), {"n": n}).scalars()
    return shapely.union_all([wkb.loads(bytes(r)).buffer(0.00002) for r in rows]).convex_hull


def buildings_inside(session, area) -> set[int]:
    """Independent of the service: the 'share of footprint inside' rule written out directly."""
    rows = session.execute(
        text("SELECT b.id FROM building b, (SELECT ST_GeomFromText(:wkt, 4326) AS g) a"
             " WHERE ST_Intersects(b.geom, a.g)"
             " AND ST_Area(ST_Intersection(b.geom, a.g)) >= 0.5 * ST_Area(b.geom)"),
        {"wkt": area.wkt},
    ).scalars()
    return set(rows)


def community_of_item(session, item_id: int) -> int:
    return scalar(session, "SELECT g.community_id FROM task_item i JOIN building b ON b.id = i.building_id"
                           " JOIN grid g ON g.id = b.grid_id WHERE i.id = :i", i=item_id)


def staff_of(session, community_id: int, role: str, n: int = 1) -> list:
    rows = session.execute(
        text("SELECT id, name FROM staff WHERE community_id = :c AND role = :r AND active ORDER BY id LIMIT :n"),
        {"c": community_id, "r": role, "n": n},
    ).all()
    assert len(rows) == n
    return rows


def one_item_task(session, settings, now, type_code="disinfection"):
    building = scalar(session, "SELECT id FROM building ORDER BY id LIMIT 1")
    task = create_task(session, settings, type_code=type_code, selection=Selection.buildings([building]),
                       created_by="指挥长", now=now)
    (item,) = task_items(session, task.id, now)
    return task, item


def history_actions(session, task_id) -> list[str]:
    return [h["action"] for h in task_history(session, task_id)]


# --- types and creation -------------------------------------------------------------------------
def test_task_types_are_seeded_as_data(session):
    types = {t.code: t for t in list_task_types(session)}
    assert set(types) == {"door_knock", "health_pack", "sealed_delivery", "contact_round", "disinfection",
                          "recovered_visit", "testing_drill"}
    assert types["door_knock"].name_zh == "敲门行动" and types["door_knock"].item_level == "household"
    assert types["disinfection"].item_level == "building"
    assert types["contact_round"].recurring["times_setting"] == "vulnerable_contacts_per_week"


def test_grid_selection_one_item_per_household_or_building(session, settings, now):
    grid = first_grid(session)
    knock = create_task(session, settings, type_code="door_knock", selection=Selection.grid(grid),
                        created_by="指挥长", now=now)
    expected_households = scalar(session, "SELECT count(*) FROM household h JOIN building b ON b.id = h.building_id"
                                          " WHERE b.grid_id = :g", g=grid)
    assert knock.items == expected_households == knock.counts["open"]
    assert knock.due_at == now + timedelta(hours=24)
    assert knock.selection["kind"] == "grid" and knock.selection["grid_id"] == grid
    assert scalar(session, "SELECT GeometryType(geom) FROM task WHERE id = :t", t=knock.id) == "MULTIPOLYGON"
    # Every item has a point on the map: the household's own location.
    assert scalar(session, "SELECT count(*) FROM task_item i JOIN household h ON h.id = i.household_id"
                           " WHERE i.task_id = :t AND ST_Equals(i.geom, h.geom)", t=knock.id) == knock.items

    disinfect = create_task(session, settings, type_code="disinfection", selection=Selection.grid(grid),
                            created_by="指挥长", now=now)
    assert disinfect.items == scalar(session, "SELECT count(*) FROM building WHERE grid_id = :g", g=grid)
    # A building item's point lies on the building.
    assert scalar(session, "SELECT bool_and(ST_Intersects(i.geom, b.geom)) FROM task_item i"
                           " JOIN building b ON b.id = i.building_id WHERE i.task_id = :t", t=disinfect.id)


def test_drawn_area_selects_buildings_by_share_inside(session, settings, now):
    area = area_around_buildings(session, 4)
    inside = buildings_inside(session, area)
    assert inside
    task = create_task(session, settings, type_code="testing_drill", selection=Selection.drawn_area(area),
                       created_by="指挥长", now=now)
    assert {i.building_id for i in task_items(session, task.id, now)} == inside
    knock = create_task(session, settings, type_code="door_knock", selection=Selection.drawn_area(area),
                        created_by="指挥长", now=now)
    assert knock.items == households_in_buildings(session, inside)
    stored = wkb.loads(bytes(scalar(session, "SELECT ST_AsBinary(geom) FROM task WHERE id = :t", t=knock.id)))
    assert stored.equals(shapely.MultiPolygon([area]))


def test_controlled_area_uses_its_latest_version(session, settings, now):
    area = area_around_buildings(session, 3)
    saved = create_area(session, area, "sealed", settings=settings, author="指挥长", now=now, reason="确诊楼栋")
    task = create_task(session, settings, type_code="sealed_delivery",
                       selection=Selection.controlled_area(saved.area_key), created_by="指挥长", now=now)
    assert task.selection == {"kind": "controlled_area", "area_key": saved.area_key, "version": 1}
    assert task.items == households_in_buildings(session, buildings_inside(session, area))
    lift(session, saved.area_key, 1, author="指挥长", now=now, reason="解封")
    with pytest.raises(TaskError) as exc:
        create_task(session, settings, type_code="sealed_delivery",
                    selection=Selection.controlled_area(saved.area_key), created_by="指挥长", now=now)
    assert exc.value.code == "area_ended"


def test_building_list_and_unknown_ids_write_nothing(session, settings, now):
    ids = list(session.execute(text("SELECT id FROM building ORDER BY id DESC LIMIT 3")).scalars())
    task = create_task(session, settings, type_code="health_pack", selection=Selection.buildings(ids),
                       created_by="指挥长", now=now)
    assert task.items == households_in_buildings(session, ids)
    before = scalar(session, "SELECT count(*) FROM task")
    with pytest.raises(NotFound) as exc:
        create_task(session, settings, type_code="health_pack", selection=Selection.buildings([ids[0], 999999]),
                    created_by="指挥长", now=now)
    assert "999999" in exc.value.message
    with pytest.raises(NotFound) as exc:
        create_task(session, settings, type_code="no_such_type", selection=Selection.buildings(ids),
                    created_by="指挥长", now=now)
    assert exc.value.code == "unknown_task_type"
    with pytest.raises(InvalidInput) as exc:
        create_task(session, settings, type_code="health_pack", selection=Selection.buildings(ids),
                    created_by="指挥长", now=now, due_at=now - timedelta(hours=1))
    assert exc.value.code == "due_in_past"
    assert scalar(session, "SELECT count(*) FROM task") == before


def test_too_many_items_is_refused(session, settings, now):
    small = settings.model_copy(update={"task_max_items": 5})
    with pytest.raises(InvalidInput) as exc:
        create_task(session, small, type_code="door_knock", selection=Selection.grid(first_grid(session)),
                    created_by="指挥长", now=now)
    assert exc.value.code == "too_many_items"


def test_key_persons_one_item_per_household(session, settings, now):
    shared = scalar(session, "SELECT household_id FROM key_person GROUP BY household_id HAVING count(*) > 1"
                             " ORDER BY household_id LIMIT 1")
    pair = list(session.execute(text("SELECT id FROM key_person WHERE household_id = :h ORDER BY id LIMIT 2"),
                                {"h": shared}).scalars())
    alone = scalar(session, "SELECT min(id) FROM key_person WHERE household_id IN"
                            " (SELECT household_id FROM key_person GROUP BY 1 HAVING count(*) = 1)")
    task = create_task(session, settings, type_code="recovered_visit",
                       selection=Selection.key_persons([*pair, alone]), created_by="指挥长", now=now)
    items = task_items(session, task.id, now)
    alone_household = scalar(session, "SELECT household_id FROM key_person WHERE id = :k", k=alone)
    assert {i.household_id for i in items} == {shared, alone_household} and len(items) == 2
    by_household = {i.household_id: i for i in items}
    assert by_household[alone_household].key_person_id == alone
    assert by_household[shared].key_person_id is None  # two people: the item is about the household


def test_assignees_follow_the_patch_then_the_nearest(session, settings, now):
    grid = first_grid(session)
    knock = create_task(session, settings, type_code="door_knock", selection=Selection.grid(grid),
                        created_by="指挥长", now=now)
    # Independent check: a household with an active linked volunteer goes to (the first of) them.
    wrong = scalar(session, """
        SELECT count(*) FROM task_item i
        JOIN LATERAL (SELECT min(s.id) AS v FROM staff_assignment sa JOIN staff s ON s.id = sa.staff_id
                      WHERE sa.household_id = i.household_id AND s.role = 'volunteer' AND s.active) v ON true
        WHERE i.task_id = :t AND v.v IS NOT NULL AND (i.assigned_staff_id <> v.v OR i.assignment_source <> 'volunteer')
        """, t=knock.id)
    assert wrong == 0
    sources = {i.assignment_source for i in task_items(session, knock.id, now)}
    assert sources <= {"volunteer", "building_leader"} and "volunteer" in sources

    # Without patch holders, the nearest active staff member of the community (on geography).
    session.execute(text("UPDATE staff SET active = false WHERE role IN ('building_leader', 'grid_leader')"))
    building = scalar(session, "SELECT id FROM building WHERE grid_id = :g ORDER BY id LIMIT 1", g=grid)
    task = create_task(session, settings, type_code="disinfection", selection=Selection.buildings([building]),
                       created_by="指挥长", now=now)
    (item,) = task_items(session, task.id, now)
    nearest = scalar(session, """
        SELECT s.id FROM staff s, building b JOIN grid g ON g.id = b.grid_id
        WHERE b.id = :b AND s.community_id = g.community_id AND s.active AND s.geom IS NOT NULL
        ORDER BY ST_Distance(s.geom::geography, ST_PointOnSurface(b.geom)::geography), s.id LIMIT 1
        """, b=building)
    assert (item.assigned_staff_id, item.assignment_source) == (nearest, "nearest")


# --- field work ---------------------------------------------------------------------------------
def test_lock_refuses_a_second_taker_until_it_runs_out(session, settings, now):
    task, item = one_item_task(session, settings, now)
    a, b = staff_of(session, item.community_id, "volunteer", 2)
    taken = take_item(session, item.id, a.id, now, settings)
    assert taken.state == "locked" and taken.locked_by == a.id
    assert taken.locked_until == now + timedelta(minutes=settings.task_lock_minutes)

    just_before = now + timedelta(minutes=settings.task_lock_minutes) - timedelta(seconds=1)
    with pytest.raises(ItemLocked) as exc:
        take_item(session, item.id, b.id, just_before, settings)
    assert exc.value.code == "item_locked"
    assert exc.value.holder_id == a.id and exc.value.holder_name == a.name
    assert exc.value.locked_until == taken.locked_until
    assert a.name in exc.value.message and "19:00" in exc.value.message  # local time of the lock's end

    expired = now + timedelta(minutes=settings.task_lock_minutes)
    assert task_progress(session, task.id, expired)["open"] == 1  # a run-out lock shows as open
    assert task_progress(session, task.id)["locked"] == 1
    again = take_item(session, item.id, b.id, expired, settings)
    assert again.locked_by == b.id
    locks = [h for h in task_history(session, task.id) if h["action"] == "locked"]
    assert locks[-1]["details"]["expired_lock_of"] == a.id
    # The first holder lost it: only the new holder can finish.
    with pytest.raises(NotLockHolder):
        finish_item(session, item.id, a.id, outcome="done", now=expired)


def test_field_workflow_and_history_for_every_action(session, settings, now):
    task, item = one_item_task(session, settings, now)
    community = community_of_item(session, item.id)
    (vol,) = staff_of(session, community, "volunteer")
    (worker,) = staff_of(session, community, "community_worker")
    (leader,) = staff_of(session, community, "grid_leader")

    with pytest.raises(BadTransition):
        finish_item(session, item.id, vol.id, outcome="done", now=now)  # not taken yet
    take_item(session, item.id, vol.id, now, settings)
    release_item(session, item.id, vol.id, now + timedelta(minutes=1))
    take_item(session, item.id, vol.id, now + timedelta(minutes=2), settings)
    with pytest.raises(InvalidInput) as exc:
        finish_item(session, item.id, vol.id, outcome="failed", note="", now=now)
    assert exc.value.code == "note_required"
    failed = finish_item(session, item.id, vol.id, outcome="failed", note="无人在家", now=now + timedelta(minutes=30))
    assert failed.state == "failed" and failed.note == "无人在家" and failed.locked_by is None

    with pytest.raises(NotValidator):
        validate_item(session, item.id, leader.id, valid=True, now=now, settings=settings)
    other_community = scalar(session, "SELECT id FROM staff WHERE role = 'community_worker' AND community_id <> :c"
                                      " ORDER BY id LIMIT 1", c=community)
    with pytest.raises(NotValidator):
        validate_item(session, item.id, other_community, valid=True, now=now, settings=settings)
    sent_back = validate_item(session, item.id, worker.id, valid=False, note="请晚上再去", now=now + timedelta(hours=1),
                              settings=settings)
    assert sent_back.state == "invalidated"
    take_item(session, item.id, vol.id, now + timedelta(hours=8), settings)
    finish_item(session, item.id, vol.id, outcome="done", now=now + timedelta(hours=9))
    final = validate_item(session, item.id, worker.id, valid=True, now=now + timedelta(hours=10), settings=settings)
    assert final.state == "validated"
    with pytest.raises(BadTransition):
        take_item(session, item.id, vol.id, now + timedelta(hours=11), settings)

    assert history_actions(session, task.id) == [
        "created", "locked", "released", "locked", "failed", "invalidated", "locked", "done", "validated",
    ]
    assert scalar(session, "SELECT count(*) FROM task_history WHERE task_id = :t AND actor_staff_id IS NOT NULL",
                  t=task.id) == 8
    counts = task_progress(session, task.id)
    assert counts["validated"] == 1 and sum(counts.values()) == 1


def test_reassign_is_optimistic_and_kept_in_history(session, settings, now):
    task, item = one_item_task(session, settings, now)
    a, b = staff_of(session, item.community_id, "volunteer", 2)
    moved = reassign_item(session, item.id, a.id, actor="社区书记", now=now, base_version=item.version)
    assert moved.assigned_staff_id == a.id and moved.assignment_source == "manual"
    with pytest.raises(TaskConflict) as exc:
        reassign_item(session, item.id, b.id, actor="另一人", now=now, base_version=item.version)
    assert exc.value.current["assigned_staff_id"] == a.id
    assert get_item(session, item.id, now).assigned_staff_id == a.id
    (entry,) = [h for h in task_history(session, task.id) if h["action"] == "reassigned"]
    assert entry["actor"] == "社区书记" and entry["details"]["to"] == a.id


def test_progress_overdue_and_closing(session, settings, now):
    grid = first_grid(session)
    task = create_task(session, settings, type_code="disinfection", selection=Selection.grid(grid),
                       created_by="指挥长", now=now, due_at=now + timedelta(hours=4))
    items = task_items(session, task.id, now)
    (vol,) = staff_of(session, items[0].community_id, "volunteer")
    take_item(session, items[0].id, vol.id, now, settings)
    finish_item(session, items[0].id, vol.id, outcome="done", now=now + timedelta(hours=1))
    later = now + timedelta(hours=5)
    late = [i for i in overdue_items(session, later) if i.task_id == task.id]
    assert len(late) == len(items) - 1 and all(i.overdue for i in late)
    assert not [i for i in overdue_items(session, now + timedelta(hours=3)) if i.task_id == task.id]
    listed = {t.id: t for t in list_tasks(session, later)}
    assert listed[task.id].counts["done"] == 1 and listed[task.id].overdue == len(items) - 1

    with pytest.raises(TaskConflict):
        close_task(session, task.id, base_version=task.version + 1, actor="指挥长", now=later)
    closed = close_task(session, task.id, base_version=task.version, actor="指挥长", now=later)
    assert closed.status == "closed" and closed.version == task.version + 1
    with pytest.raises(TaskClosed):
        take_item(session, items[1].id, vol.id, later, settings)
    assert task.id not in {t.id for t in list_tasks(session, later)}
    assert not [i for i in overdue_items(session, later) if i.task_id == task.id]
    assert history_actions(session, task.id)[-1] == "closed"


# --- recurring contact rounds -------------------------------------------------------------------
def test_contact_rounds_twice_a_week_per_vulnerable_person_idempotent(session, settings, now):
    vulnerable = scalar(session, "SELECT count(DISTINCT kp.id) FROM key_person kp"
                                 " JOIN key_person_category_link l ON l.key_person_id = kp.id"
                                 " JOIN key_person_category c ON c.id = l.category_id WHERE c.vulnerable")
    assert vulnerable > 0
    result = generate_contact_rounds(session, settings, now, date(2022, 11, 25))
    assert result.week_start == date(2022, 11, 21)
    assert result.due_days == [date(2022, 11, 23), date(2022, 11, 27)]  # Wednesday and Sunday
    assert result.persons == vulnerable
    assert result.items_created == vulnerable * settings.vulnerable_contacts_per_week
    assert result.tasks_created == scalar(session, "SELECT count(*) FROM community")
    per_person = session.execute(text(
        "SELECT key_person_id, count(*), array_agg(DISTINCT (due_at AT TIME ZONE 'Asia/Shanghai')::date"
        " ORDER BY (due_at AT TIME ZONE 'Asia/Shanghai')::date)"
        " FROM task_item WHERE task_id = ANY(:t) GROUP BY 1"), {"t": result.task_ids}).all()
    assert len(per_person) == vulnerable
    assert all(n == 2 and days == [date(2022, 11, 23), date(2022, 11, 27)] for _, n, days in per_person)
    sources = set(session.execute(text("SELECT DISTINCT assignment_source FROM task_item WHERE task_id = ANY(:t)"),
                                  {"t": result.task_ids}).scalars())
    assert sources <= {"volunteer", "grid_leader", "nearest"} and "volunteer" in sources

    again = generate_contact_rounds(session, settings, now + timedelta(days=1), date(2022, 11, 21))
    assert (again.tasks_created, again.items_created) == (0, 0)
    assert sorted(again.task_ids) == sorted(result.task_ids)

    # A person who became vulnerable since gets their items on the next run, and only they do.
    newcomer = scalar(session, "SELECT kp.id FROM key_person kp WHERE NOT EXISTS (SELECT 1 FROM"
                               " key_person_category_link l JOIN key_person_category c ON c.id = l.category_id"
                               " WHERE l.key_person_id = kp.id AND c.vulnerable) ORDER BY kp.id LIMIT 1")
    session.execute(text("INSERT INTO key_person_category_link (key_person_id, category_id)"
                         " SELECT :k, id FROM key_person_category WHERE code = 'elderly_alone'"), {"k": newcomer})
    third = generate_contact_rounds(session, settings, now + timedelta(days=1), date(2022, 11, 21))
    assert third.items_created == 2
    assert "items_added" in {h["action"] for t in third.task_ids for h in task_history(session, t)}


# --- two real connections -----------------------------------------------------------------------
@pytest.fixture
def committed_item(engine, settings, now):
    """A one-item task committed for real (the racing sessions must see it), removed afterwards."""
    setup = Session(bind=engine)
    task, item = one_item_task(setup, settings, now)
    a, b = staff_of(setup, item.community_id, "volunteer", 2)
    setup.commit()
    try:
        yield item, a, b
    finally:
        setup.rollback()
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM task WHERE id = :t"), {"t": task.id})
        setup.close()


def test_second_taker_waits_then_is_refused(engine, settings, now, committed_item):
    item, a, b = committed_item
    first, second = Session(bind=engine), Session(bind=engine)
    outcome: dict = {}
    try:
        take_item(first, item.id, a.id, now, settings)  # holds the row until commit

        def second_take():
            try:
                take_item(second, item.id, b.id, now, settings)
                second.commit()
                outcome["result"] = "taken"
            except ItemLocked as exc:
                second.rollback()
                outcome["result"] = exc

        t = threading.Thread(target=second_take)
        t.start()
        t.join(timeout=0.5)
        assert t.is_alive(), "the second taker should wait for the first transaction"
        first.commit()
        t.join(timeout=10)
        assert isinstance(outcome["result"], ItemLocked)
        assert outcome["result"].holder_id == a.id and a.name in outcome["result"].message
    finally:
        first.close()
        second.close()
    check = Session(bind=engine)
    assert get_item(check, item.id, now).locked_by == a.id
    assert [h["action"] for h in task_history(check, item.task_id)] == ["created", "locked"]
    check.close()


def test_simultaneous_takers_exactly_one_wins(engine, settings, now, committed_item):
    item, a, b = committed_item
    barrier = threading.Barrier(2)
    results: dict[int, object] = {}

    def take(staff_id: int):
        s = Session(bind=engine)
        try:
            barrier.wait(timeout=5)
            take_item(s, item.id, staff_id, now, settings)
            s.commit()
            results[staff_id] = "won"
        except ItemLocked as exc:
            s.rollback()
            results[staff_id] = exc
        finally:
            s.close()

    threads = [threading.Thread(target=take, args=(sid,)) for sid in (a.id, b.id)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    winners = [sid for sid, r in results.items() if r == "won"]
    losers = [r for r in results.values() if isinstance(r, ItemLocked)]
    assert len(winners) == 1 and len(losers) == 1
    assert losers[0].holder_id == winners[0]
    check = Session(bind=engine)
    assert get_item(check, item.id, now).locked_by == winners[0]
    assert scalar(check, "SELECT count(*) FROM task_history WHERE task_item_id = :i AND action = 'locked'",
                  i=item.id) == 1
    check.close()


# --- the CLI --------------------------------------------------------------------------------------
def test_cli_create_and_list(settings, database_url, monkeypatch, capsys, tmp_path):
    """``gridmap task create`` from a grid code and from an area file, then ``task list --json``."""
    import json

    import geopandas
    from sqlalchemy import create_engine

    from gridmap import cli

    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    engine = create_engine(database_url)
    created: list[int] = []
    try:
        with Session(bind=engine) as s:
            grid_code, grid_buildings = s.execute(text(
                "SELECT g.code, count(b.id) FROM grid g JOIN building b ON b.grid_id = g.id"
                " GROUP BY g.id ORDER BY g.id LIMIT 1")).one()
            area = area_around_buildings(s, 3)
            inside = buildings_inside(s, area)
        assert cli.main(["task", "create", "--type", "disinfection", "--grid", grid_code, "--json"]) == 0
        task = json.loads(capsys.readouterr().out)
        created.append(task["id"])
        assert task["items"] == grid_buildings and task["selection"]["grid_code"] == grid_code

        path = tmp_path / "area.geojson"
        geopandas.GeoDataFrame({"name": ["drawn"]}, geometry=[area], crs="EPSG:4326").to_file(path, driver="GeoJSON")
        assert cli.main(["task", "create", "--type", "testing_drill", "--area", str(path), "--json"]) == 0
        drawn = json.loads(capsys.readouterr().out)
        created.append(drawn["id"])
        assert drawn["items"] == len(inside)

        assert cli.main(["task", "list", "--json"]) == 0
        listed = {t["id"]: t for t in json.loads(capsys.readouterr().out)}
        assert listed[task["id"]]["counts"]["open"] == grid_buildings
        assert listed[drawn["id"]]["type_code"] == "testing_drill"

        assert cli.main(["task", "create", "--type", "disinfection", "--grid", "NO-SUCH-GRID"]) == 2
        assert cli.main(["task", "create", "--type", "nope", "--grid", grid_code]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 2 and all(line.startswith("error: ") for line in err)
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM task WHERE id = ANY(:ids)"), {"ids": created})
        engine.dispose()
