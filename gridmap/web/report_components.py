"""HTML pieces of the reporting page (pages/reports.py), built from services.reports' plain results:
the status of one community's day, its versions, the status board with the missing ones in red,
the roll-up by sub-district and district, and a community's history."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from dash import html

from gridmap.domain import reports as report_rules
from gridmap.web import ids
from gridmap.web.i18n import t
from gridmap.web.task_components import bi, local, num, tr

COUNT_FIELDS = report_rules.COUNT_FIELDS
# Board order: the alarm first.
STATUS_ORDER = {report_rules.MISSING: 0, report_rules.PENDING: 1, report_rules.FILED: 2, report_rules.ZERO_FILED: 3}


def status_badge(status: str, lang: str) -> html.Span:
    return html.Span(t(f"reports.status.{status}", lang), className=f"gm-rp-badge gm-rp-st-{status}",
                     **{"data-status": status})


def kind_name(kind: str, lang: str) -> str:
    return t(f"reports.kind.{kind}", lang)


def _figures(counts: dict | None, lang: str) -> list:
    if not counts:
        return [html.Td("—", className="gm-tk-num gm-ae-muted") for _ in COUNT_FIELDS]
    return [html.Td(num(counts.get(k)), className="gm-tk-num" + (" gm-rp-cases" if k == "new_cases" and counts.get(k)
                                                                  else "")) for k in COUNT_FIELDS]


def _heads(labels: list[str], first_number: int, end: int | None = None) -> list:
    """Header cells; the figure columns (from ``first_number``, four unless ``end``) right-aligned."""
    last = end if end is not None else first_number + len(COUNT_FIELDS)
    return [html.Th(h, className="gm-tk-num" if first_number <= i < last else None) for i, h in enumerate(labels)]


# --- one community's day -------------------------------------------------------------------------


def day_status(versions: list, status: str | None, deadline: str, lang: str, timezone: str) -> html.Div:
    """Is today's report in? The latest version, or how long until (or since) the deadline."""
    daily = [v for v in versions if v.kind != report_rules.EMERGENCY]
    if daily:
        last = daily[-1]
        text = tr("reports.filed_as", lang, kind=kind_name(last.kind, lang), version=last.version,
                  when=local(last.filed_at, timezone, "%H:%M"), who=last.filed_by)
        return html.Div([status_badge(report_rules.ZERO_FILED if last.kind == report_rules.ZERO else
                                      report_rules.FILED, lang), html.Span(text)], className="gm-rp-day gm-rp-day-in")
    status = status or report_rules.PENDING
    key = "reports.missing_now" if status == report_rules.MISSING else "reports.pending_now"
    return html.Div([status_badge(status, lang), html.Span(tr(key, lang, deadline=deadline))],
                    className=f"gm-rp-day gm-rp-day-{status}")


def versions_list(versions: list, lang: str, timezone: str) -> list:
    """Every filing of the day, newest first: amendments as versions, emergency reports apart."""
    if not versions:
        return [html.Div(t("reports.no_versions", lang), className="gm-ae-muted")]
    items = []
    latest_daily = max((v.version for v in versions if v.kind != report_rules.EMERGENCY), default=None)
    for v in reversed(versions):
        emergency = v.kind == report_rules.EMERGENCY
        label = (tr("reports.emergency_n", lang, n=v.version) if emergency
                 else tr("reports.version_n", lang, n=v.version))
        tags: list = [html.Span(label, className="gm-ae-vnum"), html.Span(kind_name(v.kind, lang),
                                                                          className=f"gm-rp-kind gm-rp-kind-{v.kind}")]
        if not emergency and v.version == latest_daily:
            tags.append(html.Span(t("reports.current", lang), className="gm-ae-tag"))
        figures = " · ".join(f"{t('reports.field.' + k, lang)} {num(getattr(v, k))}" for k in COUNT_FIELDS)
        body = [html.Div(tags, className="gm-ae-vhead"),
                html.Div(f"{v.filed_by} · {local(v.filed_at, timezone, '%m-%d %H:%M')}", className="gm-ae-vmeta"),
                html.Div(figures, className="gm-rp-vfig")]
        for k in ("supply_problems", "staffing_problems", "free_text"):
            if getattr(v, k):
                body.append(html.Div([html.B(f"{t('reports.field.' + k, lang)}："), getattr(v, k)],
                                     className="gm-ae-vreason"))
        items.append(html.Li(body, className="gm-ae-version" + (" gm-rp-v-emergency" if emergency else ""),
                             style={"--gm-dot": "#c62828" if emergency else "#0b3d91"}))
    return [html.Ul(items, className="gm-ae-versions")]


# --- the board -----------------------------------------------------------------------------------------


def totals_chips(totals: Any, lang: str) -> html.Div:
    def chip(key: str, value: int, css: str) -> html.Div:
        return html.Div([html.Div(num(value), className="gm-rp-chip-value"), html.Div(t(key, lang), className="gm-rp-chip-label")],
                        className=f"gm-rp-chip {css}", **{"data-value": str(value)})

    return html.Div(
        [chip("reports.status.missing", totals.missing, "gm-rp-chip-missing" + (" gm-rp-alarm" if totals.missing else "")),
         chip("reports.status.pending", totals.pending, "gm-rp-chip-pending"),
         chip("reports.status.filed", totals.filed, "gm-rp-chip-filed"),
         chip("reports.status.zero", totals.zero, "gm-rp-chip-zero"),
         chip("reports.emergency_count", totals.emergency_reports,
              "gm-rp-chip-emergency" + (" gm-rp-alarm" if totals.emergency_reports else "")),
         chip("reports.field.new_cases", totals.new_cases, "gm-rp-chip-cases"),
         chip("reports.field.under_observation", totals.under_observation, ""),
         chip("reports.field.contacts_done", totals.contacts_done, ""),
         chip("reports.field.tasks_done", totals.tasks_done, "")],
        id=ids.REPORT_TOTALS, className="gm-rp-chips",
    )


def board_table(communities: list, lang: str, timezone: str) -> html.Table:
    """One row per community, the missing ones first and in red, with whom to call."""
    rows = []
    ordered = sorted(communities, key=lambda c: (STATUS_ORDER.get(c.status, 9), c.subdistrict_name, c.community_code))
    for c in ordered:
        filed = ""
        if c.filed_at:
            filed = local(c.filed_at, timezone, "%H:%M")
            if c.version and c.version > 1:
                filed += " " + tr("reports.version_n", lang, n=c.version)
        contact = [html.Div(c.responsible_name or "—", className="gm-rp-person"),
                   html.Div(c.responsible_phone or c.community_phone or "", className="gm-tk-phone")]
        problems = " / ".join(x for x in (c.supply_problems, c.staffing_problems) if x)
        name_cell: list = [html.Button(c.community_name, id={"type": ids.REPORT_BOARD_PICK, "community": c.community_id},
                                       n_clicks=0, className="gm-link gm-rp-community")]
        if c.emergency_reports:
            name_cell.append(html.Span(tr("reports.emergency_tag", lang, n=c.emergency_reports), className="gm-rp-etag"))
        rows.append(html.Tr(
            [html.Td(status_badge(c.status, lang)),
             html.Td(name_cell),
             html.Td(c.subdistrict_name, className="gm-ae-muted"),
             html.Td([filed, html.Span(t("reports.late", lang), className="gm-rp-late") if c.late else None],
                     className="gm-rp-when"),
             html.Td(contact),
             *_figures(c.counts, lang),
             html.Td(problems, className="gm-rp-problems", title=problems)],
            className=f"gm-rp-row gm-rp-row-{c.status}",
            **{"data-community": str(c.community_id), "data-status": c.status},
        ))
    head = [t("reports.col.status", lang), t("reports.col.community", lang), t("reports.col.subdistrict", lang),
            t("reports.col.filed", lang), t("reports.col.contact", lang),
            *(t(f"reports.field.{k}", lang) for k in COUNT_FIELDS), t("reports.col.problems", lang)]
    return html.Table([html.Thead(html.Tr(_heads(head, 5))), html.Tbody(rows)],
                      id=ids.REPORT_BOARD, className="gm-tk-table gm-rp-board")


def rollup_table(rollup: Any, lang: str) -> html.Table:
    """Totals per sub-district, then the district: how many in, how many missing, the figures."""
    def row(name: str, totals: Any, css: str = "") -> html.Tr:
        in_ = totals.filed + totals.zero
        return html.Tr(
            [html.Td(name),
             html.Td(f"{num(in_)} / {num(totals.communities)}", className="gm-tk-num"),
             html.Td(num(totals.zero), className="gm-tk-num"),
             html.Td(num(totals.missing), className="gm-tk-num" + (" gm-ae-bad" if totals.missing else "")),
             html.Td(num(totals.pending), className="gm-tk-num"),
             html.Td(num(totals.emergency_reports), className="gm-tk-num" + (" gm-ae-bad" if totals.emergency_reports else "")),
             *[html.Td(num(getattr(totals, k)), className="gm-tk-num") for k in COUNT_FIELDS]],
            className=css,
        )

    by_district: dict[int, list] = defaultdict(list)
    for sd in rollup.subdistricts:
        by_district[sd.parent_id].append(sd)
    body = []
    for d in rollup.districts:
        body += [row(sd.name, sd.totals) for sd in by_district.get(d.id, [])]
        body.append(row(f"{d.name} · {t('reports.total', lang)}", d.totals, "gm-rp-total"))
    head = [t("reports.col.area", lang), t("reports.col.in", lang), t("reports.status.zero", lang),
            t("reports.status.missing", lang), t("reports.status.pending", lang), t("reports.emergency_count", lang),
            *(t(f"reports.field.{k}", lang) for k in COUNT_FIELDS)]
    return html.Table([html.Thead(html.Tr(_heads(head, 1, len(head)))), html.Tbody(body)],
                      id=ids.REPORT_ROLLUP, className="gm-tk-table gm-rp-rollup")


def history_table(reports: list, days: list, lang: str, timezone: str) -> list:
    """A community's days, newest first: the day's latest report (or missing) and its emergencies."""
    by_day: dict = defaultdict(list)
    for r in reports:
        by_day[r.report_date].append(r)
    rows = []
    for day in days:
        filings = by_day.get(day, [])
        daily = [r for r in filings if r.kind != report_rules.EMERGENCY]
        emergencies = len(filings) - len(daily)
        last = daily[-1] if daily else None
        status = (report_rules.ZERO_FILED if last and last.kind == report_rules.ZERO
                  else report_rules.FILED if last else report_rules.MISSING)
        rows.append(html.Tr(
            [html.Td(day.isoformat(), className="gm-rp-when"),
             html.Td(status_badge(status, lang)),
             html.Td(tr("reports.version_n", lang, n=last.version) if last and last.version > 1 else ""),
             html.Td(f"{last.filed_by} · {local(last.filed_at, timezone, '%H:%M')}" if last else ""),
             *_figures({k: getattr(last, k) for k in COUNT_FIELDS} if last else None, lang),
             html.Td(tr("reports.emergency_tag", lang, n=emergencies) if emergencies else "", className="gm-ae-bad")],
            className=f"gm-rp-row gm-rp-row-{status}",
        ))
    head = [t("reports.col.date", lang), t("reports.col.status", lang), "", t("reports.col.filed", lang),
            *(t(f"reports.field.{k}", lang) for k in COUNT_FIELDS), ""]
    return [html.Table([html.Thead(html.Tr(_heads(head, 4))), html.Tbody(rows)],
                       className="gm-tk-table gm-rp-history")]


def section(title_key: str, *children: Any, extra: str = "", tools: Any = None) -> html.Section:
    head = [html.H3(bi(title_key))]
    if tools is not None:
        head.append(tools)
    return html.Section([html.Div(head, className="gm-rp-section-head"), *children],
                        className=f"gm-rp-section {extra}".strip())
