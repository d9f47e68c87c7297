"""Access to tasking and reporting through the services (issue 6): who may give out, close, reassign,
take, finish and validate task items, file reports and export the sheet, and over which area;
refusals write nothing. ``principal=None`` (the shell) stays unchecked. Also the field screen's
helpers: whom a logged-in user works as, and which items they see."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from sqlalchemy import text

from gridmap.domain.reports import ReportInput
from gridmap.domain.tasks import Selection
from gridmap.services import reports, tasks
from gridmap.services.access import AccessDenied, Principal, make_principal

TZ = ZoneInfo("Asia/Shanghai")
DAY = date(2022, 11, 25)


# --- helpers ------------------------------------------------------------------------------------
def scalar(session, sql, **params):
    return session.execute(text(sql), params).scalar_one()


def principal(session, role: str, level: str, area_id: int, name: str = "") -> Principal:
    return make_principal(session, user_id=0, username=f"{role}-{area_id}", role=role, area_level=level,
                          area_id=area_id, display_name=name)


def two_communities(session) -> tuple[int, int]:
    """Two communities, each with a grid that has buildings with households."""
    rows = session.execute(text(
        "SELECT g.community_id FROM grid g WHERE EXISTS (SELECT 1 FROM building b JOIN household h"
        " ON h.building_id = b.id WHERE b.grid_id = g.id) GROUP BY g.community_id ORDER BY g.community_id LIMIT 2"
    )).scalars().all()
    assert len(rows) == 2
    return rows[0], rows[1]


def grid_of(session, community_id: int) -> int:
    return scalar(session, "SELECT g.id FROM grid g WHERE g.community_id = :c AND EXISTS (SELECT 1 FROM building b"
                           " WHERE b.grid_id = g.id) ORDER BY g.id LIMIT 1", c=community_id)


def building_of(session, grid_id: int) -> int:
    return scalar(session, "SELECT id FROM building WHERE grid_id = :g ORDER BY id LIMIT 1", g=grid_id)


def staff_of(session, community_id: int, role: str) -> int:
    return scalar(session, "SELECT id FROM staff WHERE community_id = :c AND role = :r AND active ORDER BY id LIMIT 1",
                  c=community_id, r=role)


def task_rows(session) -> int:
    return scalar(session, "SELECT count(*) FROM task")


def one_building_task(session, settings, now, grid_id: int):
    task = tasks.create_task(session, settings, type_code="disinfection",
                             selection=Selection.buildings([building_of(session, grid_id)]), created_by="指挥长", now=now)
    (item,) = tasks.task_items(session, task.id, now)
    return task, item


@pytest.fixture
def places(session):
    a, b = two_communities(session)
    return {"a": a, "b": b, "grid_a": grid_of(session, a), "grid_b": grid_of(session, b),
            "district": scalar(session, "SELECT s.district_id FROM community c JOIN subdistrict s"
                                        " ON s.id = c.subdistrict_id WHERE c.id = :c", c=a)}


# --- giving out ------------------------------------------------------------------------------------
@pytest.mark.parametrize("role, level", [("volunteer", "grid"), ("grid_leader", "grid"), ("auditor", "district")])
def test_roles_without_manage_tasks_cannot_give_out(session, settings, now, places, role, level):
    area = places["district"] if level == "district" else places["grid_a"]
    who = principal(session, role, level, area)
    before = task_rows(session)
    for call in (tasks.create_task, tasks.preview_task):
        kwargs = {"created_by": "x", "now": now} if call is tasks.create_task else {}
        with pytest.raises(AccessDenied):
            call(session, settings, type_code="door_knock", selection=Selection.grid(places["grid_a"]),
                 principal=who, **kwargs)
    with pytest.raises(AccessDenied):
        tasks.generate_contact_rounds(session, settings, now, DAY, principal=who)
    assert task_rows(session) == before


def test_a_community_worker_gives_out_only_inside_the_community(session, settings, now, places):
    worker = principal(session, "community_worker", "community", places["a"])
    before = task_rows(session)
    outside = Selection.grid(places["grid_b"])
    with pytest.raises(AccessDenied, match="超出你负责的区域"):
        tasks.preview_task(session, settings, type_code="door_knock", selection=outside, principal=worker)
    with pytest.raises(AccessDenied):
        tasks.create_task(session, settings, type_code="door_knock", selection=outside, created_by="x", now=now,
                          principal=worker)
    # a selection straddling both communities is refused as a whole
    both = Selection.buildings([building_of(session, places["grid_a"]), building_of(session, places["grid_b"])])
    with pytest.raises(AccessDenied):
        tasks.create_task(session, settings, type_code="disinfection", selection=both, created_by="x", now=now,
                          principal=worker)
    assert task_rows(session) == before
    inside = Selection.grid(places["grid_a"])
    preview = tasks.preview_task(session, settings, type_code="door_knock", selection=inside, principal=worker)
    made = tasks.create_task(session, settings, type_code="door_knock", selection=inside, created_by="x", now=now,
                             principal=worker)
    assert made.items == preview.items > 0
    assert sum(a.items for a in preview.assignees) + preview.unassigned == preview.items


def test_contact_rounds_of_a_community_worker_cover_only_their_community(session, settings, now, places):
    worker = principal(session, "community_worker", "community", places["a"])
    rounds = tasks.generate_contact_rounds(session, settings, now, DAY, principal=worker)
    communities = {scalar(session, "SELECT (selection->>'community_id')::int FROM task WHERE id = :t", t=t)
                   for t in rounds.task_ids}
    assert communities <= {places["a"]}


# --- field work --------------------------------------------------------------------------------------
def test_field_actions_only_inside_the_area_as_its_staff(session, settings, now, places):
    _task_a, item_a = one_building_task(session, settings, now, places["grid_a"])
    _task_b, item_b = one_building_task(session, settings, now, places["grid_b"])
    leader_a = principal(session, "grid_leader", "grid", places["grid_a"])
    staff_a = tasks.acting_staff(session, leader_a)
    assert staff_a is not None and staff_a.role == "grid_leader"
    staff_b = staff_of(session, places["b"], "community_worker")

    with pytest.raises(AccessDenied):  # an item of another grid
        tasks.take_item(session, item_b.id, staff_a.id, now, settings, principal=leader_a)
    with pytest.raises(AccessDenied):  # acting as somebody of another community
        tasks.take_item(session, item_a.id, staff_b, now, settings, principal=leader_a)
    commander = principal(session, "district_commander", "district", places["district"])
    with pytest.raises(AccessDenied):  # a commander gives out, the field takes
        tasks.take_item(session, item_a.id, staff_a.id, now, settings, principal=commander)
    auditor = principal(session, "auditor", "district", places["district"])
    with pytest.raises(AccessDenied):
        tasks.take_item(session, item_a.id, staff_a.id, now, settings, principal=auditor)
    assert tasks.get_item(session, item_a.id, now).state == "open"

    taken = tasks.take_item(session, item_a.id, staff_a.id, now, settings, principal=leader_a)
    assert taken.state == "locked" and taken.locked_by == staff_a.id
    with pytest.raises(AccessDenied):
        tasks.finish_item(session, item_b.id, staff_a.id, outcome="done", now=now, principal=leader_a)
    done = tasks.finish_item(session, item_a.id, staff_a.id, outcome="done", now=now, principal=leader_a)
    assert done.state == "done"

    # Validation: a community worker of the item's community, not the grid leader.
    with pytest.raises(AccessDenied, match="社区工作者"):
        tasks.validate_item(session, item_a.id, staff_a.id, valid=True, now=now, settings=settings,
                            principal=leader_a)
    worker_b = principal(session, "community_worker", "community", places["b"])
    with pytest.raises(AccessDenied):
        tasks.validate_item(session, item_a.id, staff_b, valid=True, now=now, settings=settings, principal=worker_b)
    worker_a = principal(session, "community_worker", "community", places["a"])
    me = tasks.acting_staff(session, worker_a)
    assert me is not None and me.role == "community_worker" and me.community_id == places["a"]
    checked = tasks.validate_item(session, item_a.id, me.id, valid=True, now=now, settings=settings,
                                  principal=worker_a)
    assert checked.state == "validated"


def test_reassign_and_close_need_manage_tasks_over_the_whole_task(session, settings, now, places):
    task_a, item_a = one_building_task(session, settings, now, places["grid_a"])
    worker_a = principal(session, "community_worker", "community", places["a"])
    leader_a = principal(session, "grid_leader", "grid", places["grid_a"])
    other_staff = staff_of(session, places["b"], "community_worker")
    own_staff = staff_of(session, places["a"], "community_worker")
    with pytest.raises(AccessDenied):
        tasks.reassign_item(session, item_a.id, own_staff, actor="x", now=now, principal=leader_a)
    with pytest.raises(AccessDenied):  # to somebody of another community
        tasks.reassign_item(session, item_a.id, other_staff, actor="x", now=now, principal=worker_a)
    moved = tasks.reassign_item(session, item_a.id, own_staff, actor="x", now=now, base_version=item_a.version,
                                principal=worker_a)
    assert moved.assigned_staff_id == own_staff and moved.assignment_source == "manual"

    # A district-wide task reaches beyond the community: its worker may not close it; the commander may.
    both = Selection.buildings([building_of(session, places["grid_a"]), building_of(session, places["grid_b"])])
    wide = tasks.create_task(session, settings, type_code="disinfection", selection=both, created_by="指挥长", now=now)
    with pytest.raises(AccessDenied):
        tasks.close_task(session, wide.id, base_version=wide.version, actor="x", now=now, principal=worker_a)
    commander = principal(session, "district_commander", "district", places["district"])
    assert tasks.close_task(session, wide.id, base_version=wide.version, actor="x", now=now,
                            principal=commander).status == "closed"
    assert tasks.close_task(session, task_a.id, base_version=task_a.version, actor="x", now=now,
                            principal=worker_a).status == "closed"


def test_reads_stay_inside_the_area(session, settings, now, places):
    task_b, _item_b = one_building_task(session, settings, now, places["grid_b"])
    worker_a = principal(session, "community_worker", "community", places["a"])
    assert task_b.id not in {t.id for t in tasks.list_tasks(session, now, principal=worker_a)}
    assert task_b.id in {t.id for t in tasks.list_tasks(session, now)}
    with pytest.raises(AccessDenied):
        tasks.get_task(session, task_b.id, now, principal=worker_a)
    with pytest.raises(AccessDenied):
        tasks.task_history(session, task_b.id, principal=worker_a)
    assert tasks.task_items(session, task_b.id, now, principal=worker_a) == []
    late = now + timedelta(days=30)
    assert all(i.community_id == places["a"] for i in tasks.overdue_items(session, late, principal=worker_a))
    assert any(i.task_id == task_b.id for i in tasks.overdue_items(session, late))


def test_field_items_and_whom_a_user_works_as(session, settings, now, places):
    _task_a, item_a = one_building_task(session, settings, now, places["grid_a"])
    one_building_task(session, settings, now, places["grid_b"])
    leader = principal(session, "grid_leader", "grid", places["grid_a"])
    me = tasks.acting_staff(session, leader)
    items, total = tasks.field_items(session, leader, now, staff_id=me.id)
    assert total == len(items) and {i.id for i in items} == {item_a.id}
    assert tasks.field_items(session, leader, now, staff_id=me.id, scope="finished") == ([], 0)
    # The staff member named like the user wins over the first by id.
    named = scalar(session, "SELECT s.name FROM staff s JOIN staff_assignment sa ON sa.staff_id = s.id"
                            " WHERE sa.grid_id = :g AND s.role = 'grid_leader' AND s.active ORDER BY s.id DESC LIMIT 1",
                   g=places["grid_a"])
    assert tasks.acting_staff(session, principal(session, "grid_leader", "grid", places["grid_a"], named)).name == named
    assert tasks.acting_staff(session, principal(session, "auditor", "district", places["district"])) is None
    assert tasks.acting_staff(session, None) is None


def test_without_a_principal_nothing_is_checked(session, settings, now, places):
    task_b, item_b = one_building_task(session, settings, now, places["grid_b"])
    staff = staff_of(session, places["a"], "community_worker")  # any staff member, as from the shell
    assert tasks.take_item(session, item_b.id, staff, now, settings).state == "locked"
    assert tasks.close_task(session, task_b.id, base_version=task_b.version, actor="cli", now=now).status == "closed"


# --- reports -------------------------------------------------------------------------------------------
def report_rows(session) -> int:
    return scalar(session, "SELECT count(*) FROM daily_report")


def filing(community_id: int, **kw) -> ReportInput:
    return ReportInput(community_id=community_id, report_date=DAY, filed_by="填报员", **kw)


def at(hour: int) -> datetime:
    return datetime(DAY.year, DAY.month, DAY.day, hour, tzinfo=TZ)


def test_reports_are_filed_only_for_the_own_community(session, settings, places):
    before = report_rows(session)
    commander = principal(session, "district_commander", "district", places["district"])
    auditor = principal(session, "auditor", "district", places["district"])
    worker_a = principal(session, "community_worker", "community", places["a"])
    volunteer = principal(session, "volunteer", "grid", places["grid_a"])
    for who in (commander, auditor, volunteer):
        with pytest.raises(AccessDenied):
            reports.file_report(session, settings, filing(places["a"]), at(9), principal=who)
    with pytest.raises(AccessDenied):
        reports.file_report(session, settings, filing(places["b"]), at(9), principal=worker_a)
    with pytest.raises(AccessDenied):
        reports.file_zero_report(session, settings, community_id=places["b"], report_date=DAY, filed_by="x",
                                 now=at(9), principal=worker_a)
    assert report_rows(session) == before

    zero = reports.file_zero_report(session, settings, community_id=places["a"], report_date=DAY, filed_by="x",
                                    now=at(9), principal=worker_a)
    assert zero.kind == "zero" and zero.version == 1
    leader_a = principal(session, "grid_leader", "grid", places["grid_a"])  # files for the grid's community
    amended = reports.file_report(session, settings, filing(places["a"], new_cases=1), at(11), principal=leader_a)
    assert amended.version == 2
    # without a principal (the shell) any community
    assert reports.file_report(session, settings, filing(places["b"]), at(9)).community_id == places["b"]


def test_the_board_history_and_sheet_hold_the_area(session, settings, places, tmp_path):
    reports.file_zero_report(session, settings, community_id=places["a"], report_date=DAY, filed_by="x", now=at(9))
    worker_a = principal(session, "community_worker", "community", places["a"])
    status = reports.report_status(session, settings, DAY, at(12), principal=worker_a)
    assert [c.community_id for c in status.communities] == [places["a"]]
    assert status.totals.communities == 1 and status.totals.zero == 1
    assert reports.rollup(session, DAY, settings, at(12), principal=worker_a).total.communities == 1
    assert reports.report_status(session, settings, DAY, at(12)).totals.communities > 1
    assert [c["id"] for c in reports.communities_for(session, worker_a)] == [places["a"]]
    # duty phones: in clear in the area, masked for an auditor
    auditor = principal(session, "auditor", "district", places["district"])
    clear = {c.community_id: c.responsible_phone for c in reports.report_status(session, settings, DAY, at(12)).communities}
    for line in reports.report_status(session, settings, DAY, at(12), principal=auditor).communities:
        if clear[line.community_id]:
            assert "****" in line.responsible_phone and line.responsible_phone != clear[line.community_id]

    history = reports.report_history(session, places["a"], since=DAY - timedelta(days=13), until=DAY,
                                     principal=worker_a)
    assert [(h.report_date, h.kind) for h in history] == [(DAY, "zero")]
    with pytest.raises(AccessDenied):
        reports.report_history(session, places["b"], since=DAY, until=DAY, principal=worker_a)

    audited = scalar(session, "SELECT count(*) FROM audit_log WHERE action = 'EXPORT' AND table_name = 'daily_report'")
    rows = reports.export_report_xlsx(session, settings, DAY, tmp_path / "day.xlsx", at(12), principal=worker_a)
    assert rows == 1
    sheet = openpyxl.load_workbook(tmp_path / "day.xlsx").active
    assert sheet.cell(3, 4).value == "零报告"
    assert scalar(session, "SELECT count(*) FROM audit_log WHERE action = 'EXPORT' AND table_name = 'daily_report'") \
        == audited + 1
    volunteer = principal(session, "volunteer", "grid", places["grid_a"])
    with pytest.raises(AccessDenied):
        reports.export_report_xlsx(session, settings, DAY, tmp_path / "no.xlsx", at(12), principal=volunteer)
    assert not (tmp_path / "no.xlsx").exists()
