"""Daily and zero reports (日报告、零报告, 003), the missing-report alarm, roll-up and the office sheet.

Every community files its day's report (or a zero report) by ``settings.report_deadline`` local
time; a second filing is an amendment that adds a version and keeps the earlier ones. From the
deadline on, a community without a report is *missing* (before it, *pending*), shown with whom to
call. Figures roll up community → sub-district → district from each community's latest version;
emergency reports are counted apart and never stand in for the day's report.

Access (issue 6): filing takes a keyword-only ``principal`` (services.access); ``None`` is the
operator at the shell, with no check. A principal files only with the ``file_report`` permission, for a
community of their area; the status board, roll-up, history and the office sheet given a principal
hold only the communities of their area, and the sheet's export is audited.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gridmap.config import Settings, get_settings
from gridmap.domain import access as access_rules
from gridmap.domain import reports as rules
from gridmap.domain.errors import GridmapError, NotFound
from gridmap.domain.reports import ReportInput, Totals
from gridmap.io.writers import ExportFailed, neutralize
from gridmap.services.access import Principal, require, require_in_area, require_write

# Two filings of one community's day racing: the loser takes the next version number.
_VERSION_ATTEMPTS = 3


class ReportConflict(GridmapError):
    code = "report_conflict"


@dataclass(frozen=True)
class ReportView:
    id: int
    community_id: int
    community_code: str
    community_name: str
    report_date: date
    version: int
    kind: str
    new_cases: int
    under_observation: int
    contacts_done: int
    tasks_done: int
    supply_problems: str
    staffing_problems: str
    free_text: str
    filed_by: str
    filed_at: datetime
    responsible_name: str | None
    responsible_phone: str | None

    def as_dict(self) -> dict:
        d = asdict(self)
        d["report_date"] = self.report_date.isoformat()
        d["filed_at"] = self.filed_at.isoformat()
        return d


_REPORT_SELECT = """
    SELECT r.id, r.community_id, cm.code AS community_code, cm.name AS community_name, r.report_date, r.version,
           r.kind, r.new_cases, r.under_observation, r.contacts_done, r.tasks_done, r.supply_problems,
           r.staffing_problems, r.free_text, r.filed_by, r.filed_at, r.responsible_name, r.responsible_phone
    FROM daily_report r JOIN community cm ON cm.id = r.community_id
"""


def community_id_by_code(session: Session, code: str) -> int:
    cid = session.execute(text("SELECT id FROM community WHERE code = :c"), {"c": code}).scalar()
    if cid is None:
        raise NotFound(f"没有社区 {code} / no community with code {code!r}", code="unknown_community")
    return cid


def _check_community(session: Session, community_id: int) -> None:
    if not session.execute(text("SELECT EXISTS (SELECT 1 FROM community WHERE id = :c)"), {"c": community_id}).scalar():
        raise NotFound(f"没有社区 {community_id} / no community {community_id}", code="unknown_community")


def file_report(
    session: Session, settings: Settings, report: ReportInput, now: datetime, *, principal: Principal | None = None
) -> ReportView:
    """File a day's report, a zero report or an emergency report; a refused one writes nothing.

    A second normal/zero filing for the same community and day is an amendment (next version);
    emergency reports are numbered apart, any number a day.
    """
    if principal is not None:
        require_write(principal)
        require(principal, access_rules.FILE_REPORT)
        require_in_area(principal, community_id=report.community_id)
    tz = rules.zone(settings.timezone)
    report = rules.validate_report(report, now, tz)
    _check_community(session, report.community_id)
    emergency = report.kind == rules.EMERGENCY
    params = {
        **{k: (v.strip() if isinstance(v, str) else v) for k, v in asdict(report).items()},
        "filed_at": now, "emergency": emergency,
    }
    params["filed_by"] = params["filed_by"][:64]
    params["responsible_name"] = params["responsible_name"][:64] or None
    params["responsible_phone"] = params["responsible_phone"][:32] or None
    constraint = "daily_report_emergency_number" if emergency else "daily_report_version"
    for _ in range(_VERSION_ATTEMPTS):
        version = session.execute(
            text("SELECT coalesce(max(version), 0) + 1 FROM daily_report WHERE community_id = :community_id"
                 " AND report_date = :report_date AND (kind = 'emergency') = :emergency"),
            params,
        ).scalar_one()
        try:
            with session.begin_nested():
                new_id = session.execute(
                    text("INSERT INTO daily_report (community_id, report_date, version, kind, new_cases,"
                         " under_observation, contacts_done, tasks_done, supply_problems, staffing_problems,"
                         " free_text, filed_by, filed_at, responsible_name, responsible_phone)"
                         " VALUES (:community_id, :report_date, :version, :kind, :new_cases, :under_observation,"
                         " :contacts_done, :tasks_done, :supply_problems, :staffing_problems, :free_text,"
                         " :filed_by, :filed_at, :responsible_name, :responsible_phone) RETURNING id"),
                    {**params, "version": version},
                ).scalar_one()
        except IntegrityError as exc:
            if constraint in str(exc.orig):
                continue
            raise
        return get_report(session, new_id)
    raise ReportConflict("同时有多人填报，请稍后重试 / several people are filing at once; try again")


def file_zero_report(
    session: Session,
    settings: Settings,
    *,
    community_id: int,
    report_date: date,
    filed_by: str,
    now: datetime,
    responsible_name: str = "",
    responsible_phone: str = "",
    principal: Principal | None = None,
) -> ReportView:
    """零报告: nothing new today, in one call."""
    return file_report(
        session, settings,
        ReportInput(community_id=community_id, report_date=report_date, kind=rules.ZERO, filed_by=filed_by,
                    responsible_name=responsible_name, responsible_phone=responsible_phone),
        now,
        principal=principal,
    )


def get_report(session: Session, report_id: int) -> ReportView:
    row = session.execute(text(_REPORT_SELECT + " WHERE r.id = :id"), {"id": report_id}).one_or_none()
    if row is None:
        raise NotFound(f"没有报告 {report_id} / no report {report_id}", code="unknown_report")
    return ReportView(**row._mapping)


def report_versions(session: Session, community_id: int, report_date: date) -> list[ReportView]:
    """Every filing of a community's day, first to last (emergency reports after the day's versions)."""
    rows = session.execute(
        text(_REPORT_SELECT + " WHERE r.community_id = :c AND r.report_date = :d"
             " ORDER BY (r.kind = 'emergency'), r.version"),
        {"c": community_id, "d": report_date},
    ).all()
    return [ReportView(**r._mapping) for r in rows]


def suggest_counts(session: Session, settings: Settings, community_id: int, report_date: date) -> dict[str, int]:
    """Figures the task system already knows for a community's day, to prefill a report form."""
    tz = rules.zone(settings.timezone)
    start = datetime.combine(report_date, time(0), tzinfo=tz)
    row = session.execute(
        text("SELECT count(*) FILTER (WHERE tt.code <> 'contact_round') AS tasks_done,"
             " count(*) FILTER (WHERE tt.code = 'contact_round') AS contacts_done"
             " FROM task_item i JOIN task t ON t.id = i.task_id JOIN task_type tt ON tt.id = t.task_type_id"
             " JOIN building b ON b.id = i.building_id JOIN grid g ON g.id = b.grid_id"
             " WHERE g.community_id = :c AND i.state IN ('done', 'validated')"
             " AND i.done_at >= :start AND i.done_at < :end"),
        {"c": community_id, "start": start, "end": start + timedelta(days=1)},
    ).one()
    return {"tasks_done": int(row.tasks_done), "contacts_done": int(row.contacts_done)}


# --- status and roll-up -------------------------------------------------------------------------
@dataclass(frozen=True)
class CommunityStatus:
    community_id: int
    community_code: str
    community_name: str
    subdistrict_id: int
    subdistrict_name: str
    district_id: int
    status: str  # filed / zero / missing / pending
    kind: str | None
    version: int | None
    filed_by: str | None
    filed_at: datetime | None
    late: bool
    emergency_reports: int
    counts: dict[str, int] | None
    supply_problems: str
    staffing_problems: str
    # whom to call: the report's responsible person, else a community worker; and the community's phone
    responsible_name: str | None
    responsible_phone: str | None
    community_phone: str | None

    def as_dict(self) -> dict:
        d = asdict(self)
        d["filed_at"] = self.filed_at.isoformat() if self.filed_at else None
        return d


@dataclass(frozen=True)
class ReportStatus:
    report_date: date
    deadline_at: datetime
    communities: list[CommunityStatus]
    totals: Totals

    def missing_ids(self) -> list[int]:
        """The communities whose report is missing (past the deadline, nothing filed)."""
        return [c.community_id for c in self.communities if c.status == rules.MISSING]

    def as_dict(self) -> dict:
        return {
            "report_date": self.report_date.isoformat(),
            "deadline_at": self.deadline_at.isoformat(),
            "totals": self.totals.as_dict(),
            "communities": [c.as_dict() for c in self.communities],
        }


_LINES_SQL = text(
    """
    SELECT cm.id AS community_id, cm.code AS community_code, cm.name AS community_name, cm.phone AS community_phone,
           sd.id AS subdistrict_id, sd.code AS subdistrict_code, sd.name AS subdistrict_name,
           d.id AS district_id, d.code AS district_code, d.name AS district_name,
           r.kind, r.version, r.filed_by, r.filed_at, r.new_cases, r.under_observation, r.contacts_done, r.tasks_done,
           r.supply_problems, r.staffing_problems, r.responsible_name, r.responsible_phone,
           w.name AS worker_name, w.phone AS worker_phone,
           (SELECT count(*) FROM daily_report e WHERE e.community_id = cm.id AND e.report_date = :d
              AND e.kind = 'emergency') AS emergency_reports
    FROM community cm
    JOIN subdistrict sd ON sd.id = cm.subdistrict_id
    JOIN district d ON d.id = sd.district_id
    LEFT JOIN LATERAL (
      SELECT * FROM daily_report r WHERE r.community_id = cm.id AND r.report_date = :d AND r.kind <> 'emergency'
      ORDER BY r.version DESC LIMIT 1) r ON true
    LEFT JOIN LATERAL (
      SELECT s.name, s.phone FROM staff s
      WHERE s.community_id = cm.id AND s.role = 'community_worker' AND s.active ORDER BY s.id LIMIT 1) w ON true
    ORDER BY d.code, sd.code, cm.code
    """
)


def _lines(session: Session, report_date: date, principal: Principal | None = None) -> list:
    rows = session.execute(_LINES_SQL, {"d": report_date}).all()
    if principal is None:
        return rows
    return [r for r in rows if r.community_id in principal.community_ids]


def _status_of(row, report_date: date, now: datetime | None, settings: Settings) -> CommunityStatus:
    tz = rules.zone(settings.timezone)
    deadline = settings.report_deadline
    # Without a time the day is looked at after the fact: whatever is not in is missing.
    at = now if now is not None else rules.deadline_at(report_date, deadline, tz)
    status = rules.status_for(row.kind, report_date, at, deadline, tz)
    counts = {k: getattr(row, k) for k in rules.COUNT_FIELDS} if row.kind else None
    return CommunityStatus(
        community_id=row.community_id, community_code=row.community_code, community_name=row.community_name,
        subdistrict_id=row.subdistrict_id, subdistrict_name=row.subdistrict_name, district_id=row.district_id,
        status=status, kind=row.kind, version=row.version, filed_by=row.filed_by, filed_at=row.filed_at,
        late=bool(row.filed_at and rules.is_late(row.filed_at, report_date, deadline, tz)),
        emergency_reports=int(row.emergency_reports), counts=counts,
        supply_problems=row.supply_problems or "", staffing_problems=row.staffing_problems or "",
        responsible_name=row.responsible_name or row.worker_name,
        responsible_phone=row.responsible_phone or row.worker_phone,
        community_phone=row.community_phone,
    )


def _contact_for(principal: Principal | None, line: CommunityStatus) -> CommunityStatus:
    """Whom to call, as the principal may see it: duty phones are masked for the roles that see no
    staff contacts (auditors)."""
    if principal is None or principal.role not in access_rules.STAFF_CONTACT_HIDDEN_ROLES:
        return line
    return replace(line, responsible_phone=access_rules.mask_phone(line.responsible_phone))


def report_status(
    session: Session, settings: Settings, report_date: date, now: datetime, *, principal: Principal | None = None
) -> ReportStatus:
    """Per community: filed / zero / missing (from the deadline on) / pending, with whom to call."""
    tz = rules.zone(settings.timezone)
    lines = [_contact_for(principal, _status_of(r, report_date, now, settings))
             for r in _lines(session, report_date, principal)]
    totals = rules.sum_totals(rules.community_totals(c.status, c.counts, c.emergency_reports) for c in lines)
    return ReportStatus(report_date, rules.deadline_at(report_date, settings.report_deadline, tz), lines, totals)


def missing_communities(
    session: Session, settings: Settings, now: datetime, *, principal: Principal | None = None
) -> list[int]:
    """The communities whose report for today (local) is missing at ``now``: past the deadline and
    nothing filed, not even a zero report. The map and the wall outline them in red."""
    today = now.astimezone(rules.zone(settings.timezone)).date()
    return report_status(session, settings, today, now, principal=principal).missing_ids()


@dataclass(frozen=True)
class LevelTotals:
    level: str  # 'district' or 'subdistrict'
    id: int
    code: str
    name: str
    parent_id: int | None
    totals: Totals

    def as_dict(self) -> dict:
        return {**{k: v for k, v in asdict(self).items() if k != "totals"}, "totals": self.totals.as_dict()}


@dataclass(frozen=True)
class Rollup:
    report_date: date
    total: Totals
    districts: list[LevelTotals]
    subdistricts: list[LevelTotals]
    communities: list[CommunityStatus] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "report_date": self.report_date.isoformat(),
            "total": self.total.as_dict(),
            "districts": [x.as_dict() for x in self.districts],
            "subdistricts": [x.as_dict() for x in self.subdistricts],
            "communities": [c.as_dict() for c in self.communities],
        }


def rollup(
    session: Session, report_date: date, settings: Settings | None = None, now: datetime | None = None, *,
    principal: Principal | None = None,
) -> Rollup:
    """Totals per level, community → sub-district → district, from each community's latest version.

    Without ``now`` the day is looked at after the fact: a community without a report is missing.
    """
    settings = settings or get_settings()
    rows = _lines(session, report_date, principal)
    lines = [_contact_for(principal, _status_of(r, report_date, now, settings)) for r in rows]
    per_community = [rules.community_totals(c.status, c.counts, c.emergency_reports) for c in lines]
    subdistricts: dict[int, LevelTotals] = {}
    districts: dict[int, LevelTotals] = {}
    for row, t in zip(rows, per_community, strict=True):
        sd = subdistricts.setdefault(row.subdistrict_id, LevelTotals(
            "subdistrict", row.subdistrict_id, row.subdistrict_code, row.subdistrict_name, row.district_id, Totals()))
        sd.totals.add(t)
        d = districts.setdefault(row.district_id, LevelTotals(
            "district", row.district_id, row.district_code, row.district_name, None, Totals()))
        d.totals.add(t)
    return Rollup(report_date, rules.sum_totals(per_community), list(districts.values()),
                  list(subdistricts.values()), lines)


# --- the office summary sheet -------------------------------------------------------------------
_RED = "C00000"
_NUMBER_COLUMNS = (5, 6, 7, 8)  # 新增病例 .. 完成任务数, 1-based


def export_report_xlsx(
    session: Session, settings: Settings, report_date: date, path: Path, now: datetime, *,
    principal: Principal | None = None,
) -> int:
    """The day's roll-up as the summary sheet offices use; missing communities in red. Returns rows.

    With a principal: their area's communities only, and the export written to the audit trail.
    """
    import openpyxl
    from openpyxl.styles import Alignment, Border, Font, Side
    from openpyxl.utils import get_column_letter

    path = Path(path)
    if path.suffix.lower() != ".xlsx":
        raise ExportFailed(f"汇总表须为 .xlsx / the summary sheet must be .xlsx, not {path.suffix or '?'}",
                           code="unknown_format")
    if not path.parent.is_dir():
        raise ExportFailed(f"目录不存在 / folder not found: {path.parent}", code="bad_path")
    require(principal, access_rules.EXPORT)
    tz = rules.zone(settings.timezone)
    rows = _lines(session, report_date, principal)
    lines = [_status_of(r, report_date, now, settings) for r in rows]
    district_names = list(dict.fromkeys(r.district_name for r in rows)) or [""]
    headers = rules.EXCEL_HEADERS
    ncol = len(headers)

    book = openpyxl.Workbook()
    ws = book.active
    ws.title = f"{report_date:%Y-%m-%d}"
    thin = Side(style="thin", color="999999")
    box = Border(left=thin, right=thin, top=thin, bottom=thin)
    ws.append([rules.excel_title("、".join(district_names), report_date)])
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=ncol)
    ws.cell(1, 1).font = Font(bold=True, size=14)
    ws.cell(1, 1).alignment = Alignment(horizontal="center")
    ws.append(list(headers))
    for c in range(1, ncol + 1):
        ws.cell(2, c).font = Font(bold=True)
        ws.cell(2, c).alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        ws.cell(2, c).border = box

    red = Font(color=_RED)
    for n, line in enumerate(lines, start=1):
        counts = line.counts or {}
        values = [
            n, line.subdistrict_name, line.community_name, rules.kind_label(line.status, line.kind, line.version),
            *(counts.get(k) if line.counts else None for k in rules.COUNT_FIELDS),
            line.supply_problems, line.staffing_problems, line.filed_by,
            line.filed_at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if line.filed_at else None,
        ]
        ws.append([neutralize(v) for v in values])
        r = ws.max_row
        for c in range(1, ncol + 1):
            ws.cell(r, c).border = box
            if line.status == rules.MISSING:
                ws.cell(r, c).font = red

    totals = rules.sum_totals(rules.community_totals(c.status, c.counts) for c in lines)
    summary = f"已报{totals.filed} 零报告{totals.zero} 未报{totals.missing}" + (
        f" 待报{totals.pending}" if totals.pending else "")
    ws.append([rules.TOTALS_LABEL, None, None, summary,
               totals.new_cases, totals.under_observation, totals.contacts_done, totals.tasks_done])
    r = ws.max_row
    ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=3)
    for c in range(1, ncol + 1):
        ws.cell(r, c).font = Font(bold=True)
        ws.cell(r, c).border = box
    missing = [c.community_name for c in lines if c.status == rules.MISSING]
    if missing:
        ws.append([f"未报社区（{len(missing)}）：" + "、".join(missing)])
        ws.merge_cells(start_row=ws.max_row, start_column=1, end_row=ws.max_row, end_column=ncol)
        ws.cell(ws.max_row, 1).font = Font(bold=True, color=_RED)

    widths = (6, 14, 16, 14, 10, 12, 16, 12, 24, 24, 10, 17)
    for i, w in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(i)].width = w
    ws.freeze_panes = "A3"

    # Written beside the target and renamed: an interrupted export never leaves half a file.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".xlsx", dir=path.parent)
    os.close(fd)
    try:
        book.save(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    if principal is not None:
        from gridmap.services import audit

        audit.record(session, principal, "EXPORT", "daily_report",
                     detail={"rows": len(lines), "format": "xlsx", "report_date": report_date.isoformat()})
    return len(lines)


# --- for the reporting screens (issue 6) ---------------------------------------------------------
def report_history(
    session: Session, community_id: int, *, since: date, until: date, principal: Principal | None = None
) -> list[ReportView]:
    """Every filing of a community between two days (both included): newest day first, then the
    day's versions in order and its emergency reports after them."""
    require_in_area(principal, community_id=community_id)
    _check_community(session, community_id)
    rows = session.execute(
        text(_REPORT_SELECT + " WHERE r.community_id = :c AND r.report_date BETWEEN :since AND :until"
             " ORDER BY r.report_date DESC, (r.kind = 'emergency'), r.version"),
        {"c": community_id, "since": since, "until": until},
    ).all()
    return [ReportView(**r._mapping) for r in rows]


def communities_for(session: Session, principal: Principal | None) -> list[dict]:
    """The communities a principal may report for or look at: id, code, name, sub-district."""
    rows = session.execute(
        text("SELECT cm.id, cm.code, cm.name, sd.name AS subdistrict_name FROM community cm"
             " JOIN subdistrict sd ON sd.id = cm.subdistrict_id ORDER BY sd.code, cm.code")
    ).all()
    return [dict(r._mapping) for r in rows if principal is None or r.id in principal.community_ids]

