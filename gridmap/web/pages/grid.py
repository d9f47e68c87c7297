"""The grid sheet (path "/grid/<grid_id>", issue 5): one grid for the grid leader on a tablet or a
phone: its buildings (a small map and a list), its key people with the contact each is due, a
quick form to log a contact, the leader's patch (包片联户) and the open task items with take /
done buttons.

Names and phones only for those who may see them (services.contacts masks the rest); the form and
the buttons only for users who do field work in this grid. The page polls ``/api/changes`` and
redraws when anyone's write moved the data version.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dash
import dash_leaflet as dl
from dash import ALL, Input, Output, State, ctx, dcc, html
from dash.exceptions import PreventUpdate

from gridmap.db.session import DatabaseUnavailable, session_scope
from gridmap.domain import coverage as coverage_rules
from gridmap.domain.errors import GridmapError, NotFound
from gridmap.services import contacts, coverage_layers, layers
from gridmap.services import tasks as task_service
from gridmap.services.access import AccessDenied
from gridmap.services.changes import data_version
from gridmap.services.coverage import local_tz
from gridmap.web import coverage_components as cc
from gridmap.web import ids
from gridmap.web.auth import current_principal
from gridmap.web.context import current_settings
from gridmap.web.i18n import js_labels, normalise, t

dash.register_page(
    __name__,
    path_template="/grid/<grid_id>",
    name="Grid sheet",
    title="网格工作页 · Grid sheet",
)

POLL_MS = 3000


def _message(text: str, kind: str = "error") -> html.Div:
    return html.Div(text, className=f"gm-gp-msg gm-gp-msg-{kind}")


def _grid_id(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _choose(lang: str) -> html.Div:
    principal = current_principal()
    links = []
    if principal is not None and principal.area_level == "grid":
        links.append(dcc.Link(principal.area_name, href=cc.grid_sheet_href(principal.area_id), className="gm-link"))
    return html.Div([html.P(t("gp.choose", lang)), *links,
                     html.P(dcc.Link(t("gp.back", lang), href=dash.get_relative_path("/")))],
                    className="gm-gp gm-gp-choose")


def _small_map(fc: dict, lang: str) -> dl.MapContainer:
    west, south, east, north = fc["bbox"]
    return dl.MapContainer(
        [dl.GeoJSON(data=fc, id=f"{ids.GRID_MAP}-layer", style={"variable": "gridmap.coverage.sheetStyle"},
                    onEachFeature={"variable": "gridmap.coverage.sheetEach"},
                    hideout={"t": js_labels(lang)})],
        id=ids.GRID_MAP,
        bounds=[[south, west], [north, east]],
        boundsOptions={"padding": [12, 12]},
        trackViewport=False,
        zoomSnap=0.25,
        dragging=False,  # a finger on the map scrolls the page; pinch or the buttons zoom
        scrollWheelZoom=False,
        attributionControl=False,
        className="gm-gp-map",
    )


def layout(grid_id: str | None = None, **_query) -> html.Div:
    settings = current_settings()
    lang = normalise(settings.default_language)
    gid = _grid_id(grid_id)
    if gid is None:
        return _choose(lang)
    principal = current_principal()
    try:
        with session_scope(settings.database_url) as session:
            contacts.require_grid(session, principal, gid)
            fc = coverage_layers.grid_sheet_geojson(session, gid)
            statuses = contacts.grid_contact_status(session, principal, settings, gid, datetime.now(UTC))
            version = data_version(session).version
    except NotFound:
        return html.Div(_message(t("gp.not_found", lang)), className="gm-gp gm-gp-choose")
    except AccessDenied:
        return html.Div(_message(t("gp.denied", lang)), className="gm-gp gm-gp-choose")
    except DatabaseUnavailable as exc:
        return html.Div(_message(f"{t('gp.db', lang)} {exc}"), className="gm-gp gm-gp-choose")
    can_log = contacts.may_log_contact(principal, gid)
    return html.Div(
        id=ids.GRID_PAGE,
        className="gm-gp",
        children=[
            dcc.Store(id=ids.GRID_ID, data=gid),
            dcc.Store(id=ids.GRID_REFRESH, data=0),
            dcc.Store(id=ids.GRID_VERSION, data=version),
            dcc.Store(id=f"{ids.GRID_VERSION}-link", data="ok"),
            dcc.Store(id=ids.GRID_CHANGES_URL, data=dash.get_relative_path("/api/changes")),
            dcc.Interval(id=ids.GRID_POLL, interval=POLL_MS),
            html.Div(id=ids.GRID_HEAD),
            html.Div(
                className="gm-gp-grid",
                # Two columns on a tablet; on a phone the columns dissolve into one list (gridmap.css).
                children=[
                    html.Div([
                        html.Section(
                            cc.contact_form(cc.person_options(statuses, lang), can_log, lang,
                                            coverage_rules.CONTACT_METHODS, contacts.CONTACT_OUTCOMES),
                            id=ids.GRID_FORM, className="gm-gp-card gm-gp-form",
                        ),
                        html.Section(id=ids.GRID_PERSONS, className="gm-gp-card gm-gp-persons-card"),
                    ], className="gm-gp-col gm-gp-col-a"),
                    html.Div([
                        html.Section(id=ids.GRID_ITEMS, className="gm-gp-card gm-gp-items-card"),
                        html.Section(
                            [html.H3(t("gp.map", lang), id=f"{ids.GRID_MAP}-title"), _small_map(fc, lang),
                             html.Div(id=ids.GRID_BUILDINGS, className="gm-gp-table-wrap")],
                            className="gm-gp-card gm-gp-map-card",
                        ),
                        html.Section(id=ids.GRID_ASSIGNMENTS, className="gm-gp-card gm-gp-assign-card"),
                    ], className="gm-gp-col gm-gp-col-b"),
                ],
            ),
        ],
    )


# --- callbacks: read inputs, call one service, format the output --------------------------------------

dash.clientside_callback(
    "function(n, url, known, link) { return window.gridmap.coverage.poll(n, url, known, link); }",
    Output(ids.GRID_VERSION, "data"),
    Output(f"{ids.GRID_VERSION}-link", "data"),
    Input(ids.GRID_POLL, "n_intervals"),
    State(ids.GRID_CHANGES_URL, "data"),
    State(ids.GRID_VERSION, "data"),
    State(f"{ids.GRID_VERSION}-link", "data"),
    prevent_initial_call=True,
)


@dash.callback(
    Output(ids.GRID_HEAD, "children"),
    Output(ids.GRID_PERSONS, "children"),
    Output(ids.GRID_ITEMS, "children"),
    Output(ids.GRID_BUILDINGS, "children"),
    Output(ids.GRID_ASSIGNMENTS, "children"),
    Output(ids.GRID_FORM_PERSON, "options"),
    Output(f"{ids.GRID_MAP}-title", "children"),
    Input(ids.GRID_ID, "data"),
    Input(ids.GRID_REFRESH, "data"),
    Input(ids.GRID_VERSION, "data"),
    Input(ids.LANG_STORE, "data"),
)
def render_sheet(grid_id: int, _refresh, _version, lang: str | None):
    lang = normalise(lang)
    settings = current_settings()
    principal = current_principal()
    now = datetime.now(UTC)
    try:
        with session_scope(settings.database_url) as session:
            grid = contacts.require_grid(session, principal, grid_id)
            details = layers.feature_details(session, "grid", grid_id, lang, principal=principal)
            statuses = contacts.grid_contact_status(session, principal, settings, grid_id, now)
            categories = contacts.category_names(session, lang)
            fc = coverage_layers.grid_sheet_geojson(session, grid_id)
            staff, works_as = contacts.field_staff(session, principal, grid_id)
            assignments = contacts.staff_assignments(session, staff["id"]) if staff else []
            items = contacts.open_items(session, staff["id"], grid_id, now) if staff else []
    except (NotFound, AccessDenied) as exc:
        msg = _message(str(exc))
        return msg, [], [], [], [], [], t("gp.map", lang)
    except DatabaseUnavailable as exc:
        raise PreventUpdate from exc
    vulnerable = [s for s in statuses if s.vulnerable]
    counts = {
        "buildings": details["buildings"], "key_persons": len(statuses), "vulnerable": len(vulnerable),
        "on_time": sum(s.status == contacts.ON_TIME for s in vulnerable),
        "due": sum(s.status == contacts.DUE for s in vulnerable),
    }
    can_log = contacts.may_log_contact(principal, grid_id)
    tz = local_tz(settings)
    local_now = now.astimezone(tz)
    return (
        cc.sheet_head(grid, counts, lang, details.get("risk")),
        cc.persons_section(statuses, categories, lang, can_log, local_now, settings),
        cc.items_section(items, staff, works_as, lang, now, tz),
        cc.buildings_table(fc, lang),
        cc.assignments_section(staff, works_as, assignments, lang),
        cc.person_options(statuses, lang),
        t("gp.map", lang),
    )


@dash.callback(
    Output(ids.GRID_FORM, "children"),
    Input(ids.LANG_STORE, "data"),
    State(ids.GRID_ID, "data"),
    prevent_initial_call=True,
)
def translate_form(lang: str | None, grid_id: int):
    """The form in the language picked (its values start afresh: a language switch is rare)."""
    lang = normalise(lang)
    settings = current_settings()
    principal = current_principal()
    try:
        with session_scope(settings.database_url) as session:
            statuses = contacts.grid_contact_status(session, principal, settings, grid_id, datetime.now(UTC))
    except (GridmapError, DatabaseUnavailable) as exc:
        raise PreventUpdate from exc
    return cc.contact_form(cc.person_options(statuses, lang), contacts.may_log_contact(principal, grid_id), lang,
                           coverage_rules.CONTACT_METHODS, contacts.CONTACT_OUTCOMES)


# "Log" beside a person: choose them in the form and bring the form into view.
dash.clientside_callback(
    """function(clicks) {
        var dc = window.dash_clientside;
        var trig = (dc.callback_context.triggered || [])[0];
        if (!trig || !trig.value) { return dc.no_update; }
        window.gridmap.coverage.showForm(null, 'FORM_ID');
        return JSON.parse(trig.prop_id.split('.')[0]).id;
    }""".replace("FORM_ID", ids.GRID_FORM),
    Output(ids.GRID_FORM_PERSON, "value"),
    Input({"type": ids.GRID_PICK, "id": ALL}, "n_clicks"),
    prevent_initial_call=True,
)


@dash.callback(
    Output(ids.GRID_MESSAGE, "children"),
    Output(ids.GRID_REFRESH, "data"),
    Output(ids.GRID_FORM_NOTE, "value"),
    Input(ids.GRID_FORM_SUBMIT, "n_clicks"),
    State(ids.GRID_FORM_PERSON, "value"),
    State(ids.GRID_FORM_METHOD, "value"),
    State(ids.GRID_FORM_OUTCOME, "value"),
    State(ids.GRID_FORM_NOTE, "value"),
    State(ids.GRID_REFRESH, "data"),
    State(ids.LANG_STORE, "data"),
    prevent_initial_call=True,
)
def save_contact(clicks, person, method, outcome, note, refresh, lang):
    if not clicks:
        raise PreventUpdate
    lang = normalise(lang)
    if not person:
        return _message(t("gp.form.need_person", lang)), dash.no_update, dash.no_update
    settings = current_settings()
    now = datetime.now(UTC)
    try:
        with session_scope(settings.database_url) as session:
            done = contacts.log_contact(session, current_principal(), int(person), method, outcome or "", note or "",
                                        now, settings)
    except GridmapError as exc:
        return _message(f"{t('gp.error', lang)}{exc.message}"), dash.no_update, dash.no_update
    except DatabaseUnavailable as exc:
        return _message(f"{t('gp.db', lang)} {exc}"), dash.no_update, dash.no_update
    text = t("gp.form.saved", lang).format(
        name=done.status.name or "", method=t(f"gp.method.{done.method}", lang),
        time=done.contacted_at.astimezone(local_tz(settings)).strftime("%H:%M"))
    return _message(text, "ok"), (refresh or 0) + 1, ""


@dash.callback(
    Output(ids.GRID_MESSAGE, "children", allow_duplicate=True),
    Output(ids.GRID_REFRESH, "data", allow_duplicate=True),
    Input({"type": ids.GRID_ITEM_TAKE, "id": ALL}, "n_clicks"),
    Input({"type": ids.GRID_ITEM_DONE, "id": ALL}, "n_clicks"),
    State(ids.GRID_ID, "data"),
    State(ids.GRID_REFRESH, "data"),
    State(ids.LANG_STORE, "data"),
    prevent_initial_call=True,
)
def work_item(_take, _done, grid_id, refresh, lang):
    trigger = ctx.triggered_id
    if not isinstance(trigger, dict) or not ctx.triggered[0]["value"]:
        raise PreventUpdate  # buttons fire on creation, unclicked
    lang = normalise(lang)
    settings = current_settings()
    principal = current_principal()
    now = datetime.now(UTC)
    try:
        with session_scope(settings.database_url) as session:
            staff, works_as = contacts.field_staff(session, principal, grid_id)
            if staff is None or not works_as:
                return _message(t("gp.form.readonly", lang)), dash.no_update
            if trigger["type"] == ids.GRID_ITEM_TAKE:
                task_service.take_item(session, trigger["id"], staff["id"], now, settings, principal=principal)
                done = t("gp.item.taken", lang)
            else:
                task_service.finish_item(session, trigger["id"], staff["id"], outcome="done", now=now,
                                         principal=principal)
                done = t("gp.item.finished", lang)
    except GridmapError as exc:
        return _message(f"{t('gp.error', lang)}{exc.message}"), (refresh or 0) + 1
    except DatabaseUnavailable as exc:
        return _message(f"{t('gp.db', lang)} {exc}"), dash.no_update
    return _message(done, "ok"), (refresh or 0) + 1
