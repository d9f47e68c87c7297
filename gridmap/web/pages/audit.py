"""The audit trail (path "/audit"), for auditors: every write and every log-in, reveal and export,
filtered by who, what, which table and row, and when; newest first, 100 to a page.

Personal values in the stored rows are shown masked (services.audit). Labels carry both languages
and the root's ``lang-xx`` class shows one, so the table need not be rebuilt on a language switch.
Component ids are local to this page (prefix ``audit-``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import dash
from dash import Input, Output, State, ctx, dcc, html
from dash.exceptions import PreventUpdate

from gridmap.db.session import DatabaseUnavailable, session_scope
from gridmap.domain import access as rules
from gridmap.domain.errors import GridmapError
from gridmap.services import audit
from gridmap.web.auth import current_principal, role_name
from gridmap.web.context import current_settings
from gridmap.web.i18n import t

dash.register_page(
    __name__,
    path="/audit",
    name="Audit trail",
    title="操作审计 · Audit trail",
    nav_key="nav.audit",
    order=90,
    roles=tuple(r for r in rules.ROLES if rules.may(r, rules.VIEW_AUDIT)),
)

PAGE_SIZE = 100

ACTOR = "audit-actor"
ACTION = "audit-action"
TABLE = "audit-table"
ROW = "audit-row"
SINCE = "audit-since"
UNTIL = "audit-until"
SEARCH = "audit-search"
PREV = "audit-prev"
NEXT = "audit-next"
OFFSET = "audit-offset"
RESULTS = "audit-results"
COUNT = "audit-count"


def _bi(key: str) -> list[html.Span]:
    """A label in both languages; CSS (.lang-zh .gm-en {display: none}) shows the page's."""
    return [html.Span(t(key, "zh"), className="gm-zh"), html.Span(t(key, "en"), className="gm-en")]


_INPUT = {"height": "34px", "boxSizing": "border-box", "padding": "4px 8px", "border": "1px solid #b8c3cf",
          "borderRadius": "4px", "fontSize": "14px"}
_CELL = {"padding": "5px 10px", "borderBottom": "1px solid #dde3ea", "textAlign": "left", "verticalAlign": "top"}


def _field(label_key: str, control) -> html.Label:
    return html.Label([html.Div(_bi(label_key), className="gm-audit-label"), control],
                      style={"display": "flex", "flexDirection": "column", "fontSize": "13px", "gap": "3px"})


def layout(**_query) -> html.Div:
    principal = current_principal()
    if principal is None or not principal.may(rules.VIEW_AUDIT):
        return html.Div(_bi("auth.forbidden"), id="audit-forbidden", className="gm-error")
    try:
        with session_scope(current_settings().database_url) as session:
            tables = audit.tables_in_log(session)
    except DatabaseUnavailable as exc:
        return html.Div([html.B(_bi("auth.db_down")), html.Div(str(exc))], className="gm-error")
    filters = html.Div(
        style={"display": "flex", "flexWrap": "wrap", "gap": "12px", "alignItems": "flex-end", "margin": "12px 0"},
        children=[
            _field("audit.actor", dcc.Input(id=ACTOR, type="text", debounce=True, maxLength=64,
                                            style={**_INPUT, "width": "160px"})),
            _field("audit.action", dcc.Dropdown(id=ACTION, options=list(audit.ACTIONS), style={"width": "150px"})),
            _field("audit.table", dcc.Dropdown(id=TABLE, options=tables, style={"width": "180px"})),
            _field("audit.row", dcc.Input(id=ROW, type="number", min=1, step=1, style={**_INPUT, "width": "110px"})),
            _field("audit.since", dcc.Input(id=SINCE, type="date", style={**_INPUT, "width": "150px"})),
            _field("audit.until", dcc.Input(id=UNTIL, type="date", style={**_INPUT, "width": "150px"})),
            html.Button(_bi("audit.search"), id=SEARCH, n_clicks=0, style={**_INPUT, "cursor": "pointer"}),
        ],
    )
    return html.Div(
        className="gm-audit-page",
        style={"padding": "8px 20px", "overflow": "auto", "height": "100%"},
        children=[
            html.H2(_bi("audit.title")),
            html.Div(_bi("audit.masked"), style={"color": "#5b6b7c", "fontSize": "13px"}),
            filters,
            html.Div(id=COUNT, style={"fontSize": "13px", "margin": "6px 0"}),
            html.Div(id=RESULTS),
            html.Div(
                [html.Button(_bi("audit.prev"), id=PREV, n_clicks=0), html.Button(_bi("audit.next"), id=NEXT, n_clicks=0)],
                style={"display": "flex", "gap": "8px", "margin": "10px 0"},
            ),
            dcc.Store(id=OFFSET, data=0),
        ],
    )


def _day(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.combine(date.fromisoformat(value), datetime.min.time(), tzinfo=UTC)


def _table(rows: list[dict]) -> html.Table:
    head = html.Tr([html.Th(_bi(k), style={**_CELL, "background": "#e8edf2", "whiteSpace": "nowrap"})
                    for k in ("audit.at", "audit.actor", "audit.role", "audit.action", "audit.table", "audit.row",
                              "audit.changes")])
    body = [
        html.Tr([
            html.Td(f"{r['at']:%Y-%m-%d %H:%M:%S}", style={**_CELL, "whiteSpace": "nowrap"}),
            html.Td(r["actor"], style=_CELL),  # text, never markup: Dash escapes it
            html.Td([html.Span(role_name(r["actor_role"], lang), className=f"gm-{lang}") for lang in ("zh", "en")]
                    if r["actor_role"] else "-", style=_CELL),
            html.Td(r["action"], style=_CELL),
            html.Td(r["table_name"], style=_CELL),
            html.Td("" if r["row_id"] is None else str(r["row_id"]), style=_CELL),
            html.Td(r["summary"], style={**_CELL, "maxWidth": "640px", "wordBreak": "break-all"}),
        ], className=f"gm-audit-row gm-audit-{r['action'].lower()}",
           style={"background": "#fff" if i % 2 else "#f7f9fb"})
        for i, r in enumerate(rows)
    ]
    return html.Table([html.Thead(head), html.Tbody(body)], className="gm-audit-table",
                      style={"borderCollapse": "collapse", "fontSize": "13px", "width": "100%"})


@dash.callback(
    Output(RESULTS, "children"),
    Output(COUNT, "children"),
    Output(OFFSET, "data"),
    Input(SEARCH, "n_clicks"),
    Input(PREV, "n_clicks"),
    Input(NEXT, "n_clicks"),
    Input(ACTOR, "value"),
    State(ACTION, "value"),
    State(TABLE, "value"),
    State(ROW, "value"),
    State(SINCE, "value"),
    State(UNTIL, "value"),
    State(OFFSET, "data"),
)
def search(_search, _prev, _next, actor, action, table, row, since, until, offset):
    principal = current_principal()
    if principal is None:
        raise PreventUpdate
    offset = int(offset or 0)
    if ctx.triggered_id == NEXT:
        offset += PAGE_SIZE
    elif ctx.triggered_id == PREV:
        offset = max(0, offset - PAGE_SIZE)
    else:
        offset = 0
    try:
        filters = audit.AuditFilter(
            actor=actor or "", action=action or "", table_name=table or "", row_id=int(row) if row else None,
            since=_day(since), until=_day(until) + timedelta(days=1) if until else None,
        )
        with session_scope(current_settings().database_url) as session:
            page = audit.search(session, principal, filters, limit=PAGE_SIZE, offset=offset)
    except (GridmapError, ValueError) as exc:
        return html.Div(str(exc), className="gm-error"), "", offset
    except DatabaseUnavailable as exc:
        return html.Div(str(exc), className="gm-error"), "", offset
    if offset and offset >= page.total:
        offset = max(0, (page.total - 1) // PAGE_SIZE * PAGE_SIZE)
    count = [f"{page.total:,} ", *_bi("audit.count"),
             f" · {offset + 1 if page.rows else 0}–{offset + len(page.rows)}"]
    if not page.rows:
        return html.Div(_bi("audit.none")), count, offset
    return _table(page.rows), count, offset
