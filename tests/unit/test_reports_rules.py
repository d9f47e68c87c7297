"""Report rules without a database: validation, deadline and missing logic, roll-up sums, labels."""

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from gridmap.config import Settings
from gridmap.domain import reports as rules
from gridmap.domain.errors import InvalidInput
from gridmap.domain.reports import ReportInput, Totals

TZ = ZoneInfo("Asia/Shanghai")
DAY = date(2022, 11, 25)
TEN = time(10, 0)


def local(h: int, m: int = 0, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, h, m, tzinfo=TZ)


def report(**kw) -> ReportInput:
    return ReportInput(**{"community_id": 1, "report_date": DAY, "filed_by": "张三", **kw})


def test_settings_defaults():
    defaults = Settings.model_fields
    assert defaults["report_deadline"].default == time(10, 0)
    assert defaults["timezone"].default == "Asia/Shanghai"


def test_a_valid_report_passes():
    r = report(new_cases=2, under_observation=10)
    assert rules.validate_report(r, local(9), TZ) is r


def test_future_date_is_judged_in_local_time():
    # 2022-11-25 20:00 UTC is already the 26th in Shanghai: filing for the 26th is allowed then.
    tomorrow = report(report_date=date(2022, 11, 26))
    rules.validate_report(tomorrow, datetime(2022, 11, 25, 16, 0, tzinfo=UTC), TZ)
    with pytest.raises(InvalidInput) as exc:
        rules.validate_report(tomorrow, datetime(2022, 11, 25, 15, 59, tzinfo=UTC), TZ)
    assert exc.value.code == "future_date"


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"new_cases": -1}, "negative_count"),
        ({"contacts_done": -3}, "negative_count"),
        ({"kind": "weekly"}, "bad_kind"),
        ({"kind": "zero", "new_cases": 1}, "zero_with_cases"),
        ({"filed_by": " "}, "filed_by_required"),
        ({"tasks_done": 1.5}, "bad_count"),
        ({"tasks_done": True}, "bad_count"),
    ],
)
def test_invalid_reports_are_refused_with_a_code(fields, code):
    with pytest.raises(InvalidInput) as exc:
        rules.validate_report(report(**fields), local(9), TZ)
    assert exc.value.code == code


def test_missing_only_from_the_deadline_on():
    assert rules.status_for(None, DAY, local(9, 59), TEN, TZ) == "pending"
    assert rules.status_for(None, DAY, local(10, 0), TEN, TZ) == "missing"
    assert rules.status_for(None, DAY, local(23, 0), TEN, TZ) == "missing"
    assert rules.status_for(None, DAY, local(1, 0, date(2022, 11, 27)), TEN, TZ) == "missing"
    assert rules.status_for(None, DAY, local(20, 0, date(2022, 11, 24)), TEN, TZ) == "pending"
    assert rules.status_for("normal", DAY, local(9), TEN, TZ) == "filed"
    assert rules.status_for("zero", DAY, local(11), TEN, TZ) == "zero"
    # An emergency report is not the day's report.
    assert rules.status_for("emergency", DAY, local(11), TEN, TZ) == "missing"


def test_deadline_and_lateness():
    assert rules.deadline_at(DAY, TEN, TZ) == datetime(2022, 11, 25, 2, 0, tzinfo=UTC)
    assert not rules.is_late(local(10, 0), DAY, TEN, TZ)
    assert rules.is_late(local(10, 1), DAY, TEN, TZ)
    assert rules.parse_deadline("09:30") == time(9, 30)
    with pytest.raises(InvalidInput):
        rules.parse_deadline("half past nine")
    with pytest.raises(InvalidInput):
        rules.zone("Mars/Olympus")
    with pytest.raises(InvalidInput):
        rules.local_date(datetime(2022, 11, 25, 9), TZ)  # naive


def test_rollup_sums():
    a = rules.community_totals("filed", {"new_cases": 2, "under_observation": 5, "contacts_done": 7, "tasks_done": 1}, 1)
    b = rules.community_totals("zero", {"new_cases": 0, "under_observation": 3, "contacts_done": 0, "tasks_done": 0})
    c = rules.community_totals("missing", None)
    d = rules.community_totals("pending", None, 2)
    total = rules.sum_totals([a, b, c, d])
    assert total == Totals(communities=4, filed=1, zero=1, missing=1, pending=1, emergency_reports=3,
                           new_cases=2, under_observation=8, contacts_done=7, tasks_done=1)
    assert rules.sum_totals([]) == Totals()


def test_office_layout_labels():
    assert rules.excel_title("渝中区", date(2022, 3, 5)) == "渝中区社区防控日报汇总表 2022年03月05日"
    assert rules.EXCEL_HEADERS[0] == "序号" and rules.EXCEL_HEADERS[-1] == "填报时间"
    assert len(rules.EXCEL_HEADERS) == 12
    assert rules.kind_label("filed", "normal", 1) == "日报"
    assert rules.kind_label("filed", "normal", 2) == "日报（第2版）"
    assert rules.kind_label("zero", "zero", 1) == "零报告"
    assert rules.kind_label("missing", None, None) == "未报"
    assert rules.kind_label("pending", None, None) == "待报"
