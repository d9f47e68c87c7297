"""Daily reports and zero reports (日报告、零报告, 003): the rules, without a database.

Every community reports every day, including "nothing new" (a zero report); a missing report is
itself an alarm. A second filing for the same day is an amendment: a new version, the earlier ones
kept. Emergency reports (突发情况报告) may be filed at any time and any number of times; they do not
stand in for the day's report. Dates and the deadline are local time of the command room.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime, time, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gridmap.domain.errors import InvalidInput

NORMAL, ZERO, EMERGENCY = "normal", "zero", "emergency"
REPORT_KINDS: tuple[str, ...] = (NORMAL, ZERO, EMERGENCY)
# Kinds that are "the day's report"; an emergency report is extra.
DAILY_KINDS: tuple[str, ...] = (NORMAL, ZERO)

# Status of a community's report for a day.
FILED, ZERO_FILED, MISSING, PENDING = "filed", "zero", "missing", "pending"
STATUSES: tuple[str, ...] = (FILED, ZERO_FILED, MISSING, PENDING)

COUNT_FIELDS: tuple[str, ...] = ("new_cases", "under_observation", "contacts_done", "tasks_done")
TEXT_FIELDS: tuple[str, ...] = ("supply_problems", "staffing_problems", "free_text")

KIND_NAMES_ZH = {NORMAL: "日报", ZERO: "零报告", EMERGENCY: "突发报告"}
STATUS_NAMES_ZH = {FILED: "已报", ZERO_FILED: "零报告", MISSING: "未报", PENDING: "待报"}


@dataclass(frozen=True)
class ReportInput:
    """What a community files; counts default to zero (a zero report is all zeros)."""

    community_id: int
    report_date: date
    kind: str = NORMAL
    new_cases: int = 0
    under_observation: int = 0
    contacts_done: int = 0
    tasks_done: int = 0
    supply_problems: str = ""
    staffing_problems: str = ""
    free_text: str = ""
    filed_by: str = ""
    responsible_name: str = ""
    responsible_phone: str = ""


def zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"未知时区 / unknown time zone {name!r}", code="bad_setting") from exc


def local_date(now: datetime, tz: tzinfo) -> date:
    if now.tzinfo is None:
        raise InvalidInput("时间须带时区 / a time must carry its time zone", code="naive_time")
    return now.astimezone(tz).date()


def deadline_at(report_date: date, deadline: time, tz: tzinfo) -> datetime:
    """The moment the report for ``report_date`` is due: the deadline, local time, that day."""
    return datetime.combine(report_date, deadline, tzinfo=tz)


def parse_deadline(value: str | time) -> time:
    if isinstance(value, time):
        return value
    try:
        return time.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(f"截止时间格式应为 HH:MM / deadline must be HH:MM, not {value!r}",
                           code="bad_setting") from exc


def validate_report(report: ReportInput, now: datetime, tz: tzinfo) -> ReportInput:
    """Refuse what must never be written: a future date, negative counts, a zero report with cases."""
    if report.kind not in REPORT_KINDS:
        raise InvalidInput(f"报告类型须为 {'/'.join(REPORT_KINDS)} / unknown report kind {report.kind!r}",
                           code="bad_kind")
    today = local_date(now, tz)
    if report.report_date > today:
        raise InvalidInput(
            f"不能填报未来日期 {report.report_date} / cannot file for a future date (today is {today})",
            code="future_date",
        )
    if not report.filed_by.strip():
        raise InvalidInput("须填写填报人 / who files this report?", code="filed_by_required")
    not_whole = [name for name in COUNT_FIELDS
                 if isinstance(getattr(report, name), bool) or not isinstance(getattr(report, name), int)]
    if not_whole:
        raise InvalidInput(f"数字须为整数 / counts must be whole numbers: {', '.join(not_whole)}",
                           code="bad_count")
    negative = [name for name in COUNT_FIELDS if getattr(report, name) < 0]
    if negative:
        raise InvalidInput(f"数字不能为负 / counts cannot be negative: {', '.join(negative)}",
                           code="negative_count")
    if report.kind == ZERO and report.new_cases:
        raise InvalidInput("零报告不能有新增病例 / a zero report cannot carry new cases; file a normal report",
                           code="zero_with_cases")
    return report


def status_for(latest_kind: str | None, report_date: date, now: datetime, deadline: time, tz: tzinfo) -> str:
    """filed / zero when the day's report is in; otherwise missing from the deadline on, else pending."""
    if latest_kind == NORMAL:
        return FILED
    if latest_kind == ZERO:
        return ZERO_FILED
    return MISSING if now >= deadline_at(report_date, deadline, tz) else PENDING


def is_late(filed_at: datetime, report_date: date, deadline: time, tz: tzinfo) -> bool:
    return filed_at > deadline_at(report_date, deadline, tz)


# --- roll-up ------------------------------------------------------------------------------------
@dataclass
class Totals:
    """Sums for one level (community, sub-district, district) of one day."""

    communities: int = 0
    filed: int = 0
    zero: int = 0
    missing: int = 0
    pending: int = 0
    emergency_reports: int = 0
    new_cases: int = 0
    under_observation: int = 0
    contacts_done: int = 0
    tasks_done: int = 0

    def add(self, other: Totals) -> Totals:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def community_totals(status: str, counts: dict[str, int] | None, emergency_reports: int = 0) -> Totals:
    """One community's line: its status and, when a day's report is in, its figures."""
    t = Totals(communities=1, emergency_reports=emergency_reports)
    if status == FILED:
        t.filed = 1
    elif status == ZERO_FILED:
        t.zero = 1
    elif status == MISSING:
        t.missing = 1
    else:
        t.pending = 1
    if counts:
        for name in COUNT_FIELDS:
            setattr(t, name, int(counts.get(name) or 0))
    return t


def sum_totals(parts: Iterable[Totals]) -> Totals:
    total = Totals()
    for p in parts:
        total.add(p)
    return total


# --- the office layout of the summary sheet -----------------------------------------------------
EXCEL_HEADERS: tuple[str, ...] = (
    "序号", "街道", "社区", "报告类型", "新增病例", "居家观察人数", "重点人群联系人次", "完成任务数",
    "物资保障问题", "人员力量问题", "填报人", "填报时间",
)
TOTALS_LABEL = "合计"


def excel_title(district_name: str, report_date: date) -> str:
    return f"{district_name}社区防控日报汇总表 {report_date.year}年{report_date.month:02d}月{report_date.day:02d}日"


def kind_label(status: str, kind: str | None, version: int | None) -> str:
    """报告类型 as offices write it: 日报 / 零报告, 第N版 for amendments, 未报 / 待报 when not in."""
    if status in (MISSING, PENDING):
        return STATUS_NAMES_ZH[status]
    label = KIND_NAMES_ZH.get(kind or "", kind or "")
    return f"{label}（第{version}版）" if version and version > 1 else label
