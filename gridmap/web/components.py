"""HTML pieces of the command map built from the services' plain dicts: legend and side panel; and
:func:`call_service`, the one way a page's callback calls a service."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from dash import html
from sqlalchemy.orm import Session

from gridmap.db.session import DatabaseUnavailable, session_scope
from gridmap.domain.errors import GridmapError
from gridmap.web import ids
from gridmap.web.context import current_settings
from gridmap.web.i18n import t

T = TypeVar("T")

# --- calling a service from a callback ---------------------------------------------------------------


def call_service(fn: Callable[[Session], T]) -> tuple[T | None, GridmapError | DatabaseUnavailable | None]:
    """``fn(session)`` in one transaction on the serving app's database: ``(result, None)`` once
    committed, or ``(None, problem)`` when the database is unavailable or the service refused
    (a :class:`GridmapError`: bad input, access, a stale edit), nothing written. The callback turns
    the problem into its page's message; anything else is a bug and propagates."""
    try:
        with session_scope(current_settings().database_url) as session:
            return fn(session), None
    except (DatabaseUnavailable, GridmapError) as exc:
        return None, exc


# --- legend --------------------------------------------------------------------------------------


def _row(symbol: Any, text: str) -> html.Div:
    return html.Div([symbol, html.Span(text)], className="gm-legend-row")


# The outline of a community whose daily report is missing (gridmap.js, STYLES.community).
REPORT_MISSING_COLOR = "#d50000"


def _swatch(color: str, area: bool = False) -> html.Span:
    if area:
        return html.Span(
            className="gm-swatch gm-swatch-area", style={"borderColor": color, "background": f"{color}38"}
        )
    return html.Span(className="gm-swatch", style={"background": color})


def _icon(classes: str, shape: str, inner: Any = None) -> html.Span:
    # The same CSS classes as the map's L.divIcon markers (assets/gridmap.js), so they match.
    return html.Span(html.Div(inner, className=shape), className=f"gm-legend-icon {classes}")


def legend_body(risk_classes: list[dict], service_kinds: list[dict], lang: str) -> list:
    """Risk classes (from the database) with their colours, point symbols and service kinds."""
    tiers = [r for r in risk_classes if r["scheme"] == "tier"]
    areas = [r for r in risk_classes if r["scheme"] != "tier"]
    first = [html.H4(t("legend.tiers", lang)), *[_row(_swatch(r["color"]), r["name"]) for r in tiers]]
    if areas:
        first += [html.H4(t("legend.areas", lang)), *[_row(_swatch(r["color"], area=True), r["name"]) for r in areas]]
    first += [html.H4(t("legend.reports", lang)), _row(_swatch(REPORT_MISSING_COLOR, area=True), t("legend.report_missing", lang))]
    points = [
        html.H4(t("legend.points", lang)),
        _row(_icon("gm-cp", "gm-cp-shape"), t("legend.checkpoint", lang)),
        _row(_icon("gm-gate gm-gate-open", "gm-gate-shape"), t("legend.gate_open", lang)),
        _row(_icon("gm-gate gm-gate-closed", "gm-gate-shape"), t("legend.gate_closed", lang)),
        _row(_icon("gm-kh gm-kh-case", "gm-kh-shape"), t("legend.kh_case", lang)),
        _row(_icon("gm-kh gm-kh-vulnerable", "gm-kh-shape"), t("legend.kh_vulnerable", lang)),
        _row(_icon("gm-kh gm-kh-other", "gm-kh-shape"), t("legend.kh_other", lang)),
        _row(_icon("gm-cluster", "gm-cluster-shape", "12"), t("legend.cluster", lang)),
    ]
    services = [
        html.H4(t("legend.services", lang)),
        *[_row(_icon(f"gm-sp gm-sp-{k['code']}", "gm-sp-shape"), k["name"]) for k in service_kinds],
    ]
    return [
        html.Div(first, className="gm-legend-col"),
        html.Div(points, className="gm-legend-col"),
        html.Div(services, className="gm-legend-col"),
    ]


# --- side panel ----------------------------------------------------------------------------------


def _num(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, int | float):
        return f"{value:,}"
    return str(value)


def _when(value: str | None) -> str:
    return value[:16].replace("T", " ") if value else ""


def empty_panel(lang: str) -> html.Div:
    return html.Div(t("panel.empty", lang), className="gm-panel-empty")


def _class_rows(rows: list[dict], key: str, unit: str, lang: str) -> list:
    return [
        html.Div(
            [html.Span(className="gm-swatch", style={"background": r["color"]}), html.Span(r["name"]),
             html.Span(f"{_num(r[key])} {t(unit, lang)}".strip(), className="gm-class-count")],
            className="gm-class-row",
        )
        for r in rows
    ]


def overview_panel(d: dict, lang: str) -> html.Div:
    """What the panel shows before anything is clicked: the map's totals and risk picture."""
    tiers = [r for r in d["risk_classes"] if r["scheme"] == "tier"]
    areas = [r for r in d["risk_classes"] if r["scheme"] != "tier" and r["grids"]]
    children = [
        _head(t("panel.overview", lang), d.get("name") or "", None, None, lang),
        _stats([("panel.communities", d["communities"]), ("panel.grids", d["grids"]),
                ("panel.buildings", d["buildings"]), ("panel.households", d["households"]),
                ("panel.residents", d["residents"]), ("panel.key_persons_short", d["key_persons"])], lang),
        html.Div([html.H3(t("panel.by_tier", lang)), *_class_rows(tiers, "communities", "panel.count_communities", lang)],
                 className="gm-section"),
    ]
    if areas:
        children.append(
            html.Div([html.H3(t("panel.by_area", lang)), *_class_rows(areas, "grids", "panel.count_grids", lang)],
                     className="gm-section")
        )
    children += [
        _facts([("panel.checkpoints", d["checkpoints"]), ("panel.service_points", d["service_points"])], lang),
        html.Div(t("panel.empty", lang), className="gm-panel-hint"),
    ]
    return html.Div(children, className="gm-card gm-card-overview")


def message_panel(text: str) -> html.Div:
    return html.Div(text, className="gm-panel-empty")


def link(text: str, layer: str, fid: int | None) -> Any:
    """A name in the panel that opens its feature (the community of a grid, ...) when clicked."""
    if fid is None:
        return text
    return html.Button(text, id={"type": ids.OPEN_FEATURE, "layer": layer, "id": fid}, className="gm-link", n_clicks=0)


def _sub(*parts: Any) -> list:
    """Parts joined by ' · ', skipping empty ones."""
    out: list = []
    for part in parts:
        if part is None or part == "":
            continue
        if out:
            out.append(" · ")
        out.append(part)
    return out


def _head(kind: str, title: str, sub: Any, risk: dict | None, lang: str) -> html.Div:
    children = [html.Div(kind, className="gm-card-kind"), html.Div(title, className="gm-card-title")]
    if sub:
        children.append(html.Div(sub, className="gm-card-sub"))
    if risk:
        badge = [html.Span(className="gm-badge", style={"background": risk["color"]}, children=risk["name"])]
        if risk.get("inherited"):
            badge.append(html.Span(t("panel.risk_inherited", lang), className="gm-badge-note"))
        children.append(html.Div(badge))
    return html.Div(children, className="gm-card-head")


def _stats(pairs: list[tuple[str, Any]], lang: str) -> html.Div:
    return html.Div(
        html.Div(
            [
                html.Div(
                    [html.Div(_num(v), className="gm-stat-value"), html.Div(t(k, lang), className="gm-stat-label")],
                    className="gm-stat",
                )
                for k, v in pairs
            ],
            className="gm-stats",
        ),
        className="gm-section",
    )


def _facts(pairs: list[tuple[str, Any]], lang: str, title: str | None = None) -> html.Div:
    items: list = []
    for key, value in pairs:
        if value is None or value == "":
            continue
        shown = _num(value) if isinstance(value, int | float) else value
        items += [html.Dt(t(key, lang)), html.Dd(shown)]
    children = [html.H3(title)] if title else []
    return html.Div([*children, html.Dl(items, className="gm-facts")], className="gm-section")


def _key_persons(d: dict, lang: str) -> html.Div:
    rows = d.get("key_persons") or []
    top = max((r["count"] for r in rows), default=0) or 1
    body: list = []
    for r in rows:
        body.append(
            html.Div(
                [
                    html.Div(
                        [
                            html.Div(
                                className="gm-bar-fill" + (" gm-vulnerable" if r["vulnerable"] else ""),
                                style={"width": f"{100 * r['count'] / top:.0f}%"},
                            ),
                            html.Span(r["name"], className="gm-bar-text", title=r["name"]),
                        ],
                        className="gm-bar-label",
                    ),
                    html.Div(_num(r["count"]), className="gm-bar-count"),
                ],
                className="gm-bar-row",
            )
        )
    if not body:
        body = [html.Div(t("panel.no_key_persons", lang), className="gm-card-sub")]
    title = f"{t('panel.key_persons', lang)} · {t('panel.key_persons_total', lang)} {_num(d.get('key_persons_total'))}"
    return html.Div([html.H3(title), html.Div(body, className="gm-bars")], className="gm-section")


def _measures(risk: dict | None, lang: str) -> html.Div | None:
    if not risk or not risk.get("measures"):
        return None
    return html.Div(
        [html.H3(f"{t('panel.measures', lang)} · {risk['name']}"), html.P(risk["measures"], className="gm-measures")],
        className="gm-section",
    )


def _history(rows: list[dict], lang: str) -> html.Div:
    items = []
    for h in rows:
        until = _when(h["valid_to"]) or t("panel.now", lang)
        what = h["name"] if not h.get("grid") else f"{h['grid']} · {h['name']}"
        items.append(
            html.Li(
                [
                    html.Div(f"{_when(h['valid_from'])} – {until}", className="gm-history-when"),
                    html.Div(what, className="gm-history-what"),
                    html.Div(h.get("reason") or "", className="gm-card-sub"),
                ],
                style={"--gm-dot": h["color"]},
            )
        )
    return html.Div([html.H3(t("panel.history", lang)), html.Ul(items, className="gm-history")], className="gm-section")


def _privacy(lang: str) -> html.Div:
    return html.Div(t("panel.privacy", lang), className="gm-privacy")


def _grid(d: dict, lang: str) -> list:
    leaders = d.get("leaders") or []
    leader_rows = [
        html.Div(
            [html.Span(p["name"], className="gm-person-name"), html.Span(p.get("phone") or "", className="gm-person-phone")],
            className="gm-person",
        )
        for p in leaders
    ] or [html.Div(t("panel.no_leader", lang), className="gm-card-sub")]
    staff = [(s["name"], s["count"]) for s in d.get("staff") or []]
    return [
        _head(t("kind.grid", lang), d["name"], _sub(link(d["community"], "community", d["community_id"]), d["code"]),
              d.get("risk"), lang),
        _stats([("panel.households", d["households"]), ("panel.residents", d["residents"]),
                ("panel.buildings", d["buildings"])], lang),
        html.Div([html.H3(t("panel.leader", lang)), *leader_rows], className="gm-section leader"),
        html.Div(
            [html.H3(t("panel.staff", lang)),
             html.Dl([x for name, n in staff for x in (html.Dt(name), html.Dd(_num(n)))], className="gm-facts")],
            className="gm-section",
        ) if staff else None,
        _key_persons(d, lang),
        _measures(d.get("risk"), lang),
        _privacy(lang),
    ]


def _community(d: dict, lang: str) -> list:
    return [
        _head(t("kind.community", lang), d["name"],
              _sub(link(d["subdistrict"], "subdistrict", d.get("subdistrict_id")), d["code"]), d.get("risk"), lang),
        _stats([("panel.grids", d["grids"]), ("panel.households", d["households"]),
                ("panel.residents", d["residents"])], lang),
        _facts([("panel.compounds", d["compounds"]), ("panel.checkpoints", d["checkpoints"]),
                ("panel.phone", d.get("phone"))], lang),
        _measures(d.get("risk"), lang),
        _key_persons(d, lang),
        _history(d.get("history") or [], lang),
        _privacy(lang),
    ]


def _building(d: dict, lang: str) -> list:
    return [
        _head(t("kind.building", lang), d["name"], d["code"], d.get("risk"), lang),
        _stats([("panel.households", d["households"]), ("panel.residents", d["residents"]),
                ("panel.floors", d["floors"])], lang),
        _facts([("panel.grid", link(d["grid"], "grid", d["grid_id"])),
                ("panel.compound", link(d["compound"], "compound", d["compound_id"]) if d.get("compound") else None)],
               lang),
        _key_persons(d, lang),
        _privacy(lang),
    ]


def _checkpoint(d: dict, lang: str) -> list:
    status = t("panel.active" if d["active"] else "panel.inactive", lang)
    gate_state = t("panel.gate_open" if d["gate_open"] else "panel.gate_closed", lang)
    return [
        _head(t("kind.checkpoint", lang), d["name"],
              _sub(d["community"], link(d["compound"], "compound", d["compound_id"])), None, lang),
        _stats([("panel.shifts", d["shifts_per_day"]), ("panel.staff_per_shift", d["staff_per_shift"]),
                ("panel.staff_per_day", d["staff_per_day"])], lang),
        _facts([("panel.status", status),
                ("panel.gate", _sub(link(d["gate"], "gate", d["gate_id"]), t("gate." + d["gate_kind"], lang))),
                ("panel.gate_state", gate_state), ("panel.hours_per_shift", d["hours_per_shift"])], lang),
    ]


def _service_point(d: dict, lang: str) -> list:
    return [
        _head(d["kind_name"], d["name"], d.get("community"), None, lang),
        _facts([("panel.kind", d["kind_name"]), ("panel.capacity", d.get("capacity")),
                ("panel.hours", d.get("hours")), ("panel.community", d.get("community"))], lang),
    ]


def _key_household(d: dict, lang: str) -> list:
    return [
        _head(t("kind.key_household", lang), d["building"], [link(d["grid"], "grid", d["grid_id"])], None, lang),
        _facts([("panel.building", link(d["building"], "building", d["building_id"])),
                ("panel.residents", d["residents"])], lang),
        _key_persons(d, lang),
        _privacy(lang),
    ]


def _compound(d: dict, lang: str) -> list:
    return [
        _head(t("kind.compound", lang), d["name"], _sub(link(d["community"], "community", d["community_id"]), d["code"]),
              None, lang),
        _stats([("panel.buildings", d["buildings"]), ("panel.households", d["households"]),
                ("panel.residents", d["residents"])], lang),
        _facts([("panel.gates", d["gates"]), ("panel.gates_open", d["gates_open"]),
                ("panel.checkpoints", d["checkpoints"])], lang),
    ]


def _gate(d: dict, lang: str) -> list:
    facts = [("panel.gate_kind", t("gate." + d["kind"], lang)),
             ("panel.status", t("panel.gate_open" if d["is_open"] else "panel.gate_closed", lang))]
    for k in d.get("checkpoints") or []:
        facts.append(("layer.checkpoint", f"{k['name']} · {k['shifts_per_day']}×{k['staff_per_shift']}"))
    return [_head(t("kind.gate", lang), d["name"], [link(d["compound"], "compound", d["compound_id"])], None, lang),
            _facts(facts, lang)]


def _controlled_area(d: dict, lang: str) -> list:
    risk = {"name": d["risk_name"], "color": d["color"], "measures": d.get("measures")}
    return [
        _head(t("kind.controlled_area", lang), d.get("name") or str(d["area_key"]), None, risk, lang),
        _facts([("panel.version", d["version"]), ("panel.created_at", _when(d.get("created_at"))),
                ("panel.planned_end", _when(d.get("planned_end"))), ("panel.author", d.get("author")),
                ("panel.reason", d.get("reason"))], lang),
        _measures(risk, lang),
    ]


def _area_summary(kind_key: str) -> Callable[[dict, str], list]:
    def render(d: dict, lang: str) -> list:
        pairs = [(f"panel.{k}", d[k]) for k in ("subdistricts", "communities", "grids") if k in d]
        return [
            _head(t(kind_key, lang), d["name"], d.get("code"), None, lang),
            _stats([*pairs[:1], ("panel.households", d["households"]), ("panel.residents", d["residents"])], lang),
            _facts(pairs[1:], lang),
        ]

    return render


_RENDERERS: dict[str, Callable[[dict, str], list]] = {
    "grid": _grid,
    "community": _community,
    "building": _building,
    "checkpoint": _checkpoint,
    "service_point": _service_point,
    "key_household": _key_household,
    "compound": _compound,
    "gate": _gate,
    "controlled_area": _controlled_area,
    "district": _area_summary("kind.district"),
    "subdistrict": _area_summary("kind.subdistrict"),
}


def details_panel(details: dict, lang: str) -> html.Div:
    """The side panel for one feature, from ``services.layers.feature_details``."""
    render = _RENDERERS.get(details["layer"])
    if render is None:
        return message_panel(str(details.get("name", "")))
    children = [c for c in render(details, lang) if c is not None]
    return html.Div(children, className=f"gm-card gm-card-{details['layer']}", **{"data-layer": details["layer"]})
