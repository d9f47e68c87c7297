"""HTML and charts of the coverage views (issue 5), built from the services' plain results: the
command map's metric box (legend, worst-first ranking, staffing gaps), the wall's KPI tiles and
trend charts, and the pieces of the grid sheet."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import dash
import plotly.graph_objects as go
from dash import dcc, html

from gridmap.domain.reference import STAFF_ROLES
from gridmap.web import ids
from gridmap.web.i18n import t


def _num(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, int | float):
        return f"{value:,}"
    return str(value)


def _label(d: dict, lang: str, key: str = "label") -> str:
    return d.get(f"{key}_{lang}") or d.get(f"{key}_zh") or ""


def grid_sheet_href(grid_id: int) -> str:
    return dash.get_relative_path(f"/grid/{grid_id}")


# --- command map: metric box ------------------------------------------------------------------------


def metric_options(catalogue: list[dict], lang: str) -> list[dict]:
    return [{"label": t("cov.metric_off", lang), "value": ""}] + [
        {"label": _label(m, lang, "name"), "value": m["key"]} for m in catalogue
    ]


def metric_legend(metric: dict | None, lang: str) -> list:
    """The classes of the metric shown, worst first, with their thresholds."""
    if not metric:
        return [html.Div(t("cov.pick_metric", lang), className="gm-cov-hint")]
    rows = [
        html.Div([html.Span(className="gm-swatch", style={"background": c["color"]}), html.Span(_label(c, lang))],
                 className="gm-legend-row")
        for c in metric["classes"]
    ]
    note = [html.Div(t("cov.measure_note", lang), className="gm-cov-note")] if metric["key"] == "testing_coverage" else []
    return [html.Div(rows, className="gm-cov-legend"), *note]


def choropleth_values(metric: dict, rows: list[dict]) -> dict:
    """What the command map's choropleth styles the grid layer's own features with (issue 8), for
    its hideout: ``values`` {grid id: [class, value as printed, position worst first]} and
    ``colors`` {class: colour}; assets/gridmap.js ``gridmap.coverage.choroplethStyle`` reads them.

    Values, not geometry: the grids' outlines are already in the browser (the grid layer's geobuf,
    generalised for the zoom band), so a city of 10,000 grids costs ~250 KB of values per metric
    or change instead of ~5.6 MB of GeoJSON, and the metric is computed once for the ranking and
    the colours (the choropleth used to compute it a second time in its own request).
    """
    return {
        "values": {str(r["grid_id"]): [r["class"], r["text"], n + 1] for n, r in enumerate(rows)},
        "colors": {c["code"]: c["color"] for c in metric["classes"]},
    }


def metric_box(catalogue: list[dict], lang: str) -> html.Details:
    """The box over the command map: a metric to colour the grids by, its legend, and the grids worst
    first or the staffing gaps."""
    return html.Details(
        [
            html.Summary(t("cov.box", lang), id=f"{ids.MAP_COVERAGE_BOX}-summary"),
            html.Div(
                [
                    dcc.Dropdown(id=ids.MAP_METRIC, options=metric_options(catalogue, lang), value="",
                                 clearable=False, searchable=False, className="gm-cov-select"),
                    html.Div(id=f"{ids.MAP_COVERAGE_BOX}-legend"),
                    dcc.RadioItems(id=ids.MAP_COVERAGE_TAB, options=coverage_tabs(lang), value="ranking",
                                   className="gm-cov-tabs", inline=True),
                    html.Div(id=ids.MAP_COVERAGE_BODY, className="gm-cov-body"),
                ],
                className="gm-cov-inner",
            ),
        ],
        open=True,
        id=ids.MAP_COVERAGE_BOX,
        className="gm-cov",
    )


def coverage_tabs(lang: str) -> list[dict]:
    return [{"label": t("cov.tab.ranking", lang), "value": "ranking"},
            {"label": t("cov.tab.gaps", lang), "value": "gaps"}]


def ranking_table(rows: list[dict], lang: str) -> html.Div:
    """Every grid, worst first; a click on a row opens the grid in the side panel."""
    body = [
        html.Tr(
            [
                html.Td(str(n), className="gm-cov-pos"),
                html.Td([html.Div(r["name"], className="gm-cov-name"), html.Div(r["code"], className="gm-cov-code")]),
                html.Td(r["text"], className="gm-cov-value"),
                html.Td([html.Span(className="gm-swatch", style={"background": r["color"]}),
                         html.Span(_label(r, lang), className="gm-cov-class")]),
                html.Td(html.A("↗", href=grid_sheet_href(r["grid_id"]), title=t("cov.open_sheet", lang),
                               className="gm-cov-sheet")),
            ],
            id={"type": ids.MAP_RANK_ROW, "id": r["grid_id"]},
            n_clicks=0,
            className=f"gm-cov-row gm-cov-rank-{r['rank']}",
            **{"data-grid": str(r["grid_id"]), "data-class": r["class"]},
        )
        for n, r in enumerate(rows, start=1)
    ]
    head = html.Thead(html.Tr([html.Th("#"), html.Th(t("cov.col.grid", lang)), html.Th(t("cov.col.value", lang)),
                               html.Th(t("cov.col.class", lang)), html.Th("")]))
    return html.Div(
        [html.Div(t("cov.worst_first", lang), className="gm-cov-hint"),
         html.Table([head, html.Tbody(body)], className="gm-cov-table")],
    )


def gaps_view(gaps: dict, lang: str) -> html.Div:
    """Grids below the staffing norms and the volunteer moves proposed from their neighbours."""
    msg = "message_zh" if lang == "zh" else "message_en"
    if not gaps["gaps"]:
        return html.Div(t("cov.no_gaps", lang), className="gm-cov-hint")
    items = []
    for g in gaps["gaps"]:
        still = (g.get("numbers") or {}).get("still_short_after_moves")
        extra = [html.Span(t("cov.still_short", lang).format(n=still), className="gm-cov-still")] if still else []
        items.append(html.Li(
            [html.Button(g["name"], id={"type": ids.MAP_RANK_ROW, "id": g["grid_id"]}, n_clicks=0, className="gm-link"),
             html.Div(g[msg], className="gm-cov-gap-msg"), *extra],
            className=f"gm-cov-gap gm-cov-gap-{g['reason']}",
        ))
    moves = [html.Li(m[msg], className="gm-cov-move") for m in gaps["moves"]] or [
        html.Li(t("cov.no_moves", lang), className="gm-cov-hint")]
    return html.Div([
        html.H4(f"{t('cov.gaps', lang)} · {len({g['grid_id'] for g in gaps['gaps']})}"),
        html.Ul(items, className="gm-cov-gaps"),
        html.H4(t("cov.moves", lang)),
        html.Ul(moves, className="gm-cov-moves"),
    ])


# --- the wall -----------------------------------------------------------------------------------------

WALL_CLASSES = ("sealed", "controlled", "precaution", "high", "medium")


def _kpi(key: str, value: int, label: str, sub: str, alarm: bool) -> html.Div:
    return html.Div(
        [html.Div(label, className="gm-kpi-label"),
         html.Div(_num(value), id=ids.wall_kpi(key), className="gm-kpi-value", **{"data-value": str(value)}),
         html.Div(sub, className="gm-kpi-sub")],
        className="gm-kpi" + (" gm-kpi-alarm" if alarm else " gm-kpi-calm"),
    )


def wall_classes(figures: dict, lang: str) -> list:
    by_code = {r["code"]: r for r in figures["households_by_class"]}
    tiles = []
    for code in WALL_CLASSES:
        r = by_code.get(code)
        if r is None:
            continue
        tiles.append(html.Div(
            [html.Div([html.Span(className="gm-kpi-dot", style={"background": r["color"]}), _label(r, lang, "name")],
                      className="gm-kpi-label"),
             html.Div(_num(r["households"]), id=ids.wall_kpi(f"class_{code}"), className="gm-kpi-value",
                      **{"data-value": str(r["households"])}),
             html.Div(t("wall.buildings", lang).format(n=_num(r["buildings"])), className="gm-kpi-sub")],
            className="gm-kpi gm-kpi-class", style={"borderTopColor": r["color"]},
        ))
    return tiles


def wall_kpis(figures: dict, lang: str) -> list:
    deadline_at = datetime.fromisoformat(figures["report_deadline"])
    deadline = deadline_at.strftime("%H:%M")
    past = datetime.fromisoformat(figures["now"]) >= deadline_at
    reports_key = "wall.missing" if past else "wall.pending"
    reports_value = figures["reports_missing"] if past else figures["reports_pending"]
    reports_sub = t("wall.missing_sub" if past else "wall.pending_sub", lang).format(
        t=deadline, n=figures["reports_in"], total=figures["communities"])
    return [
        _kpi("overdue_contacts", figures["overdue_contacts"], t("wall.overdue", lang),
             t("wall.overdue_sub", lang).format(n=_num(figures["vulnerable"]), k=figures["required_contacts"]),
             figures["overdue_contacts"] > 0),
        _kpi("uncovered_slots", figures["uncovered_slots"], t("wall.uncovered", lang),
             t("wall.uncovered_sub", lang).format(h=figures["horizon_hours"], n=_num(figures["checkpoint_slots"])),
             figures["uncovered_slots"] > 0),
        _kpi("grids_with_gaps", figures["grids_with_gaps"], t("wall.gaps", lang),
             t("wall.gaps_sub", lang).format(n=figures["grids"], m=figures["proposed_moves"]),
             figures["grids_with_gaps"] > 0),
        html.Div(_kpi("reports_missing", reports_value, t(reports_key, lang), reports_sub, past and reports_value > 0),
                 **{"data-missing": str(figures["reports_missing"])}, className="gm-kpi-wrap"),
    ]


_INK = "#dfe7ee"
_GRIDLINE = "rgba(223, 231, 238, 0.12)"


def _chart_layout(title: str) -> dict:
    return {
        "title": {"text": title, "x": 0, "xanchor": "left", "font": {"size": 22, "color": _INK}},
        "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"color": _INK, "size": 16,
                 "family": '"Noto Sans CJK SC", "WenQuanYi Micro Hei", "Microsoft YaHei", sans-serif'},
        "margin": {"l": 56, "r": 16, "t": 52, "b": 40},
        "xaxis": {"showgrid": False, "tickfont": {"size": 15}, "fixedrange": True, "type": "category"},
        "yaxis": {"gridcolor": _GRIDLINE, "zeroline": False, "tickfont": {"size": 15}, "fixedrange": True,
                  "rangemode": "tozero", "tickformat": ",d"},
        "showlegend": False, "bargap": 0.25,
    }


def _days(series: list[dict]) -> list[str]:
    return [d["day"][5:] for d in series]


def contacts_chart(figures: dict, lang: str, days: int) -> go.Figure:
    series = figures["contacts_per_day"]
    fig = go.Figure(go.Bar(
        x=_days(series), y=[d["count"] for d in series], marker={"color": "#4fc3f7"},
        text=[_num(d["count"]) for d in series], textposition="outside", cliponaxis=False,
        textfont={"size": 14, "color": _INK}, hovertemplate="%{x}: %{y}<extra></extra>",
    ))
    layout = _chart_layout(t("wall.chart_contacts", lang).format(d=days))
    top = max((d["count"] for d in series), default=0)
    layout["yaxis"]["range"] = [0, max(top * 1.15, 5)]  # whole numbers even on a quiet fortnight
    fig.update_layout(**layout)
    return fig


def reports_chart(figures: dict, lang: str, days: int) -> go.Figure:
    series = figures["reports_per_day"]
    x = _days(series)
    fig = go.Figure([
        go.Bar(x=x, y=[d["count"] for d in series], marker={"color": "#81c784"}, name=t("wall.reports", lang),
               text=[_num(d["count"]) for d in series], textposition="outside", cliponaxis=False,
               textfont={"size": 14, "color": _INK}, hovertemplate="%{x}: %{y}<extra></extra>"),
        go.Scatter(x=x, y=[figures["communities"]] * len(x), mode="lines", name=t("wall.communities", lang),
                   line={"color": "#ffb74d", "dash": "dash", "width": 2}, hoverinfo="skip"),
    ])
    layout = _chart_layout(t("wall.chart_reports", lang).format(d=days))
    layout["yaxis"]["range"] = [0, max(figures["communities"], 4) * 1.15]
    fig.update_layout(**layout)
    return fig


def wall_legend(risk_classes: list[dict], lang: str = "zh") -> list:
    return [
        *[html.Span([html.Span(className="gm-kpi-dot", style={"background": r["color"]}), r["name"]],
                    className="gm-wall-legend-item")
          for r in risk_classes],
        html.Span([html.Span(className="gm-kpi-dot gm-wall-legend-missing"), t("legend.report_missing", lang)],
                  className="gm-wall-legend-item"),
    ]


def wall_gap_list(gaps: dict, lang: str, limit: int = 6) -> list:
    msg = "message_zh" if lang == "zh" else "message_en"
    lines = [html.Li(g[msg], className="gm-wall-gap") for g in gaps["gaps"][:limit]]
    lines += [html.Li(m[msg], className="gm-wall-move") for m in gaps["moves"][:limit]]
    if not lines:
        lines = [html.Li(t("cov.no_gaps", lang), className="gm-wall-gap-none")]
    return [html.H3(t("wall.gap_list", lang)), html.Ul(lines)]


# --- the grid sheet -----------------------------------------------------------------------------------


def sheet_head(grid: dict, counts: dict, lang: str, risk: dict | None) -> html.Div:
    """Name, community, class and the grid's numbers; ``counts``: buildings, key_persons, vulnerable,
    on_time, due."""
    vulnerable, on_time = counts["vulnerable"], counts["on_time"]
    stats = [
        ("gp.households", _num(grid["households"])),
        ("gp.residents", _num(grid["residents"])),
        ("gp.buildings", _num(counts["buildings"])),
        ("gp.key_persons", _num(counts["key_persons"])),
        ("gp.on_time", "—" if not vulnerable else f"{on_time}/{vulnerable} · {on_time / vulnerable:.0%}"),
        ("gp.due_n", _num(counts["due"])),
    ]
    badge = [html.Span(risk["name"], className="gm-badge", style={"background": risk["color"]})] if risk else []
    return html.Div(
        [
            html.Div([
                html.Div([html.A(f"← {t('gp.back', lang)}", href=dash.get_relative_path("/"), className="gm-gp-back"),
                          html.Span(f"{grid['community']} · {grid['code']}", className="gm-gp-sub")]),
                html.H2([grid["name"], *badge], className="gm-gp-title"),
            ]),
            html.Div(
                [html.Div([html.Div(v, className="gm-gp-stat-value", id=f"{ids.GRID_HEAD}-{k.split('.')[1]}"),
                           html.Div(t(k, lang), className="gm-gp-stat-label")],
                          className="gm-gp-stat" + (" gm-gp-stat-alarm" if k == "gp.due_n" and counts["due"] else ""))
                 for k, v in stats],
                className="gm-gp-stats",
            ),
        ],
        className="gm-gp-head",
    )


def buildings_table(fc: dict, lang: str) -> html.Div:
    rows = [f["properties"] for f in fc["features"] if f["properties"]["kind"] == "building"]
    if not rows:
        return html.Div(t("gp.no_buildings", lang), className="gm-gp-empty")
    return html.Table(
        [html.Thead(html.Tr([html.Th(t(k, lang)) for k in
                             ("gp.col.building", "gp.col.floors", "gp.col.households", "gp.col.residents", "gp.col.key")])),
         html.Tbody([html.Tr([html.Td(b["name"]), html.Td(_num(b["floors"])), html.Td(_num(b["households"])),
                              html.Td(_num(b["residents"])), html.Td(_num(b["key_persons"]))]) for b in rows])],
        className="gm-gp-table",
    )


def _when(value: datetime | None, now: datetime) -> str:
    if value is None:
        return ""
    return value.strftime("%H:%M") if value.date() == now.date() else value.strftime("%m-%d %H:%M")


def _person_row(s, categories: dict[str, str], lang: str, can_log: bool, now: datetime, settings) -> html.Div:
    status = s.status
    chip = html.Span(t(f"gp.status.{status}", lang), className=f"gm-gp-chip gm-gp-chip-{status}")
    facts = [html.Span(f"{s.building} {s.room or ''}".strip(), className="gm-gp-where")]
    if s.vulnerable:
        facts.append(html.Span(t("gp.count", lang).format(n=s.contacts_in_window, k=s.required),
                               className="gm-gp-count"))
        last = _when(s.last_contact, now)
        facts.append(html.Span(t("gp.last", lang).format(t=last) if last else t("gp.never", lang),
                               className="gm-gp-last"))
    cats = [html.Span(categories.get(c, c), className="gm-gp-cat") for c in s.categories]
    phone = s.phone or ""
    phone_el = (html.A(phone, href=f"tel:{phone}", className="gm-gp-phone") if phone and not s.masked
                else html.Span(phone, className="gm-gp-phone gm-gp-masked"))
    action = (html.Button(t("gp.log", lang), id={"type": ids.GRID_PICK, "id": s.key_person_id}, n_clicks=0,
                          className="gm-gp-btn gm-gp-btn-small") if can_log and s.vulnerable else None)
    return html.Div(
        [
            html.Div([html.Div([html.Span(s.name or "", className="gm-gp-name"), phone_el, chip],
                               className="gm-gp-person-line"),
                      html.Div(facts + cats, className="gm-gp-person-facts")],
                     className="gm-gp-person-main"),
            action,
        ],
        id=ids.grid_person(s.key_person_id),
        className=f"gm-gp-person gm-gp-person-{status}",
        **{"data-status": status, "data-contacts": str(s.contacts_in_window)},
    )


def persons_section(statuses: list, categories: dict[str, str], lang: str, can_log: bool, now: datetime,
                    settings) -> list:
    due = [s for s in statuses if s.vulnerable]
    other = [s for s in statuses if not s.vulnerable]
    head = t("gp.persons_due", lang).format(d=settings.vulnerable_contact_window_days,
                                            k=settings.vulnerable_contacts_per_week)
    out: list = [html.H3(f"{head} · {len(due)}")]
    if any(s.masked for s in statuses):
        out.append(html.Div(t("gp.masked_note", lang), className="gm-gp-note"))
    out.append(html.Div([_person_row(s, categories, lang, can_log, now, settings) for s in due]
                        or [html.Div(t("gp.no_persons", lang), className="gm-gp-empty")], className="gm-gp-persons"))
    if other:
        out.append(html.Details(
            [html.Summary(t("gp.persons_other", lang).format(n=len(other))),
             html.Div([_person_row(s, categories, lang, False, now, settings) for s in other],
                      className="gm-gp-persons")],
            className="gm-gp-other",
        ))
    return out


def person_options(statuses: list, lang: str) -> list[dict]:
    return [
        {"label": f"{s.name} · {s.building} {s.room or ''} · {t(f'gp.status.{s.status}', lang)}",
         "value": s.key_person_id}
        for s in statuses if s.vulnerable
    ]


def choice_options(prefix: str, codes: tuple[str, ...], lang: str, disabled: bool = False) -> list[dict]:
    return [{"label": t(f"{prefix}.{c}", lang), "value": c, "disabled": disabled} for c in codes]


def assignments_section(staff: dict | None, works_as: bool, assignments: list[dict], lang: str) -> list:
    if staff is None:
        return [html.H3(t("gp.assignments", lang)), html.Div(t("gp.no_leader", lang), className="gm-gp-empty")]
    role = STAFF_ROLES.get(staff["role"], (staff["role"], staff["role"]))[0 if lang == "zh" else 1]
    out: list = [html.H3([t("gp.assignments", lang), " · ",
                          t("gp.assignments_of", lang).format(name=staff["name"], role=role)])]
    if not works_as:
        out.append(html.Div(t("gp.leader_view", lang), className="gm-gp-note"))
    if not assignments:
        out.append(html.Div(t("gp.no_assignments", lang), className="gm-gp-empty"))
        return out
    out.append(html.Ul([
        html.Li([html.Span(t(f"gp.level.{a['level']}", lang), className="gm-gp-level"),
                 html.Span(f"{a['name']} {a['room'] or ''}".strip()),
                 html.Span(f"{_num(a['households'])} {t('gp.col.households', lang) if lang == 'en' else '户'}",
                           className="gm-gp-count")])
        for a in assignments
    ], className="gm-gp-assignments"))
    return out


def items_section(items: list, staff: dict | None, works_as: bool, lang: str, now: datetime, tz) -> list:
    out: list = [html.H3(f"{t('gp.items', lang)} · {len(items)}")]
    if items and not works_as:
        out.append(html.Div(t("gp.leader_view", lang), className="gm-gp-note"))
    if not items:
        out.append(html.Div(t("gp.no_items", lang), className="gm-gp-empty"))
        return out
    rows = []
    for it in items:
        locked = it.effective_state == "locked"
        mine = locked and works_as and staff is not None and it.locked_by == staff["id"]
        state = (t("gp.item.mine", lang) if mine else
                 t("gp.item.taken_by", lang).format(name=it.locked_by_name or "") if locked else "")
        due = it.due_at.astimezone(tz)
        facts = [html.Span(t("gp.item.due", lang).format(t=_when(due, now.astimezone(tz))))]
        if it.overdue:
            facts.append(html.Span(t("gp.item.overdue", lang), className="gm-gp-chip gm-gp-chip-due"))
        if state:
            facts.append(html.Span(state, className="gm-gp-count"))
        buttons = []
        if works_as and not mine and not locked:
            buttons.append(html.Button(t("gp.item.take", lang), id={"type": ids.GRID_ITEM_TAKE, "id": it.id},
                                       n_clicks=0, className="gm-gp-btn gm-gp-btn-small"))
        if works_as and mine:
            buttons.append(html.Button(t("gp.item.done", lang), id={"type": ids.GRID_ITEM_DONE, "id": it.id},
                                       n_clicks=0, className="gm-gp-btn gm-gp-btn-small gm-gp-btn-go"))
        place = f"{it.building_name} {it.household_room or ''}".strip()
        rows.append(html.Div(
            [html.Div([html.Div(it.task_title, className="gm-gp-name"),
                       html.Div([html.Span(place, className="gm-gp-where"), *facts], className="gm-gp-person-facts")],
                      className="gm-gp-person-main"),
             html.Div(buttons, className="gm-gp-item-actions")],
            className="gm-gp-person gm-gp-item", id=f"{ids.GRID_ITEMS}-{it.id}", **{"data-state": it.effective_state},
        ))
    out.append(html.Div(rows, className="gm-gp-persons"))
    return out


def contact_form(person_opts: list[dict], can_log: bool, lang: str, methods: tuple[str, ...],
                 outcomes: tuple[str, ...]) -> list:
    disabled = not can_log
    return [
        html.H3(t("gp.form", lang)),
        html.Div(t("gp.form.readonly", lang), className="gm-gp-note") if disabled else None,
        html.Label(t("gp.form.person", lang), htmlFor=ids.GRID_FORM_PERSON, className="gm-gp-label"),
        dcc.Dropdown(id=ids.GRID_FORM_PERSON, options=person_opts, placeholder=t("gp.form.person_ph", lang),
                     disabled=disabled, searchable=False, clearable=False, className="gm-gp-select"),
        html.Div(t("gp.form.method", lang), className="gm-gp-label"),
        dcc.RadioItems(id=ids.GRID_FORM_METHOD, options=choice_options("gp.method", methods, lang, disabled),
                       value=methods[0], className="gm-gp-seg", inputClassName="gm-gp-seg-input",
                       labelClassName="gm-gp-seg-label", inline=True),
        html.Div(t("gp.form.outcome", lang), className="gm-gp-label"),
        dcc.RadioItems(id=ids.GRID_FORM_OUTCOME, options=choice_options("gp.outcome", outcomes, lang, disabled),
                       value=outcomes[0], className="gm-gp-seg", inputClassName="gm-gp-seg-input",
                       labelClassName="gm-gp-seg-label", inline=True),
        html.Label(t("gp.form.note", lang), htmlFor=ids.GRID_FORM_NOTE, className="gm-gp-label"),
        dcc.Textarea(id=ids.GRID_FORM_NOTE, placeholder=t("gp.form.note_ph", lang), className="gm-gp-note-input",
                     maxLength=2000, disabled=disabled),
        html.Button(t("gp.form.submit", lang), id=ids.GRID_FORM_SUBMIT, n_clicks=0, disabled=disabled,
                    className="gm-gp-btn gm-gp-btn-go gm-gp-submit"),
        html.Div(id=ids.GRID_MESSAGE, className="gm-gp-message", role="status"),
    ]
