"""Daily and zero reports (path "/reports"; 日报告、零报告, 003).

* A community worker (or grid leader) files the day's report for their community: new cases,
  people under observation, contacts and tasks done (prefilled from the task system:
  services.reports.suggest_counts), supply and staffing problems, free text, the responsible person
  and phone; or, in one click, the zero report ("今日无新增"); or an emergency report at any time.
  A second filing is an amendment, shown as the next version; refused filings (a future date,
  negative counts) say why and write nothing.
* Commanders and sub-district staff see the day's status board: every community filed / zero /
  missing / pending with whom to call, the missing ones first and in red (from the deadline,
  ``settings.report_deadline``, a missing report is itself the alarm), the roll-up by sub-district
  and district, a community's history, and the office summary sheet to download
  (``/api/reports/<day>.xlsx``, web/task_routes.py).

``/reports?date=YYYY-MM-DD`` opens a day. The page refreshes when the data version moves.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import dash
from dash import ALL, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from gridmap.db.session import DatabaseUnavailable, session_scope
from gridmap.domain import access as access_rules
from gridmap.domain.errors import GridmapError
from gridmap.domain.reports import COUNT_FIELDS, EMERGENCY, NORMAL, ReportInput, local_date, zone
from gridmap.services import reports
from gridmap.services.changes import data_version
from gridmap.web import ids
from gridmap.web import report_components as rc
from gridmap.web import task_components as tc
from gridmap.web.auth import current_principal
from gridmap.web.components import call_service
from gridmap.web.context import current_settings
from gridmap.web.i18n import LANGUAGES, normalise, t

# Everyone but volunteers: filing roles file, the others watch the board.
REPORT_ROLES = tuple(r for r in access_rules.ROLES if r != "volunteer")

dash.register_page(
    __name__,
    path="/reports",
    name="Reports",
    title="日报告 · 零报告 · Daily reports",
    nav_key="nav.reports",
    order=4,
    roles=REPORT_ROLES,
)

# The data version this page last saw; polled from /api/changes (task_components.data_poll).
VERSION = ids.data_version("reports")
tc.register_data_poll("reports")

TEXT_FIELDS = ("supply_problems", "staffing_problems", "free_text")
# How far back a community's history goes.
HISTORY_DAYS = 14


def _now() -> datetime:
    return datetime.now(UTC)


def _today() -> date:
    return local_date(_now(), zone(current_settings().timezone))


def _day(value: str | None) -> date:
    try:
        return date.fromisoformat(value) if value else _today()
    except ValueError:
        return _today()


def _author() -> str:
    principal = current_principal()
    return (principal.display_name or principal.username) if principal else ""


def _may_file() -> bool:
    principal = current_principal()
    return principal is not None and principal.may(access_rules.FILE_REPORT) and not principal.read_only


def _deadline() -> str:
    return current_settings().report_deadline.strftime("%H:%M")


# --- layout --------------------------------------------------------------------------------------


def _problem(lang: str, exc: Exception, title_key: str) -> html.Div:
    """What call_service's problem says: the database is down, or why the service refused."""
    if isinstance(exc, DatabaseUnavailable):
        return tc.problem(t("tasks.db", lang), str(exc))
    return tc.problem(t(title_key, lang), exc.message)


def _number(name: str) -> html.Div:
    return html.Div([html.Label(tc.bi(f"reports.field.{name}"), className="gm-ae-label", htmlFor=ids.report_field(name)),
                     dcc.Input(id=ids.report_field(name), type="number", value=0, step=1, inputMode="numeric",
                               className="gm-ae-input gm-rp-number")], className="gm-rp-num-field")


def _text(name: str, rows: int = 2) -> html.Div:
    return html.Div([html.Label(tc.bi(f"reports.field.{name}"), className="gm-ae-label", htmlFor=ids.report_field(name)),
                     dcc.Textarea(id=ids.report_field(name), value="", maxLength=2000, rows=rows,
                                  className="gm-ae-textarea")], className="gm-ae-field")


def _file_section(communities: list[dict], lang: str) -> html.Section:
    options = [{"label": f"{c['name']} · {c['subdistrict_name']}", "value": c["id"]} for c in communities]
    form = html.Div(
        [
            html.Div([_number(k) for k in COUNT_FIELDS], className="gm-rp-numbers"),
            html.Div(tc.bi("reports.prefilled"), className="gm-ae-note"),
            *[_text(k) for k in TEXT_FIELDS],
            html.Div(
                [html.Div([html.Label(tc.bi("reports.field.responsible_name"), className="gm-ae-label"),
                           dcc.Input(id=ids.report_field("responsible_name"), type="text", maxLength=64,
                                     className="gm-ae-input")], className="gm-ae-field"),
                 html.Div([html.Label(tc.bi("reports.field.responsible_phone"), className="gm-ae-label"),
                           dcc.Input(id=ids.report_field("responsible_phone"), type="tel", maxLength=32,
                                     className="gm-ae-input")], className="gm-ae-field")],
                className="gm-rp-two",
            ),
            html.Div([html.Button(tc.bi("reports.submit"), id=ids.REPORT_SUBMIT, n_clicks=0,
                                  className="gm-ae-btn gm-ae-btn-primary"),
                      html.Button(tc.bi("reports.emergency"), id=ids.REPORT_EMERGENCY, n_clicks=0,
                                  className="gm-ae-btn gm-ae-btn-danger", title=t("reports.emergency_title", lang))],
                     className="gm-rp-buttons"),
        ],
        className="gm-rp-form",
    )
    return rc.section(
        "reports.file_title",
        html.Div([html.Label(tc.bi("reports.community"), className="gm-ae-label"),
                  dcc.Dropdown(id=ids.REPORT_COMMUNITY, options=options, value=options[0]["value"] if options else None,
                               clearable=False, disabled=len(options) <= 1, className="gm-tk-select")],
                 className="gm-ae-field"),
        html.Div(id=ids.REPORT_TODAY),
        html.Button([html.Div(tc.bi("reports.zero"), className="gm-rp-zero-main"),
                     html.Div(tc.bi("reports.zero_sub"), className="gm-rp-zero-sub")],
                    id=ids.REPORT_ZERO, n_clicks=0, className="gm-rp-zero"),
        html.Div(id=ids.REPORT_MESSAGE, className="gm-rp-message", role="status"),
        html.Details([html.Summary(html.Span(tc.bi("reports.form_title")), className="gm-ae-summary"), form], open=True,
                     className="gm-rp-details"),
        html.Div([html.H4(tc.bi("reports.versions")), html.Div(id=ids.REPORT_VERSIONS)], className="gm-rp-versions"),
        extra="gm-rp-file",
    )


def _board_section(lang: str) -> html.Section:
    export = html.A([html.Span(className="gm-rp-xlsx-icon"), *tc.bi("reports.export")], id=ids.REPORT_EXPORT,
                    href="", className="gm-ae-btn gm-rp-export", download="")
    return rc.section(
        "reports.board_title",
        html.Div(id=f"{ids.REPORT_TOTALS}-box"),
        html.Div(id=f"{ids.REPORT_BOARD}-box", className="gm-rp-scroll"),
        html.H4(tc.bi("reports.rollup_title")),
        html.Div(id=f"{ids.REPORT_ROLLUP}-box", className="gm-rp-scroll"),
        extra="gm-rp-board-section",
        tools=export,
    )


def _history_section(communities: list[dict]) -> html.Section:
    options = [{"label": f"{c['name']} · {c['subdistrict_name']}", "value": c["id"]} for c in communities]
    return rc.section(
        "reports.history_title",
        html.Div(dcc.Dropdown(id=ids.REPORT_HISTORY_COMMUNITY, options=options,
                              value=options[0]["value"] if options else None, clearable=False,
                              className="gm-tk-select"), className="gm-ae-field gm-rp-history-pick"),
        html.Div(id=ids.REPORT_HISTORY, className="gm-rp-scroll"),
        extra="gm-rp-history-section",
    )


def layout(date: str | None = None, **_query) -> html.Div:
    settings = current_settings()
    lang = normalise(settings.default_language)
    principal = current_principal()
    if principal is None or principal.role not in REPORT_ROLES:
        return html.Div(tc.bi("reports.forbidden"), id="reports-forbidden", className="gm-error")
    day = _day(date)
    try:
        with session_scope(settings.database_url) as session:
            communities = reports.communities_for(session, principal)
            version = data_version(session).version
    except DatabaseUnavailable as exc:
        return html.Div([html.B(t("tasks.db", lang)), html.Div(str(exc))], className="gm-error")
    may_file = _may_file()
    main = [_file_section(communities, lang)] if may_file else [_board_section(lang)]
    return html.Div(
        [
            html.Div(
                [html.Div([html.H2(tc.bi("reports.title"), className="gm-fd-title"),
                           html.Div([html.Span(tc.tr("reports.deadline_note", code, deadline=_deadline()),
                                               className=f"gm-{code}") for code in LANGUAGES],
                                    className="gm-ae-muted")]),
                 html.Div([html.Label(tc.bi("reports.date"), className="gm-ae-label"),
                           dcc.DatePickerSingle(id=ids.REPORT_DATE, date=day.isoformat(), display_format="YYYY-MM-DD",
                                                first_day_of_week=1, clearable=False, className="gm-rp-date")],
                          className="gm-rp-date-box")],
                className="gm-fd-head gm-rp-head",
            ),
            html.Div([*main, _history_section(communities)],
                     className="gm-rp-columns" + (" gm-rp-columns-file" if may_file else " gm-rp-columns-board")),
            dcc.Store(id=ids.REPORT_REFRESH, data=0),
            *tc.data_poll("reports", version),
        ],
        className="gm-fd-page gm-rp-page",
    )


# --- callbacks: read inputs, call one service, format the output ------------------------------------


@dash.callback(
    Output(ids.report_field("supply_problems"), "placeholder"),
    Output(ids.report_field("staffing_problems"), "placeholder"),
    Output(ids.report_field("free_text"), "placeholder"),
    Input(ids.LANG_STORE, "data"),
)
def translate(lang: str | None):
    lang = normalise(lang)
    return (t("reports.placeholder.supply", lang),
            t("reports.placeholder.staffing", lang), t("reports.placeholder.free_text", lang))


@dash.callback(
    [Output(ids.report_field(k), "value") for k in COUNT_FIELDS],
    Output(ids.report_field("responsible_name"), "value"),
    Output(ids.report_field("responsible_phone"), "value"),
    [Output(ids.report_field(k), "value") for k in TEXT_FIELDS],
    Input(ids.REPORT_DATE, "date"),
    Input(ids.REPORT_COMMUNITY, "value"),
)
def prefill(day: str | None, community_id: int | None):
    """The form for a community's day: figures the task system knows, the last report's contact and
    people under observation (they carry over from day to day)."""
    if not community_id:
        raise PreventUpdate
    settings = current_settings()
    report_date = _day(day)
    principal = current_principal()
    try:
        with session_scope(settings.database_url) as session:
            suggested = reports.suggest_counts(session, settings, community_id, report_date)
            earlier = reports.report_history(session, community_id, since=report_date - timedelta(days=30),
                                             until=report_date, principal=principal)
    except (DatabaseUnavailable, GridmapError):
        raise PreventUpdate from None
    last = next((r for r in earlier if r.kind != EMERGENCY), None)
    counts = {"new_cases": 0, "under_observation": last.under_observation if last else 0, **suggested}
    return (*[counts.get(k, 0) for k in COUNT_FIELDS], (last.responsible_name if last else "") or _author(),
            (last.responsible_phone if last else "") or "", *["" for _ in TEXT_FIELDS])


@dash.callback(
    Output(ids.REPORT_TODAY, "children"),
    Output(ids.REPORT_VERSIONS, "children"),
    Output(ids.REPORT_ZERO, "disabled"),
    Input(ids.REPORT_DATE, "date"),
    Input(ids.REPORT_COMMUNITY, "value"),
    Input(ids.REPORT_REFRESH, "data"),
    Input(VERSION, "data"),
    Input(ids.LANG_STORE, "data"),
)
def show_day(day, community_id, _refresh, _version, lang):
    """Is the day's report in, and every version filed so far."""
    lang = normalise(lang)
    if not community_id:
        return tc.empty(t("reports.no_community", lang), "", "list"), None, True
    settings = current_settings()
    report_date = _day(day)
    principal = current_principal()
    try:
        with session_scope(settings.database_url) as session:
            versions = reports.report_versions(session, community_id, report_date)
            status = reports.report_status(session, settings, report_date, _now(), principal=principal)
    except DatabaseUnavailable as exc:
        return tc.problem(t("tasks.db", lang), str(exc)), None, True
    line = next((c for c in status.communities if c.community_id == community_id), None)
    day_box = rc.day_status(versions, line.status if line else None, _deadline(), lang, settings.timezone)
    if report_date > _today():
        day_box = tc.problem(t("reports.future", lang), t("reports.future_hint", lang), "warning")
    return day_box, rc.versions_list(versions, lang, settings.timezone), report_date > _today()


def _count(value) -> int | float | str:
    """A figure as typed: empty is 0; anything not whole goes to the service, which says why."""
    if value in (None, ""):
        return 0
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@dash.callback(
    Output(ids.REPORT_MESSAGE, "children"),
    Output(ids.REPORT_REFRESH, "data"),
    Output(VERSION, "data", allow_duplicate=True),
    Input(ids.REPORT_ZERO, "n_clicks"),
    Input(ids.REPORT_SUBMIT, "n_clicks"),
    Input(ids.REPORT_EMERGENCY, "n_clicks"),
    State(ids.REPORT_DATE, "date"),
    State(ids.REPORT_COMMUNITY, "value"),
    [State(ids.report_field(k), "value") for k in COUNT_FIELDS],
    [State(ids.report_field(k), "value") for k in TEXT_FIELDS],
    State(ids.report_field("responsible_name"), "value"),
    State(ids.report_field("responsible_phone"), "value"),
    State(ids.REPORT_REFRESH, "data"),
    State(VERSION, "data"),
    State(ids.LANG_STORE, "data"),
    prevent_initial_call=True,
)
def file(_zero, _submit, _emergency, day, community_id, *rest):
    """File the zero report, the day's report (an amendment when one is in) or an emergency report."""
    if not ctx.triggered or not ctx.triggered[0]["value"] or not community_id:
        raise PreventUpdate
    counts = dict(zip(COUNT_FIELDS, rest[:4], strict=True))
    texts = dict(zip(TEXT_FIELDS, rest[4:7], strict=True))
    name, phone, refresh, version, lang = rest[7:]
    lang = normalise(lang)
    if not _may_file():
        return tc.problem(t("reports.not_filed", lang), t("reports.forbidden_file", lang)), no_update, no_update
    settings = current_settings()
    report_date = _day(day)
    principal = current_principal()
    trigger = ctx.triggered_id

    def run(session):
        if trigger == ids.REPORT_ZERO:
            filed = reports.file_zero_report(
                session, settings, community_id=community_id, report_date=report_date, filed_by=_author(),
                now=_now(), responsible_name=name or "", responsible_phone=phone or "", principal=principal)
        else:
            kind = EMERGENCY if trigger == ids.REPORT_EMERGENCY else NORMAL
            report = ReportInput(
                community_id=community_id, report_date=report_date, kind=kind,
                **{k: _count(v) for k, v in counts.items()}, **{k: v or "" for k, v in texts.items()},
                filed_by=_author(), responsible_name=name or "", responsible_phone=phone or "")
            filed = reports.file_report(session, settings, report, _now(), principal=principal)
        return filed, data_version(session).version

    done, problem = call_service(run)
    if problem:
        return _problem(lang, problem, "reports.not_filed"), no_update, no_update
    filed, new_version = done
    key = {"zero": "reports.zero_done", "emergency": "reports.emergency_done"}.get(filed.kind, "reports.filed_done")
    text = tc.tr(key, lang, community=filed.community_name, day=filed.report_date.isoformat(), version=filed.version)
    return tc.problem(text, "", "success"), (refresh or 0) + 1, tc.bumped(version, new_version)


@dash.callback(
    Output(f"{ids.REPORT_TOTALS}-box", "children"),
    Output(f"{ids.REPORT_BOARD}-box", "children"),
    Output(f"{ids.REPORT_ROLLUP}-box", "children"),
    Output(ids.REPORT_EXPORT, "href"),
    Input(ids.REPORT_DATE, "date"),
    Input(VERSION, "data"),
    Input(ids.LANG_STORE, "data"),
)
def board(day, _version, lang):
    """The day's status of every community in the user's area, the alarm first, and the roll-up."""
    lang = normalise(lang)
    settings = current_settings()
    report_date = _day(day)
    principal = current_principal()
    now = _now()
    href = dash.get_relative_path(f"/api/reports/{report_date.isoformat()}.xlsx")
    try:
        with session_scope(settings.database_url) as session:
            status = reports.report_status(session, settings, report_date, now, principal=principal)
            totals = reports.rollup(session, report_date, settings, now, principal=principal)
    except DatabaseUnavailable as exc:
        return tc.problem(t("tasks.db", lang), str(exc)), None, None, href
    if not status.communities:
        return None, tc.empty(t("reports.no_community", lang), "", "list"), None, href
    head = [rc.totals_chips(status.totals, lang)]
    if status.totals.missing:
        head.append(tc.problem(tc.tr("reports.alarm", lang, n=status.totals.missing, deadline=_deadline()),
                               t("reports.alarm_hint", lang)))
    return head, rc.board_table(status.communities, lang, settings.timezone), rc.rollup_table(totals, lang), href


@dash.callback(
    Output(ids.REPORT_HISTORY_COMMUNITY, "value"),
    Input({"type": ids.REPORT_BOARD_PICK, "community": ALL}, "n_clicks"),
    prevent_initial_call=True,
)
def pick_history(_clicks):
    """A community clicked on the board shows its history."""
    if not isinstance(ctx.triggered_id, dict) or not ctx.triggered[0]["value"]:
        raise PreventUpdate  # the board's buttons fire when it is (re)drawn, with no click
    return ctx.triggered_id["community"]


@dash.callback(
    Output(ids.REPORT_HISTORY_COMMUNITY, "value", allow_duplicate=True),
    Input(ids.REPORT_COMMUNITY, "value"),
    prevent_initial_call=True,
)
def follow_filing(community_id):
    """The history follows the community being filed for."""
    if not community_id:
        raise PreventUpdate
    return community_id


@dash.callback(
    Output(ids.REPORT_HISTORY, "children"),
    Input(ids.REPORT_HISTORY_COMMUNITY, "value"),
    Input(ids.REPORT_DATE, "date"),
    Input(VERSION, "data"),
    Input(ids.REPORT_REFRESH, "data"),
    Input(ids.LANG_STORE, "data"),
)
def history(community_id, day, _version, _refresh, lang):
    """A community's last days: which were in, zero or missing, with the figures."""
    lang = normalise(lang)
    if not community_id:
        return tc.empty(t("reports.no_community", lang), "", "list")
    settings = current_settings()
    until = min(_day(day), _today())
    since = until - timedelta(days=HISTORY_DAYS - 1)
    try:
        with session_scope(settings.database_url) as session:
            rows = reports.report_history(session, community_id, since=since, until=until,
                                          principal=current_principal())
    except DatabaseUnavailable as exc:
        return tc.problem(t("tasks.db", lang), str(exc))
    except GridmapError as exc:
        return tc.problem(t("reports.not_filed", lang), exc.message)
    days = [until - timedelta(days=n) for n in range(HISTORY_DAYS)]
    return rc.history_table(rows, days, lang, settings.timezone)
