"""Every write path of tasks and reports refused to whom it is not for (issue 7): a role without the
permission, a place outside the user's area, the read-only auditor; each refusal is AccessDenied and
changes zero rows of the tables involved (tasks, items, history, reports, contacts, audit trail).
Through the services as the web pages call them (with the logged-in principal) and through the
CLI's ``--as USER``."""

from __future__ import annotations

import json
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, text

from gridmap.domain.reports import ReportInput
from gridmap.domain.tasks import Selection
from gridmap.services import reports, tasks
from gridmap.services.access import AccessDenied, make_principal

TZ = ZoneInfo("Asia/Shanghai")
DAY = date(2022, 11, 25)
AT = datetime(2022, 11, 25, 9, tzinfo=TZ)
TABLES = ("task", "task_item", "task_history", "daily_report", "contact_log", "audit_log")


def scalar(session, sql, **params):
    return session.execute(text(sql), params).scalar_one()


def snapshot(session) -> dict[str, tuple[int, str]]:
    """Rows and a digest of every row of the tables a task or report write touches."""
    out = {}
    for table in TABLES:  # names from the constant above, never input
        out[table] = session.execute(text(
            f"SELECT count(*), coalesce(md5(string_agg(x::text, '|' ORDER BY x.id)), '') FROM {table} x")).one()
    return out


@pytest.fixture
def world(session, settings, now):
    """Two communities (a, b), each with a grid; in a: an open item, one taken by its grid leader's
    staff member, one done; in b: an open item; a task over both; the week's contact rounds; a's
    report of the day filed."""
    a, b = session.execute(text(
        "SELECT g.community_id FROM grid g WHERE EXISTS (SELECT 1 FROM building x JOIN household h"
        " ON h.building_id = x.id WHERE x.grid_id = g.id) GROUP BY g.community_id ORDER BY g.community_id LIMIT 2"
    )).scalars().all()

    def grid_of(c):
        return scalar(session, "SELECT g.id FROM grid g WHERE g.community_id = :c AND EXISTS (SELECT 1 FROM building"
                               " x WHERE x.grid_id = g.id) ORDER BY g.id LIMIT 1", c=c)

    def building_of(g, n=0):
        return scalar(session, "SELECT id FROM building WHERE grid_id = :g ORDER BY id OFFSET :n LIMIT 1", g=g, n=n)

    def staff(c, role):
        return scalar(session, "SELECT id FROM staff WHERE community_id = :c AND role = :r AND active"
                               " ORDER BY id LIMIT 1", c=c, r=role)

    grid_a, grid_b = grid_of(a), grid_of(b)
    district = scalar(session, "SELECT s.district_id FROM community c JOIN subdistrict s ON s.id = c.subdistrict_id"
                               " WHERE c.id = :c", c=a)
    other_sub = session.execute(text(
        "SELECT s.id FROM subdistrict s WHERE s.id <> (SELECT subdistrict_id FROM community WHERE id = :a)"
        " AND s.id <> (SELECT subdistrict_id FROM community WHERE id = :b) ORDER BY s.id LIMIT 1"),
        {"a": a, "b": b}).scalar()

    def who(role, level, area):
        return make_principal(session, user_id=0, username=f"{role}-{level}-{area}", role=role, area_level=level,
                              area_id=area)

    people = {
        "commander": who("district_commander", "district", district),
        "auditor": who("auditor", "district", district),
        "auditor_a": who("auditor", "community", a),
        "sub_other": who("subdistrict_staff", "subdistrict", other_sub),
        "worker_a": who("community_worker", "community", a),
        "worker_b": who("community_worker", "community", b),
        "leader_a": who("grid_leader", "grid", grid_a),
        "leader_b": who("grid_leader", "grid", grid_b),
        "volunteer_a": who("volunteer", "grid", grid_a),
    }
    me_a = tasks.acting_staff(session, people["leader_a"]).id
    me_b = tasks.acting_staff(session, people["leader_b"]).id

    def one(grid, n):
        task = tasks.create_task(session, settings, type_code="disinfection",
                                 selection=Selection.buildings([building_of(grid, n)]), created_by="指挥长", now=now)
        (item,) = tasks.task_items(session, task.id, now)
        return task, item

    task_a, open_a = one(grid_a, 0)
    _t, taken_a = one(grid_a, 1)
    tasks.take_item(session, taken_a.id, me_a, now, settings)
    _t, done_a = one(grid_a, 2)
    tasks.take_item(session, done_a.id, me_a, now, settings)
    tasks.finish_item(session, done_a.id, me_a, outcome="done", now=now)
    task_b, open_b = one(grid_b, 0)
    wide = tasks.create_task(session, settings, type_code="disinfection", created_by="指挥长", now=now,
                             selection=Selection.buildings([building_of(grid_a, 3), building_of(grid_b, 1)]))
    tasks.generate_contact_rounds(session, settings, now, DAY)
    reports.file_report(session, settings, ReportInput(community_id=a, report_date=DAY, filed_by="x"), AT)
    return {
        "a": a, "b": b, "grid_a": grid_a, "grid_b": grid_b, "people": people, "me_a": me_a, "me_b": me_b,
        "worker_a_staff": staff(a, "community_worker"), "worker_b_staff": staff(b, "community_worker"),
        "task_a": tasks.get_task(session, task_a.id, now), "task_b": task_b, "wide": wide,
        "open_a": open_a.id, "taken_a": taken_a.id, "done_a": done_a.id, "open_b": open_b.id,
    }


def _create(grid_key):
    def call(s, st, now, w, p):
        tasks.create_task(s, st, type_code="door_knock", selection=Selection.grid(w[grid_key]), created_by="x",
                          now=now, principal=p)
    return call


def _rounds(s, st, now, w, p):
    tasks.generate_contact_rounds(s, st, now, date(2022, 11, 28), principal=p)


def _take(item, staff="me_a"):
    def call(s, st, now, w, p):
        tasks.take_item(s, w[item], w[staff], now, st, principal=p)
    return call


def _finish(item, staff="me_a"):
    def call(s, st, now, w, p):
        tasks.finish_item(s, w[item], w[staff], outcome="done", note="x", now=now, principal=p)
    return call


def _release(item, staff="me_a"):
    def call(s, st, now, w, p):
        tasks.release_item(s, w[item], w[staff], now, principal=p)
    return call


def _validate(staff):
    def call(s, st, now, w, p):
        tasks.validate_item(s, w["done_a"], w[staff], valid=False, note="x", now=now, settings=st, principal=p)
    return call


def _reassign(item, staff):
    def call(s, st, now, w, p):
        tasks.reassign_item(s, w[item], w[staff], actor="x", now=now, principal=p)
    return call


def _close(task):
    def call(s, st, now, w, p):
        t = w[task]
        tasks.close_task(s, t.id, base_version=t.version, actor="x", now=now, principal=p)
    return call


def _file(community, kind="normal"):
    def call(s, st, now, w, p):
        reports.file_report(s, st, ReportInput(community_id=w[community], report_date=DAY, kind=kind, filed_by="x",
                                               new_cases=1 if kind != "zero" else 0), AT, principal=p)
    return call


def _zero(community):
    def call(s, st, now, w, p):
        reports.file_zero_report(s, st, community_id=w[community], report_date=DAY, filed_by="x", now=AT, principal=p)
    return call


# (who, what): each must be refused with nothing written.
REFUSALS = {
    # giving out
    "create: volunteer": ("volunteer_a", _create("grid_a")),
    "create: grid leader": ("leader_a", _create("grid_a")),
    "create: auditor": ("auditor", _create("grid_a")),
    "create: worker, other community": ("worker_a", _create("grid_b")),
    "create: sub-district staff, other sub-district": ("sub_other", _create("grid_a")),
    "contact rounds: volunteer": ("volunteer_a", _rounds),
    "contact rounds: grid leader": ("leader_a", _rounds),
    "contact rounds: auditor": ("auditor", _rounds),
    # field work
    "take: auditor": ("auditor", _take("open_a")),
    "take: auditor of the community": ("auditor_a", _take("open_a")),
    "take: commander": ("commander", _take("open_a")),
    "take: sub-district staff": ("sub_other", _take("open_a")),
    "take: grid leader, other grid": ("leader_a", _take("open_b")),
    "take: grid leader as staff of another community": ("leader_a", _take("open_a", "worker_b_staff")),
    "take: volunteer, other grid": ("volunteer_a", _take("open_b", "me_b")),
    "finish: auditor": ("auditor", _finish("taken_a")),
    "finish: commander": ("commander", _finish("taken_a")),
    "finish: grid leader of another grid": ("leader_b", _finish("taken_a", "me_b")),
    "finish: worker of another community": ("worker_b", _finish("taken_a", "worker_b_staff")),
    "release: auditor": ("auditor", _release("taken_a")),
    "release: grid leader of another grid": ("leader_b", _release("taken_a", "me_b")),
    "validate: grid leader": ("leader_a", _validate("me_a")),
    "validate: volunteer": ("volunteer_a", _validate("me_a")),
    "validate: auditor": ("auditor", _validate("worker_a_staff")),
    "validate: commander": ("commander", _validate("worker_a_staff")),
    "validate: worker of another community": ("worker_b", _validate("worker_b_staff")),
    # managing
    "reassign: grid leader": ("leader_a", _reassign("open_a", "worker_a_staff")),
    "reassign: volunteer": ("volunteer_a", _reassign("open_a", "worker_a_staff")),
    "reassign: auditor": ("auditor", _reassign("open_a", "worker_a_staff")),
    "reassign: worker, to staff of another community": ("worker_a", _reassign("open_a", "worker_b_staff")),
    "reassign: worker, item of another community": ("worker_a", _reassign("open_b", "worker_b_staff")),
    "close: volunteer": ("volunteer_a", _close("task_a")),
    "close: grid leader": ("leader_a", _close("task_a")),
    "close: auditor": ("auditor", _close("task_a")),
    "close: worker, task of another community": ("worker_a", _close("task_b")),
    "close: worker, task reaching beyond the community": ("worker_a", _close("wide")),
    # reports
    "file: commander": ("commander", _file("a")),
    "file: auditor": ("auditor", _file("a")),
    "file: auditor of the community": ("auditor_a", _file("a")),
    "file: volunteer": ("volunteer_a", _file("a")),
    "file: sub-district staff": ("sub_other", _file("a")),
    "file: worker, other community": ("worker_a", _file("b")),
    "file: grid leader, other community": ("leader_a", _file("b")),
    "amend: worker of another community": ("worker_b", _file("a")),
    "zero: auditor": ("auditor", _zero("a")),
    "zero: volunteer": ("volunteer_a", _zero("a")),
    "zero: worker, other community": ("worker_a", _zero("b")),
    "emergency: auditor": ("auditor", _file("a", "emergency")),
    "emergency: volunteer": ("volunteer_a", _file("a", "emergency")),
    "emergency: worker, other community": ("worker_a", _file("b", "emergency")),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refused_and_nothing_written(session, settings, now, world, case):
    who, call = REFUSALS[case]
    before = snapshot(session)
    with pytest.raises(AccessDenied):
        call(session, settings, now, world, world["people"][who])
    assert snapshot(session) == before


# The same calls succeed for whom they are for: the refusals above are about who, not about the state.
ALLOWED = {
    "create: worker, own community": ("worker_a", _create("grid_a")),
    "take: grid leader, own grid": ("leader_a", _take("open_a")),
    "finish: the holder": ("leader_a", _finish("taken_a")),
    "release: the holder": ("leader_a", _release("taken_a")),
    "validate: worker of the community": ("worker_a", _validate("worker_a_staff")),
    "reassign: worker, own community": ("worker_a", _reassign("open_a", "worker_a_staff")),
    "close: worker, own task": ("worker_a", _close("task_a")),
    "close: commander, wide task": ("commander", _close("wide")),
    "amend: worker, own community": ("worker_a", _file("a")),
    "zero: grid leader, own community": ("leader_a", _zero("a")),
    "emergency: worker, own community": ("worker_a", _file("a", "emergency")),
}


@pytest.mark.parametrize("case", list(ALLOWED))
def test_allowed_counterparts_write(session, settings, now, world, case):
    who, call = ALLOWED[case]
    before = snapshot(session)
    call(session, settings, now, world, world["people"][who])
    assert snapshot(session) != before


# --- the CLI acting as a user ---------------------------------------------------------------------------
def test_cli_as_a_user_is_checked_like_the_web(settings, database_url, monkeypatch, capsys):
    from gridmap import cli

    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    engine = create_engine(database_url)
    day = "2022-11-19"
    created: list[int] = []
    try:
        with engine.connect() as conn:
            # the demo community worker's community, and a grid outside it
            own, other = conn.execute(text(
                "SELECT (SELECT c.code FROM community c WHERE c.id = u.area_id),"
                " (SELECT c.code FROM community c WHERE c.id <> u.area_id ORDER BY c.id LIMIT 1)"
                " FROM app_user u WHERE u.username = 'community'")).one()
            inside, outside = conn.execute(text(
                "SELECT (SELECT g.code FROM grid g WHERE g.community_id = u.area_id ORDER BY g.id LIMIT 1),"
                " (SELECT g.code FROM grid g WHERE g.community_id <> u.area_id ORDER BY g.id LIMIT 1)"
                " FROM app_user u WHERE u.username = 'community'")).one()
            before = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in TABLES}

        refused = [
            ["task", "create", "--as", "volunteer", "--type", "disinfection", "--grid", inside],
            ["task", "create", "--as", "auditor", "--type", "disinfection", "--grid", inside],
            ["task", "create", "--as", "community", "--type", "disinfection", "--grid", outside],
            ["task", "contact-rounds", "--as", "gridleader", "--week", "2022-11-14"],
            ["report", "file", "--as", "auditor", "--community", own, "--date", day, "--by", "x"],
            ["report", "file", "--as", "community", "--community", other, "--date", day, "--by", "x"],
            ["report", "zero", "--as", "commander", "--community", own, "--date", day, "--by", "x"],
            ["report", "file", "--as", "volunteer", "--emergency", "--community", own, "--date", day, "--by", "x"],
            ["task", "create", "--as", "nobody-such", "--type", "disinfection", "--grid", inside],
        ]
        for argv in refused:
            assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == len(refused) and all(line.startswith("error: ") for line in err)
        with engine.connect() as conn:
            assert {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in TABLES} == before

        assert cli.main(["task", "create", "--as", "community", "--type", "disinfection", "--grid", inside,
                         "--json"]) == 0
        made = json.loads(capsys.readouterr().out)
        created.append(made["id"])
        assert made["created_by"] == "社区工作者"  # the user's display name
        assert cli.main(["report", "zero", "--as", "community", "--community", own, "--date", day, "--by", "x"]) == 0
        with engine.connect() as conn:
            actors = set(conn.execute(text(
                "SELECT actor FROM audit_log WHERE table_name IN ('task', 'daily_report') AND ("
                " (table_name = 'task' AND row_id = :t) OR (table_name = 'daily_report' AND"
                " row_id IN (SELECT id FROM daily_report WHERE report_date = :d)))"),
                {"t": made["id"], "d": date.fromisoformat(day)}).scalars())
        assert actors == {"community"}
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM task WHERE id = ANY(:ids)"), {"ids": created})
            conn.execute(text("DELETE FROM daily_report WHERE report_date = :d"), {"d": date.fromisoformat(day)})
        engine.dispose()
