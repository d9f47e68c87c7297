"""Daily and zero reports on a real PostGIS: amendments keep the first filing, refused filings write
nothing, the missing-report alarm exactly at the deadline (time injected), roll-up totals checked
against the filed rows, the office sheet read back with openpyxl, and the CLI."""

import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from sqlalchemy import text

from gridmap.domain.errors import InvalidInput, NotFound
from gridmap.domain.reports import EXCEL_HEADERS, ReportInput
from gridmap.services.reports import (
    community_id_by_code,
    export_report_xlsx,
    file_report,
    file_zero_report,
    missing_communities,
    report_status,
    report_versions,
    rollup,
    suggest_counts,
)

TZ = ZoneInfo("Asia/Shanghai")
DAY = date(2022, 11, 25)


def local(h: int, m: int = 0, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, h, m, tzinfo=TZ)


def communities(session) -> list:
    return session.execute(text("SELECT id, code, name, subdistrict_id FROM community ORDER BY code")).all()


def report_rows(session) -> int:
    return session.execute(text("SELECT count(*) FROM daily_report")).scalar_one()


def file(session, settings, community_id, now=None, **kw):
    return file_report(session, settings, ReportInput(community_id=community_id, report_date=DAY,
                                                      filed_by=kw.pop("filed_by", "填报员"), **kw),
                       now or local(9))


def test_amendment_keeps_the_first_filing(session, settings):
    c = communities(session)[0]
    first = file(session, settings, c.id, new_cases=1, under_observation=4, supply_problems="口罩不足")
    second = file(session, settings, c.id, now=local(11), new_cases=2, under_observation=4)
    assert (first.version, second.version) == (1, 2)
    versions = report_versions(session, c.id, DAY)
    assert [(v.version, v.new_cases) for v in versions] == [(1, 1), (2, 2)]
    assert versions[0].supply_problems == "口罩不足" and versions[0].filed_at == local(9)
    # The status and the roll-up use the latest version.
    line = next(x for x in report_status(session, settings, DAY, local(12)).communities if x.community_id == c.id)
    assert line.status == "filed" and line.version == 2 and line.counts["new_cases"] == 2 and line.late


def test_zero_then_emergency_reports(session, settings):
    c = communities(session)[1]
    zero = file_zero_report(session, settings, community_id=c.id, report_date=DAY, filed_by="乙", now=local(8))
    assert zero.kind == "zero" and zero.new_cases == 0 and zero.version == 1
    e1 = file(session, settings, c.id, now=local(15), kind="emergency", new_cases=1, free_text="发现阳性")
    e2 = file(session, settings, c.id, now=local(16), kind="emergency", new_cases=1, free_text="密接转运")
    assert (e1.version, e2.version) == (1, 2)
    status = report_status(session, settings, DAY, local(17))
    line = next(x for x in status.communities if x.community_id == c.id)
    # Emergency reports are counted apart and do not replace the day's (zero) report.
    assert line.status == "zero" and line.version == 1 and line.emergency_reports == 2
    assert line.counts["new_cases"] == 0 and not line.late


def test_an_emergency_report_alone_is_not_the_days_report(session, settings):
    c = communities(session)[2]
    file(session, settings, c.id, now=local(8), kind="emergency", new_cases=3)
    line = next(x for x in report_status(session, settings, DAY, local(10)).communities if x.community_id == c.id)
    assert line.status == "missing" and line.emergency_reports == 1


@pytest.mark.parametrize(
    ("kw", "code"),
    [
        ({"report_date": date(2022, 11, 26)}, "future_date"),
        ({"new_cases": -1}, "negative_count"),
        ({"under_observation": -5}, "negative_count"),
        ({"kind": "zero", "new_cases": 2}, "zero_with_cases"),
        ({"filed_by": ""}, "filed_by_required"),
    ],
)
def test_refused_filings_write_nothing(session, settings, kw, code):
    c = communities(session)[0]
    before = report_rows(session)
    fields = {"community_id": c.id, "report_date": DAY, "filed_by": "甲", **kw}
    with pytest.raises(InvalidInput) as exc:
        file_report(session, settings, ReportInput(**fields), local(9))
    assert exc.value.code == code
    assert report_rows(session) == before


def test_unknown_community_writes_nothing(session, settings):
    before = report_rows(session)
    with pytest.raises(NotFound) as exc:
        file(session, settings, 987654)
    assert exc.value.code == "unknown_community"
    with pytest.raises(NotFound):
        community_id_by_code(session, "no-such-code")
    assert report_rows(session) == before


def test_today_in_shanghai_is_not_the_future(session, settings):
    # 2022-11-25 17:00 UTC is already the 26th in Shanghai.
    c = communities(session)[0]
    r = file_report(session, settings, ReportInput(community_id=c.id, report_date=date(2022, 11, 26), filed_by="甲"),
                    datetime(2022, 11, 25, 17, 0, tzinfo=UTC))
    assert r.report_date == date(2022, 11, 26)


def test_missing_exactly_from_the_deadline(session, settings):
    cs = communities(session)
    file(session, settings, cs[0].id, now=local(9))

    def statuses(now):
        return {x.community_id: x.status for x in report_status(session, settings, DAY, now).communities}

    before = statuses(local(9, 59))
    assert before[cs[0].id] == "filed"
    assert all(before[c.id] == "pending" for c in cs[1:])
    for moment in (local(10, 0), local(10, 1), local(23, 59), local(8, 0, DAY + timedelta(days=2))):
        after = statuses(moment)
        assert after[cs[0].id] == "filed"
        assert all(after[c.id] == "missing" for c in cs[1:])
    status = report_status(session, settings, DAY, local(10))
    assert status.totals.missing == len(cs) - 1 and status.totals.pending == 0
    assert status.deadline_at == local(10)
    # Whom to call: a community worker of the community, and the community's phone.
    for line in status.communities:
        worker = session.execute(
            text("SELECT name, phone FROM staff WHERE community_id = :c AND role = 'community_worker' AND active"
                 " ORDER BY id LIMIT 1"), {"c": line.community_id}).one()
        phone = session.execute(text("SELECT phone FROM community WHERE id = :c"), {"c": line.community_id}).scalar()
        assert (line.responsible_name, line.responsible_phone, line.community_phone) == (worker.name, worker.phone, phone)


def test_missing_communities_for_the_map_alarm(session, settings):
    """The map and the wall outline the communities whose report for today is missing."""
    cs = communities(session)
    file(session, settings, cs[0].id, now=local(9))
    file_zero_report(session, settings, community_id=cs[1].id, report_date=DAY, filed_by="填报员", now=local(9, 30))
    assert missing_communities(session, settings, local(9, 59)) == []  # before the deadline: pending
    at_deadline = missing_communities(session, settings, local(10))
    assert sorted(at_deadline) == sorted(c.id for c in cs[2:])
    # The day after, at 09:00, that day's reports are not due yet: nothing is missing.
    assert missing_communities(session, settings, local(9, 0, DAY + timedelta(days=1))) == []


def test_deadline_is_a_setting(session, settings):
    later = settings.model_copy(update={"report_deadline": datetime(2000, 1, 1, 12, 0).time()})
    assert {x.status for x in report_status(session, later, DAY, local(11)).communities} == {"pending"}
    assert {x.status for x in report_status(session, later, DAY, local(12)).communities} == {"missing"}


def test_rollup_totals_match_the_filed_reports(session, settings):
    cs = communities(session)
    file(session, settings, cs[0].id, new_cases=1, under_observation=3, contacts_done=10, tasks_done=4)
    file(session, settings, cs[0].id, new_cases=2, under_observation=3, contacts_done=12, tasks_done=5)  # amends
    file(session, settings, cs[1].id, under_observation=7, contacts_done=6, tasks_done=2)
    file_zero_report(session, settings, community_id=cs[2].id, report_date=DAY, filed_by="丙", now=local(9))
    file(session, settings, cs[2].id, kind="emergency", new_cases=9)  # not summed into the day's figures
    result = rollup(session, DAY)

    latest = session.execute(text(
        "SELECT DISTINCT ON (r.community_id) r.community_id, sd.id AS sd, r.new_cases, r.under_observation,"
        " r.contacts_done, r.tasks_done FROM daily_report r JOIN community cm ON cm.id = r.community_id"
        " JOIN subdistrict sd ON sd.id = cm.subdistrict_id WHERE r.report_date = :d AND r.kind <> 'emergency'"
        " ORDER BY r.community_id, r.version DESC"), {"d": DAY}).all()
    fields = ("new_cases", "under_observation", "contacts_done", "tasks_done")
    for name in fields:
        assert getattr(result.total, name) == sum(getattr(r, name) for r in latest)
    assert (result.total.new_cases, result.total.under_observation) == (2, 10)
    assert result.total.filed == 2 and result.total.zero == 1 and result.total.missing == len(cs) - 3
    assert result.total.emergency_reports == 1 and result.total.communities == len(cs)
    for sd in result.subdistricts:
        mine = [r for r in latest if r.sd == sd.id]
        assert sd.totals.new_cases == sum(r.new_cases for r in mine)
        assert sd.totals.communities == sum(1 for c in cs if c.subdistrict_id == sd.id)
    (district,) = result.districts
    assert district.totals == result.total
    assert sum(sd.totals.contacts_done for sd in result.subdistricts) == district.totals.contacts_done
    # Before the deadline an unfiled community is pending, not missing.
    early = rollup(session, DAY, settings, local(9))
    assert early.total.missing == 0 and early.total.pending == len(cs) - 3


def test_concurrent_style_amendments_number_on(session, settings):
    c = communities(session)[3]
    versions = [file(session, settings, c.id, now=local(9) + timedelta(minutes=i), tasks_done=i).version
                for i in range(4)]
    assert versions == [1, 2, 3, 4]


def test_suggested_counts_come_from_tasks(session, settings):
    from gridmap.domain.tasks import Selection
    from gridmap.services.tasks import create_task, finish_item, take_item, task_items

    building, community = session.execute(text(
        "SELECT b.id, g.community_id FROM building b JOIN grid g ON g.id = b.grid_id ORDER BY b.id LIMIT 1")).one()
    assert suggest_counts(session, settings, community, DAY) == {"tasks_done": 0, "contacts_done": 0}
    task = create_task(session, settings, type_code="disinfection", selection=Selection.buildings([building]),
                       created_by="指挥长", now=local(7))
    (item,) = task_items(session, task.id, local(7))
    staff = session.execute(text("SELECT id FROM staff WHERE community_id = :c AND active ORDER BY id LIMIT 1"),
                            {"c": community}).scalar_one()
    take_item(session, item.id, staff, local(7), settings)
    finish_item(session, item.id, staff, outcome="done", now=local(23, 30))  # still the 25th in Shanghai
    assert suggest_counts(session, settings, community, DAY) == {"tasks_done": 1, "contacts_done": 0}
    assert suggest_counts(session, settings, community, DAY + timedelta(days=1))["tasks_done"] == 0


def test_excel_export_read_back(session, settings, tmp_path):
    cs = communities(session)
    file(session, settings, cs[0].id, new_cases=2, under_observation=5, contacts_done=8, tasks_done=3,
         supply_problems="=HYPERLINK(\"http://x\")", filed_by="张三")
    file_zero_report(session, settings, community_id=cs[1].id, report_date=DAY, filed_by="李四", now=local(8, 30))
    path = tmp_path / "日报汇总.xlsx"
    n = export_report_xlsx(session, settings, DAY, path, local(11))
    assert n == len(cs)
    ws = openpyxl.load_workbook(path).active
    rows = list(ws.iter_rows(values_only=True))
    district = session.execute(text("SELECT name FROM district")).scalar_one()
    assert rows[0][0] == f"{district}社区防控日报汇总表 2022年11月25日"
    assert tuple(rows[1]) == EXCEL_HEADERS
    body = rows[2:2 + len(cs)]
    assert [r[0] for r in body] == list(range(1, len(cs) + 1))
    by_name = {r[2]: r for r in body}
    assert by_name[cs[0].name][3:8] == ("日报", 2, 5, 8, 3)
    assert by_name[cs[0].name][8] == "'=HYPERLINK(\"http://x\")"  # neutralised, never a formula
    assert by_name[cs[0].name][10:12] == ("张三", "2022-11-25 09:00")
    assert by_name[cs[1].name][3] == "零报告"
    totals = rows[2 + len(cs)]
    assert totals[0] == "合计" and totals[4:8] == (2, 5, 8, 3)
    assert f"未报{len(cs) - 2}" in totals[3]
    # Missing communities are listed in red, row and footer.
    def is_red(cell) -> bool:
        color = cell.font.color
        return color is not None and isinstance(color.rgb, str) and color.rgb.endswith("C00000")

    red_rows = [i for i in range(3, 3 + len(cs)) if is_red(ws.cell(i, 3))]
    assert [ws.cell(i, 3).value for i in red_rows] == [c.name for c in cs[2:]]
    assert all(ws.cell(i, 4).value == "未报" for i in red_rows)
    footer = rows[3 + len(cs)][0]
    assert footer.startswith("未报社区") and all(c.name in footer for c in cs[2:])


def test_cli_status_and_zero(settings, database_url, monkeypatch, capsys):
    """The CLI on the test database (committed rows, removed afterwards)."""
    from sqlalchemy import create_engine

    from gridmap import cli

    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    engine = create_engine(database_url)
    code = None
    try:
        with engine.connect() as conn:
            code = conn.execute(text("SELECT code FROM community ORDER BY code LIMIT 1")).scalar_one()
        assert cli.main(["report", "zero", "--community", code, "--date", "2022-11-25", "--by", "王五"]) == 0
        assert "zero report" in capsys.readouterr().out
        assert cli.main(["report", "status", "--date", "2022-11-25", "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
        mine = next(c for c in data["communities"] if c["community_code"] == code)
        assert mine["status"] == "zero" and data["totals"]["zero"] == 1
        assert data["totals"]["missing"] == data["totals"]["communities"] - 1  # the day is long past its deadline
        assert cli.main(["report", "zero", "--community", "nope", "--date", "2022-11-25", "--by", "x"]) == 2
        assert cli.main(["report", "file", "--community", code, "--date", "2099-01-01", "--by", "x"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 2 and all(line.startswith("error: ") for line in err)
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM daily_report WHERE report_date = '2022-11-25'"))
        engine.dispose()
