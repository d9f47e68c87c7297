"""Tasking on the map (path "/tasks"): select where (a drawn area, a controlled area, a grid,
buildings, or key persons of a grid), pick a task type, title and due time, see how many items it
makes and whom they go to, and give it out; follow every task's progress, its overdue items, its
items on the map coloured by state, reassign by hand, validate, and read its history.

For commanders, sub-district staff and community workers (``manage_tasks``). The drawn area uses
dash-leaflet's EditControl with the area editor's handlers (assets/gridmap.js ``gridmap.areas``);
the map's layers come by URL like the command map's and follow its view the same way (issue 8,
web/map_view.py: polygons generalised per zoom band, buildings only for the viewport from their
minimum zoom on, with a hint to zoom in; a click picks on the server by its point), and a task's
items (bounded by the task) from
``/api/tasks/<id>/items.geojson`` (web/task_routes.py), refetched when the data version from
``/api/changes`` moves. Every callback reads its inputs, calls one service (services.tasks) with the
logged-in principal, and formats the answer (web/task_components.py).

``/tasks?task=<id>`` opens a task; ``/tasks?grid=<id>`` starts the map on a grid.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import dash
import dash_leaflet as dl
from dash import ALL, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from gridmap.db.session import DatabaseUnavailable, session_scope
from gridmap.domain import access as access_rules
from gridmap.domain.errors import GridmapError, InvalidInput
from gridmap.domain.reports import local_date, zone
from gridmap.domain.tasks import Selection
from gridmap.services import access, area_editing, layers, tasks
from gridmap.services.changes import data_version
from gridmap.web import ids, map_view
from gridmap.web import task_components as tc
from gridmap.web.auth import current_principal
from gridmap.web.components import call_service
from gridmap.web.context import current_settings
from gridmap.web.i18n import both, js_labels, normalise, t

dash.register_page(
    __name__,
    path="/tasks",
    name="Tasks",
    title="任务派发 · Tasks",
    nav_key="nav.tasks",
    order=2,
    roles=tuple(r for r in access_rules.ROLES if access_rules.may(r, access_rules.MANAGE_TASKS)),
)

# The data version this page last saw; polled from /api/changes (task_components.data_poll).
VERSION = ids.data_version("tasks")
tc.register_data_poll("tasks")

MODES = tc.SELECTION_MODES  # drawn_area, controlled_area, grid, buildings, key_persons
PICK_LAYER = {"grid": "grid", "key_persons": "grid", "buildings": "building"}
EMPTY_SELECTION: dict = {"grid_id": None, "building_ids": [], "area_key": None, "key_person_ids": []}
EMPTY_FC: dict = {"type": "FeatureCollection", "features": []}
_FN = "gridmap."


# Dash executes page modules before putting them in sys.modules, so no @dataclass here.
class BackLayer(NamedTuple):
    name: str  # a layer of services.layers
    checked: bool


BACK_LAYERS: tuple[BackLayer, ...] = (
    BackLayer("district", True),
    BackLayer("community", True),
    BackLayer("grid", True),
    BackLayer("controlled_area", True),
    BackLayer("building", True),
)
# Layers whose hideout carries what is selected.
SELECTABLE = ("grid", "building", "controlled_area")
# Every layer follows the map's view (map_view): buildings by the viewport from their minimum zoom,
# the polygons generalised per zoom band.
VIEW_LAYERS: tuple[map_view.ViewLayer, ...] = tuple(
    map_view.ViewLayer(m.name, m.name != "building") for m in BACK_LAYERS
)


def _now() -> datetime:
    return datetime.now(UTC)


def _lang(lang: str | None) -> str:
    return normalise(lang)


def _author() -> str:
    principal = current_principal()
    return (principal.display_name or principal.username) if principal else ""


def _may_manage() -> bool:
    principal = current_principal()
    return principal is not None and principal.may(access_rules.MANAGE_TASKS) and not principal.read_only


def _db_problem(lang: str, exc: Exception) -> html.Div:
    return tc.problem(t("tasks.db", lang), str(exc))


def _error(lang: str, exc: GridmapError, title_key: str = "tasks.not_done") -> html.Div:
    return tc.problem(t(title_key, lang), exc.message)


def _problem(lang: str, exc: Exception, title_key: str = "tasks.not_done") -> html.Div:
    """What call_service's problem says to the user: the database is down, or why it was refused."""
    return _db_problem(lang, exc) if isinstance(exc, DatabaseUnavailable) else _error(lang, exc, title_key)


def _version() -> int:
    with session_scope(current_settings().database_url) as session:
        return data_version(session).version


def _write(fn):
    """A write through call_service, then the data version it made (the page's store bumps to it):
    (result, version, problem)."""
    result, problem = call_service(fn)
    if problem is not None:
        return None, None, problem
    version, problem = call_service(lambda session: data_version(session).version)
    return result, version, problem


# --- layout --------------------------------------------------------------------------------------


def _hideout(layer: str, lang: str, risk_names: dict, selected=None) -> dict:
    return {"layer": layer, "t": js_labels(lang), "riskNames": risk_names, "kindNames": {}, "selected": selected}


def _items_hideout(lang: str, selected: int | None = None) -> dict:
    return {"states": {s: tc.state_name(s, lang) for s in tc.STATE_ORDER}, "overdue": t("tasks.overdue_item", lang),
            "selected": selected}


def _back_layer(m: BackLayer, lang: str, risk_names: dict, url: str | None) -> dl.Overlay:
    props: dict = {
        "id": ids.task_layer(m.name),
        "format": "geobuf",
        "style": {"variable": _FN + "tasks.style"},
        "onEachFeature": {"variable": _FN + "areas.onEachFeature"},
        "hideout": _hideout(m.name, lang, risk_names),
        "interactive": m.name != "district",
        # Clicks reach the map, whose clickData (a point) picks a grid or a building.
        "bubblingMouseEvents": True,
    }
    if url:  # buildings start with neither url nor data: their URL waits for the viewport
        props["url"] = url
    layer = dl.GeoJSON(**props)
    pane = dl.Pane(layer, name=f"gm-tk-{m.name}", className=f"gm-ae-pane gm-ae-pane-{m.name}")
    return dl.Overlay(pane, name=both(f"layer.{m.name}"), checked=m.checked)


def _editor() -> dl.FeatureGroup:
    shape = {"color": "#ff6f00", "weight": 3, "opacity": 1, "fillColor": "#ffb300", "fillOpacity": 0.2}
    events = ("draw:created", "draw:edited", "draw:deleted", "draw:editvertex", "draw:editmove",
              "draw:editresize", "draw:editstop", "draw:deletestop")
    return dl.FeatureGroup(
        dl.EditControl(
            id=ids.TASK_EDIT,
            position="topleft",
            draw={"polygon": {"allowIntersection": False, "showArea": False, "shapeOptions": shape},
                  "rectangle": {"showArea": False, "shapeOptions": shape},
                  "polyline": False, "circle": False, "marker": False, "circlemarker": False},
            edit={"poly": {"allowIntersection": False}},
            # the area editor's handlers report every change (holes included) as `geojson`
            disableDefaultEventHandlers=True,
            eventHandlers={"draw:mounted": {"variable": _FN + "areas.mounted"},
                           **{e: {"variable": _FN + "areas.changed"} for e in events}},
        ),
        id=ids.TASK_EDIT_GROUP,
    )


def _map(settings, bounds, lang: str, risk_names: dict, version: int) -> dl.MapContainer:
    children: list = []
    if settings.tile_url:
        children.append(dl.TileLayer(url=settings.tile_url, attribution=settings.tile_attribution, maxZoom=19))
    zoom = layers.fit_zoom(bounds, settings.map_fit_width_px)
    overlays = [_back_layer(m, lang, risk_names, map_view.opening_url(settings, v, version, zoom))
                for m, v in zip(BACK_LAYERS, VIEW_LAYERS, strict=True)]
    children += [
        dl.LayersControl(overlays, position="topright", collapsed=True),
        dl.Pane(
            dl.GeoJSON(id=ids.TASK_ITEMS_LAYER, url=None, data=None,
                       pointToLayer={"variable": _FN + "tasks.itemPoint"},
                       onEachFeature={"variable": _FN + "tasks.itemEach"},
                       hideout=_items_hideout(lang), bubblingMouseEvents=False),
            name="gm-tk-items", className="gm-tk-pane-items",
        ),
        _editor(),
        dl.ScaleControl(position="bottomright", imperial=False),
    ]
    return dl.MapContainer(
        children, id=ids.TASK_MAP, bounds=bounds, trackViewport=False, boundsOptions={"padding": [24, 24]},
        eventHandlers=map_view.map_event_handlers(),  # the view, reported as on the command map
        zoomSnap=0.25, minZoom=9, maxZoom=19, className="gm-map", attributionControl=bool(settings.tile_url),
    )


def _toolbar(lang: str) -> html.Div:
    options = [{"label": html.Span(tc.bi(f"tasks.mode.{m}"), className=f"gm-ae-tool gm-tk-tool-{m}"), "value": m}
               for m in MODES]
    return html.Div(
        [dcc.RadioItems(id=ids.TASK_MODE, options=options, value="drawn_area", className="gm-ae-tools",
                        inputClassName="gm-ae-tool-input", labelClassName="gm-ae-tool-label"),
         html.Div(t("tasks.hint.drawn_area", lang), id=ids.TASK_MODE_HINT, className="gm-ae-tool-hint")],
        className="gm-ae-toolbar gm-tk-toolbar",
    )


def _field(label_key: str, control, extra: str = "", field_id: str | None = None) -> html.Div:
    props = {"id": field_id} if field_id else {}
    return html.Div([html.Label(tc.bi(label_key), className="gm-ae-label"), control],
                    className=f"gm-ae-field {extra}".strip(), **props)


def _new_section(lang: str, task_types: list, areas: list[dict]) -> html.Div:
    type_options = [{"label": tt.name_en if lang == "en" else tt.name_zh, "value": tt.code} for tt in task_types]
    first = next((tt for tt in task_types if tt.code == "door_knock"), task_types[0] if task_types else None)
    area_options = [{"label": f"{a.get('name') or '#' + str(a['area_key'])} · {a['class_name']}", "value": a["area_key"]}
                    for a in areas]
    select = html.Div(
        [
            html.H3(tc.bi("tasks.step_where")),
            _field("tasks.area", dcc.Dropdown(id=ids.TASK_AREA_PICK, options=area_options, clearable=True,
                                              placeholder=t("tasks.area_placeholder", lang), className="gm-tk-select"),
                   extra="gm-ae-hidden", field_id=ids.TASK_AREA_FIELD),
            html.Div([html.Div(id=ids.TASK_SELECTION_INFO, className="gm-tk-sel-info"),
                      html.Button(tc.bi("tasks.clear"), id=ids.TASK_CLEAR, n_clicks=0,
                                  className="gm-ae-btn gm-ae-btn-small")], className="gm-tk-sel-row"),
            html.Div(
                [html.Div([html.Label(tc.bi("tasks.persons"), className="gm-ae-label"),
                           html.Button(tc.bi("tasks.persons_all"), id=ids.TASK_PERSONS_ALL, n_clicks=0,
                                       className="gm-ae-btn gm-ae-btn-small")], className="gm-tk-persons-head"),
                 dcc.Checklist(id=ids.TASK_PERSONS, options=[], value=[], className="gm-tk-persons",
                               inputClassName="gm-tk-person-input")],
                id=ids.TASK_PERSONS_FIELD, className="gm-ae-field gm-ae-hidden",
            ),
        ],
        className="gm-ae-section gm-tk-step",
    )
    what = html.Div(
        [
            html.H3(tc.bi("tasks.step_what")),
            _field("tasks.type", dcc.Dropdown(id=ids.TASK_TYPE, options=type_options,
                                              value=first.code if first else None, clearable=False, searchable=False,
                                              className="gm-tk-select")),
            _field("tasks.title", dcc.Input(id=ids.TASK_TITLE, type="text", value="", debounce=True, maxLength=200,
                                            className="gm-ae-input")),
            _field("tasks.due", dcc.Input(id=ids.TASK_DUE, type="text", value="", debounce=True, maxLength=16,
                                          placeholder="YYYY-MM-DD HH:MM", className="gm-ae-input gm-tk-due-input")),
        ],
        className="gm-ae-section gm-tk-step",
    )
    return html.Div(
        [html.Div([select, what, html.Div(id=ids.TASK_PREVIEW, className="gm-tk-preview")], className="gm-ae-scroll"),
         html.Div([html.Div(id=ids.TASK_MESSAGE, className="gm-ae-message"),
                   html.Div([html.Button(tc.bi("tasks.create"), id=ids.TASK_CREATE, n_clicks=0, disabled=True,
                                         className="gm-ae-btn gm-ae-btn-primary"),
                             html.Div(tc.bi("tasks.create_note"), className="gm-ae-save-hint gm-ae-hint-ok")],
                            className="gm-ae-save-row")],
                  className="gm-ae-footer")],
        id=ids.TASK_SECTION_NEW, className="gm-tk-section",
    )


def _list_section(lang: str, may_validate: bool) -> html.Div:
    state_options = [{"label": t("tasks.filter_all", lang), "value": "all"},
                     *({"label": tc.state_name(s, lang), "value": s} for s in tc.STATE_ORDER)]
    listing = html.Div(
        [
            html.Div([html.Button(tc.bi("tasks.rounds"), id=ids.TASK_ROUNDS, n_clicks=0,
                                  className="gm-ae-btn gm-ae-btn-primary-outline", title=t("tasks.rounds_title", lang)),
                      dcc.Checklist(id=ids.TASK_SHOW_CLOSED,
                                    options=[{"label": html.Span(tc.bi("tasks.show_closed")), "value": "closed"}],
                                    value=[], className="gm-tk-show-closed")],
                     className="gm-tk-list-tools"),
            html.Div(id=ids.TASK_OVERDUE),
            html.Div(id=ids.TASK_LIST, className="gm-tk-list"),
        ],
        id=f"{ids.TASK_LIST}-wrap", className="gm-tk-listing",
    )
    validate = html.Div(
        [dcc.Input(id=ids.TASK_VALIDATE_NOTE, type="text", maxLength=300, className="gm-ae-input",
                   placeholder=t("tasks.validate_note", lang)),
         html.Div([html.Button(tc.bi("tasks.validate"), id=ids.TASK_VALIDATE, n_clicks=0,
                               className="gm-ae-btn gm-tk-btn-ok"),
                   html.Button(tc.bi("tasks.invalidate"), id=ids.TASK_INVALIDATE, n_clicks=0,
                               className="gm-ae-btn gm-ae-btn-danger")], className="gm-tk-buttons")],
        id=f"{ids.TASK_VALIDATE}-box", className="gm-tk-validate" + ("" if may_validate else " gm-ae-hidden"),
    )
    item_box = html.Div(
        [
            html.Div(id=ids.TASK_ITEM_BOX),
            html.Div([html.Label(tc.bi("tasks.reassign_to"), className="gm-ae-label"),
                      html.Div([dcc.Dropdown(id=ids.TASK_REASSIGN_TO, options=[], clearable=False,
                                             className="gm-tk-select gm-tk-grow"),
                                html.Button(tc.bi("tasks.reassign"), id=ids.TASK_REASSIGN, n_clicks=0,
                                            className="gm-ae-btn")], className="gm-tk-inline")],
                     id=f"{ids.TASK_REASSIGN}-box", className="gm-tk-reassign"),
            validate,
            html.Div(id=ids.TASK_ITEM_MESSAGE),
        ],
        id=f"{ids.TASK_ITEM_BOX}-wrap", className="gm-tk-item-box gm-ae-hidden",
    )
    detail = html.Div(
        [
            html.Div([html.Button(tc.bi("tasks.back"), id=ids.TASK_BACK, n_clicks=0, className="gm-ae-btn gm-ae-btn-small"),
                      html.Button(tc.bi("tasks.close_task"), id=ids.TASK_CLOSE, n_clicks=0,
                                  className="gm-ae-btn gm-ae-btn-small gm-ae-btn-danger")],
                     className="gm-tk-detail-tools"),
            html.Div(id=ids.TASK_DETAIL_HEAD, className="gm-tk-detail-head"),
            html.Div(id=ids.TASK_PROGRESS),
            item_box,
            html.Div([html.H3(tc.bi("tasks.items_title")),
                      dcc.Dropdown(id=ids.TASK_STATE_FILTER, options=state_options, value="all", clearable=False,
                                   searchable=False, className="gm-tk-select gm-tk-filter")],
                     className="gm-tk-items-head"),
            html.Div(id=ids.TASK_ITEMS, className="gm-tk-items"),
            html.Details([html.Summary(html.Span(tc.bi("tasks.history")), className="gm-ae-summary"),
                          html.Div(id=ids.TASK_HISTORY, className="gm-tk-history-box")], open=False,
                         className="gm-ae-box"),
        ],
        id=ids.TASK_DETAIL, className="gm-tk-detail gm-ae-hidden",
    )
    return html.Div(
        html.Div([html.Div(id=ids.TASK_ROUNDS_MESSAGE, className="gm-tk-pad-x"), listing, detail],
                 className="gm-ae-scroll"),
        id=ids.TASK_SECTION_LIST, className="gm-tk-section gm-ae-hidden",
    )


def _items_bounds(session, task_id: int | None) -> list[list[float]] | None:
    """The map's first view of an opened task: around its items (those the user may see)."""
    if not task_id:
        return None
    try:
        items = tasks.task_items(session, task_id, _now(), principal=current_principal())
    except GridmapError:
        return None
    if not items:
        return None
    lats, lons = [i.lat for i in items], [i.lon for i in items]
    return [[min(lats), min(lons)], [max(lats), max(lons)]]


def _forbidden(lang: str) -> html.Div:
    principal = current_principal()
    children: list = [html.B(tc.bi("tasks.forbidden"))]
    if principal is not None and principal.may(access_rules.WORK_TASKS):
        children.append(html.Div(dcc.Link(tc.bi("tasks.go_field"), href=dash.get_relative_path("/field"))))
    return html.Div(children, id="tasks-forbidden", className="gm-error")


def layout(task: str | None = None, grid: str | None = None, **_query) -> html.Div:
    settings = current_settings()
    lang = normalise(settings.default_language)
    principal = current_principal()
    if not _may_manage():
        return _forbidden(lang)
    current = int(task) if task and task.isdigit() else None
    try:
        with session_scope(settings.database_url) as session:
            focus = [int(grid)] if grid and grid.isdigit() and int(grid) in principal.grid_ids else principal.grid_ids
            bounds = _items_bounds(session, current) or tasks.area_bounds(session, grid_ids=focus)
            task_types = [tt for tt in tasks.list_task_types(session) if tt.code != tasks.CONTACT_ROUND]
            areas = area_editing.editable_areas(session, lang)
            risk_names = {f"{r['scheme']}:{r['code']}": r["name"] for r in layers.risk_legend(session, lang)}
            version = data_version(session).version
    except DatabaseUnavailable as exc:
        return html.Div([html.B(t("tasks.db", lang)), html.Div(str(exc))], className="gm-error")
    if bounds is None:
        return html.Div(t("error.empty", lang), className="gm-error")
    may_validate = principal.role in settings.task_validator_roles
    panel = html.Aside(
        [
            html.Div(
                [html.Div(tc.bi("tasks.page_title"), className="gm-card-kind"),
                 html.Div([html.Button(tc.bi("tasks.tab_new"), id=ids.TASK_TAB_NEW, n_clicks=0, className="gm-tk-tab"),
                           html.Button(tc.bi("tasks.tab_list"), id=ids.TASK_TAB_LIST, n_clicks=0,
                                       className="gm-tk-tab")], className="gm-tk-tabs")],
                className="gm-ae-head gm-tk-head",
            ),
            _new_section(lang, task_types, areas),
            _list_section(lang, may_validate),
        ],
        className="gm-ae-panel gm-tk-panel",
    )
    return html.Div(
        className="gm-map-page gm-ae-page gm-tk-page",
        children=[
            html.Div([_map(settings, bounds, lang, risk_names, version), _toolbar(lang),
                      html.Div(tc.state_legend(lang), id=f"{ids.TASK_MAP_WRAP}-legend"),
                      html.Div(t("tasks.zoom_in", lang), id=ids.TASK_ZOOM_HINT,
                               className=map_view.hint_class(settings, bounds))],
                     id=ids.TASK_MAP_WRAP, className="gm-map-wrap gm-tk-map-wrap"),
            panel,
            dcc.Store(id=ids.TASK_SELECTION, data=dict(EMPTY_SELECTION)),
            dcc.Store(id=ids.TASK_LOAD, data=None),
            dcc.Store(id=ids.TASK_TAB, data="list" if current else "new"),
            dcc.Store(id=ids.TASK_CURRENT, data=current),
            dcc.Store(id=ids.TASK_VERSION, data=None),
            dcc.Store(id=ids.TASK_ITEM, data=None),
            dcc.Store(id=ids.TASK_ITEM_VERSION, data=None),
            *tc.data_poll("tasks", version),
            *map_view.view_stores(ids.TASK_MAP, ids.TASK_VIEW_CONFIG, settings, version, VIEW_LAYERS),
        ],
    )


# --- callbacks in the browser ------------------------------------------------------------------------

# The map's view -> its layers' URLs and the zoom-in hint (as on the command map).
map_view.register_view_urls(ids.TASK_MAP, ids.TASK_VIEW_CONFIG, ids.TASK_ZOOM_HINT,
                            [ids.task_layer(m.name) for m in VIEW_LAYERS])

# A drawing from the server into the editor (cleared after a task is created).
dash.clientside_callback(
    "function(data) { return window.gridmap.areas.load(data); }",
    Output(ids.TASK_EDIT, "geojson"),
    Input(ids.TASK_LOAD, "data"),
    prevent_initial_call=True,
)

# Which tab and part of the panel shows, and the map's mode classes (the draw toolbar only when
# drawing, a crosshair when picking, the tools only while making a new task).
dash.clientside_callback(
    """function(tab, current, mode) {
        var isNew = tab !== "list";
        var hide = " gm-ae-hidden";
        var pick = (mode === "grid" || mode === "buildings" || mode === "key_persons") ? " gm-ae-picking" : "";
        return [
            "gm-tk-tab" + (isNew ? " gm-tk-tab-active" : ""),
            "gm-tk-tab" + (isNew ? "" : " gm-tk-tab-active"),
            "gm-tk-section" + (isNew ? "" : hide),
            "gm-tk-section" + (isNew ? hide : ""),
            "gm-tk-listing" + (current ? hide : ""),
            "gm-tk-detail" + (current ? "" : hide),
            "gm-map-wrap gm-tk-map-wrap gm-tk-mode-" + (mode || "drawn_area") + (isNew ? " gm-tk-new" + pick : " gm-tk-view"),
            "gm-ae-field" + (mode === "controlled_area" ? "" : hide),
            "gm-ae-field" + (mode === "key_persons" ? "" : hide)
        ];
    }""",
    Output(ids.TASK_TAB_NEW, "className"),
    Output(ids.TASK_TAB_LIST, "className"),
    Output(ids.TASK_SECTION_NEW, "className"),
    Output(ids.TASK_SECTION_LIST, "className"),
    Output(f"{ids.TASK_LIST}-wrap", "className"),
    Output(ids.TASK_DETAIL, "className"),
    Output(ids.TASK_MAP_WRAP, "className"),
    Output(ids.TASK_AREA_FIELD, "className"),
    Output(ids.TASK_PERSONS_FIELD, "className"),
    Input(ids.TASK_TAB, "data"),
    Input(ids.TASK_CURRENT, "data"),
    Input(ids.TASK_MODE, "value"),
)


# --- callbacks: read inputs, call one service, format the output ------------------------------------


@dash.callback(
    Output(ids.TASK_TAB, "data"),
    Input(ids.TASK_TAB_NEW, "n_clicks"),
    Input(ids.TASK_TAB_LIST, "n_clicks"),
    prevent_initial_call=True,
)
def choose_tab(_new, _list):
    return "new" if ctx.triggered_id == ids.TASK_TAB_NEW else "list"


@dash.callback(
    Output(ids.TASK_MODE_HINT, "children"),
    Output(ids.TASK_TITLE, "placeholder"),
    Output(ids.TASK_AREA_PICK, "placeholder"),
    Output(ids.TASK_VALIDATE_NOTE, "placeholder"),
    Output(ids.TASK_TYPE, "options"),
    Output(ids.TASK_STATE_FILTER, "options"),
    Output(f"{ids.TASK_MAP_WRAP}-legend", "children"),
    Output(ids.TASK_ZOOM_HINT, "children"),
    Input(ids.TASK_MODE, "value"),
    Input(ids.LANG_STORE, "data"),
)
def translate(mode: str | None, lang: str | None):
    lang = _lang(lang)
    settings = current_settings()
    try:
        with session_scope(settings.database_url) as session:
            types = [tt for tt in tasks.list_task_types(session) if tt.code != tasks.CONTACT_ROUND]
    except DatabaseUnavailable:
        types = []
    type_options = [{"label": tt.name_en if lang == "en" else tt.name_zh, "value": tt.code} for tt in types]
    state_options = [{"label": t("tasks.filter_all", lang), "value": "all"},
                     *({"label": tc.state_name(s, lang), "value": s} for s in tc.STATE_ORDER)]
    return (t(f"tasks.hint.{mode or 'drawn_area'}", lang), t("tasks.title_placeholder", lang),
            t("tasks.area_placeholder", lang), t("tasks.validate_note", lang), type_options or no_update,
            state_options, tc.state_legend(lang), t("tasks.zoom_in", lang))


@dash.callback(
    Output(ids.TASK_DUE, "value"),
    Input(ids.TASK_TYPE, "value"),
)
def default_due(type_code: str | None):
    """The type's usual time to finish, from now, in local time; the user may change it."""
    if not type_code:
        raise PreventUpdate
    settings = current_settings()
    try:
        with session_scope(settings.database_url) as session:
            ttype = tasks.get_task_type(session, type_code)
    except (DatabaseUnavailable, GridmapError):
        raise PreventUpdate from None
    due = (_now() + timedelta(hours=ttype.default_due_hours)).astimezone(zone(settings.timezone))
    return due.strftime("%Y-%m-%d %H:%M")


def _parse_due(value: str | None, timezone: str) -> datetime | None:
    if not (value or "").strip():
        return None
    try:
        return datetime.strptime(value.strip(), "%Y-%m-%d %H:%M").replace(tzinfo=zone(timezone))
    except ValueError as exc:
        raise InvalidInput(f"完成时限格式应为 YYYY-MM-DD HH:MM / the due time is YYYY-MM-DD HH:MM, not {value!r}",
                           code="bad_due") from exc


@dash.callback(
    Output(ids.TASK_SELECTION, "data"),
    Output(ids.TASK_PERSONS, "value"),
    Output(ids.TASK_LOAD, "data"),
    Output(ids.TASK_MESSAGE, "children"),
    Input(ids.TASK_MAP, "clickData"),
    Input(ids.TASK_AREA_PICK, "value"),
    Input(ids.TASK_PERSONS, "value"),
    Input(ids.TASK_PERSONS_ALL, "n_clicks"),
    Input(ids.TASK_CLEAR, "n_clicks"),
    Input(ids.TASK_MODE, "value"),
    State(ids.TASK_SELECTION, "data"),
    State(ids.TASK_PERSONS, "options"),
    State(ids.TASK_TAB, "data"),
    State(ids.LANG_STORE, "data"),
    prevent_initial_call=True,
)
def update_selection(click, area_key, persons, _all, _clear, mode, selection, person_options, tab, lang):
    """What is selected: a grid or buildings clicked on the map, an area picked, key persons ticked."""
    lang = _lang(lang)
    sel = {**EMPTY_SELECTION, **(selection or {})}
    trigger = ctx.triggered_id
    if trigger == ids.TASK_CLEAR:
        load = {"geojson": EMPTY_FC, "fit": False, "seq": _now().timestamp()}
        return dict(EMPTY_SELECTION), [], load, None
    if trigger == ids.TASK_MODE:
        return sel, no_update, no_update, None
    if trigger == ids.TASK_AREA_PICK:
        return {**sel, "area_key": area_key}, no_update, no_update, None
    if trigger == ids.TASK_PERSONS:
        return {**sel, "key_person_ids": list(persons or [])}, no_update, no_update, no_update
    if trigger == ids.TASK_PERSONS_ALL:
        every = [o["value"] for o in person_options or []]
        return {**sel, "key_person_ids": every}, every, no_update, None
    layer = PICK_LAYER.get(mode or "")
    latlng = (click or {}).get("latlng")
    if layer is None or not latlng or tab == "list":  # the map picks only while making a new task
        raise PreventUpdate
    principal = current_principal()
    try:
        with session_scope(current_settings().database_url) as session:
            fid = area_editing.feature_at(session, layer, latlng["lng"], latlng["lat"])
            if fid is not None and layer == "grid":
                access.require_in_area(principal, grid_id=fid)
    except DatabaseUnavailable as exc:
        return no_update, no_update, no_update, _db_problem(lang, exc)
    except GridmapError as exc:
        return no_update, no_update, no_update, _error(lang, exc, "tasks.not_selected")
    if fid is None:
        return no_update, no_update, no_update, tc.problem(t("tasks.nothing_here", lang), "", "warning")
    if layer == "grid":
        if fid == sel.get("grid_id"):
            raise PreventUpdate
        return {**sel, "grid_id": fid, "key_person_ids": []}, [], no_update, None
    chosen = list(sel.get("building_ids") or [])
    chosen = [b for b in chosen if b != fid] if fid in chosen else [*chosen, fid]
    return {**sel, "building_ids": chosen}, no_update, no_update, None


@dash.callback(
    Output(ids.TASK_SELECTION_INFO, "children"),
    Output(ids.TASK_PERSONS, "options"),
    [Output(ids.task_layer(layer), "hideout") for layer in SELECTABLE],
    Input(ids.TASK_SELECTION, "data"),
    Input(ids.TASK_MODE, "value"),
    Input(ids.TASK_EDIT, "geojson"),
    Input(ids.LANG_STORE, "data"),
    [State(ids.task_layer(layer), "hideout") for layer in SELECTABLE],
)
def show_selection(selection, mode, drawing, lang, *hideouts):
    """The selection in words, the key persons of the picked grid, and what is outlined on the map."""
    lang = _lang(lang)
    mode = mode or "drawn_area"
    sel = {**EMPTY_SELECTION, **(selection or {})}
    principal = current_principal()
    grid = None
    options: list = []
    settings = current_settings()
    risk_names = (hideouts[0] or {}).get("riskNames") or {}
    try:
        with session_scope(settings.database_url) as session:
            if sel.get("grid_id") and mode in ("grid", "key_persons"):
                grid = tasks.grid_choice(session, sel["grid_id"], principal=principal)
                if mode == "key_persons":
                    persons = access.list_key_persons(session, principal, grid_id=grid.id)
                    options = tc.person_options(persons, lang)
            if (hideouts[0] or {}).get("t") != js_labels(lang):
                risk_names = {f"{r['scheme']}:{r['code']}": r["name"] for r in layers.risk_legend(session, lang)}
    except DatabaseUnavailable as exc:
        return _db_problem(lang, exc), [], *[no_update] * len(SELECTABLE)
    except GridmapError as exc:
        return _error(lang, exc, "tasks.not_selected"), [], *[no_update] * len(SELECTABLE)
    selected = {
        "grid": sel.get("grid_id") if mode in ("grid", "key_persons") else None,
        "building": list(sel.get("building_ids") or []) if mode == "buildings" else None,
        "controlled_area": sel.get("area_key") if mode == "controlled_area" else None,
    }
    new_hideouts = []
    for layer, current in zip(SELECTABLE, hideouts, strict=True):
        wanted = _hideout(layer, lang, risk_names, selected[layer])
        new_hideouts.append(no_update if wanted == current else wanted)
    info = tc.selection_info(mode, sel, grid, lang, len((drawing or {}).get("features") or []))
    if mode == "key_persons" and grid is not None and not options:
        info.append(html.Div(t("tasks.no_persons", lang), className="gm-ae-muted"))
    return info, options, *new_hideouts


def _selection(mode: str, drawing: dict | None, sel: dict, settings) -> Selection | None:
    """The services' Selection for what the user picked; None while nothing is picked yet."""
    if mode == "drawn_area":
        if not (drawing or {}).get("features"):
            return None
        return Selection.drawn_area(area_editing.drawing_geometry(drawing, settings))
    if mode == "controlled_area":
        return Selection.controlled_area(sel["area_key"]) if sel.get("area_key") else None
    if mode == "grid":
        return Selection.grid(sel["grid_id"]) if sel.get("grid_id") else None
    if mode == "buildings":
        return Selection.buildings(sel["building_ids"]) if sel.get("building_ids") else None
    if mode == "key_persons":
        return Selection.key_persons(sel["key_person_ids"]) if sel.get("key_person_ids") else None
    raise InvalidInput(f"未知选择方式 / unknown selection kind {mode!r}", code="bad_selection")


@dash.callback(
    Output(ids.TASK_PREVIEW, "children"),
    Output(ids.TASK_CREATE, "disabled"),
    Output(ids.TASK_TITLE, "placeholder", allow_duplicate=True),
    Input(ids.TASK_EDIT, "geojson"),
    Input(ids.TASK_SELECTION, "data"),
    Input(ids.TASK_MODE, "value"),
    Input(ids.TASK_TYPE, "value"),
    Input(ids.LANG_STORE, "data"),
    prevent_initial_call="initial_duplicate",
)
def preview(drawing, selection, mode, type_code, lang):
    """How many items the selection makes and whom they go to, live, before anything is written."""
    lang = _lang(lang)
    mode = mode or "drawn_area"
    settings = current_settings()
    empty = tc.empty(t("tasks.empty_title", lang), t(f"tasks.hint.{mode}", lang), "map")
    if not type_code:
        return empty, True, no_update
    try:
        chosen = _selection(mode, drawing, {**EMPTY_SELECTION, **(selection or {})}, settings)
        if chosen is None:
            return empty, True, t("tasks.title_placeholder", lang)
        with session_scope(settings.database_url) as session:
            result = tasks.preview_task(session, settings, type_code=type_code, selection=chosen,
                                        principal=current_principal())
    except DatabaseUnavailable as exc:
        return _db_problem(lang, exc), True, no_update
    except GridmapError as exc:
        return html.Div(_error(lang, exc, "tasks.cannot_create"), className="gm-ae-preview-error"), True, no_update
    return tc.preview_panel(result, lang), False, result.default_title


@dash.callback(
    Output(ids.TASK_MESSAGE, "children", allow_duplicate=True),
    Output(ids.TASK_CURRENT, "data", allow_duplicate=True),
    Output(ids.TASK_TAB, "data", allow_duplicate=True),
    Output(ids.TASK_SELECTION, "data", allow_duplicate=True),
    Output(ids.TASK_LOAD, "data", allow_duplicate=True),
    Output(ids.TASK_TITLE, "value"),
    Output(ids.TASK_ROUNDS_MESSAGE, "children", allow_duplicate=True),
    Output(VERSION, "data", allow_duplicate=True),
    Input(ids.TASK_CREATE, "n_clicks"),
    State(ids.TASK_MODE, "value"),
    State(ids.TASK_EDIT, "geojson"),
    State(ids.TASK_SELECTION, "data"),
    State(ids.TASK_TYPE, "value"),
    State(ids.TASK_TITLE, "value"),
    State(ids.TASK_DUE, "value"),
    State(VERSION, "data"),
    State(ids.LANG_STORE, "data"),
    prevent_initial_call=True,
)
def create(n_clicks, mode, drawing, selection, type_code, title, due, version, lang):
    if not n_clicks:
        raise PreventUpdate
    lang = _lang(lang)
    fail = (no_update,) * 7
    if not _may_manage():
        return tc.problem(t("tasks.not_done", lang), t("tasks.forbidden", lang)), *fail
    settings = current_settings()
    try:
        chosen = _selection(mode or "drawn_area", drawing, {**EMPTY_SELECTION, **(selection or {})}, settings)
        if chosen is None:
            return tc.problem(t("tasks.empty_title", lang), "", "warning"), *fail
        due_at = _parse_due(due, settings.timezone)
        with session_scope(settings.database_url) as session:
            made = tasks.create_task(session, settings, type_code=type_code, selection=chosen, created_by=_author(),
                                     now=_now(), title=(title or "").strip() or None, due_at=due_at,
                                     principal=current_principal())
        new_version = _version()
    except DatabaseUnavailable as exc:
        return _db_problem(lang, exc), *fail
    except GridmapError as exc:
        return _error(lang, exc, "tasks.cannot_create"), *fail
    done = tc.problem(tc.tr("tasks.created_msg", lang, title=made.title, n=tc.num(made.items)), "", "success")
    load = {"geojson": EMPTY_FC, "fit": False, "seq": _now().timestamp()}
    return (None, made.id, "list", dict(EMPTY_SELECTION), load, "", done, tc.bumped(version, new_version))


@dash.callback(
    Output(ids.TASK_ROUNDS_MESSAGE, "children", allow_duplicate=True),
    Output(VERSION, "data", allow_duplicate=True),
    Input(ids.TASK_ROUNDS, "n_clicks"),
    State(VERSION, "data"),
    State(ids.LANG_STORE, "data"),
    prevent_initial_call=True,
)
def contact_rounds(n_clicks, version, lang):
    """This week's contact rounds (每周联系不少于2次) for the vulnerable key persons of the area."""
    if not n_clicks:
        raise PreventUpdate
    lang = _lang(lang)
    settings = current_settings()
    now = _now()
    rounds, new_version, problem = _write(lambda session: tasks.generate_contact_rounds(
        session, settings, now, local_date(now, zone(settings.timezone)), principal=current_principal()))
    if problem:
        return _problem(lang, problem), no_update
    text = tc.tr("tasks.rounds_done", lang, week=rounds.week_start.isoformat(), tasks=rounds.tasks_created,
                 items=tc.num(rounds.items_created), persons=tc.num(rounds.persons))
    return tc.problem(text, "", "success" if rounds.items_created else "info"), tc.bumped(version, new_version)


@dash.callback(
    Output(ids.TASK_LIST, "children"),
    Output(ids.TASK_OVERDUE, "children"),
    Output(ids.TASK_TAB_LIST, "children"),
    Input(VERSION, "data"),
    Input(ids.TASK_CURRENT, "data"),
    Input(ids.TASK_SHOW_CLOSED, "value"),
    Input(ids.LANG_STORE, "data"),
)
def list_tasks(_version_data, current, show_closed, lang):
    """Every task reaching into the user's area, by due time, with progress; the overdue alarm on top."""
    lang = _lang(lang)
    settings = current_settings()
    principal = current_principal()
    now = _now()
    try:
        with session_scope(settings.database_url) as session:
            summaries = tasks.list_tasks(session, now, include_closed=bool(show_closed), principal=principal)
            late = tasks.overdue_items(session, now, principal=principal)
    except DatabaseUnavailable as exc:
        return _db_problem(lang, exc), None, no_update
    label = [*tc.bi("tasks.tab_list"), html.Span(str(sum(1 for s in summaries if s.status == "open")),
                                                  className="gm-tk-tab-count")]
    return tc.task_list(summaries, lang, settings.timezone, now, current), tc.overdue_alert(late, lang), label


@dash.callback(
    Output(ids.TASK_CURRENT, "data", allow_duplicate=True),
    Output(ids.TASK_ITEM, "data", allow_duplicate=True),
    Output(ids.TASK_ITEM_MESSAGE, "children", allow_duplicate=True),
    Input({"type": ids.TASK_OPEN, "task": ALL}, "n_clicks"),
    Input(ids.TASK_BACK, "n_clicks"),
    prevent_initial_call=True,
)
def open_task(_opens, _back):
    if ctx.triggered_id == ids.TASK_BACK:
        if not ctx.triggered[0]["value"]:
            raise PreventUpdate
        return None, None, None
    if not isinstance(ctx.triggered_id, dict) or not ctx.triggered[0]["value"]:
        raise PreventUpdate  # the cards fire when they are (re)drawn, with no click
    return ctx.triggered_id["task"], None, None


@dash.callback(
    Output(ids.TASK_DETAIL_HEAD, "children"),
    Output(ids.TASK_PROGRESS, "children"),
    Output(ids.TASK_ITEMS, "children"),
    Output(ids.TASK_HISTORY, "children"),
    Output(ids.TASK_ITEMS_LAYER, "url"),
    Output(ids.TASK_ITEMS_LAYER, "zoomToBounds"),
    Output(ids.TASK_VERSION, "data"),
    Output(ids.TASK_CLOSE, "disabled"),
    Input(ids.TASK_CURRENT, "data"),
    Input(VERSION, "data"),
    Input(ids.TASK_STATE_FILTER, "value"),
    Input(ids.LANG_STORE, "data"),
    State(ids.TASK_ITEM, "data"),
    State(ids.TASK_ITEMS_LAYER, "url"),
)
def show_task(current, version_data, state_filter, lang, item, url):
    """The open task: its facts, progress, items (table and map, coloured by state) and history.

    Choosing an item does not come through here (it only marks a row and a point: mark_item), so a
    click never rebuilds the table or refetches the map.
    """
    lang = _lang(lang)
    if not current:
        return None, None, None, None, (None if url else no_update), no_update, None, True
    settings = current_settings()
    principal = current_principal()
    now = _now()
    try:
        with session_scope(settings.database_url) as session:
            summary = tasks.get_task(session, current, now, principal=principal)
            items = tasks.task_items(session, current, now, principal=principal)
            history = tasks.task_history(session, current, principal=principal)
    except DatabaseUnavailable as exc:
        return _db_problem(lang, exc), None, None, None, no_update, no_update, None, True
    except GridmapError as exc:
        return _error(lang, exc, "tasks.cannot_open"), None, None, None, None, no_update, None, True
    shown = items if state_filter in (None, "all") else [i for i in items if i.effective_state == state_filter]
    rev = (version_data or {}).get("version", 0)
    new_url = f"{dash.get_relative_path(f'/api/tasks/{current}/items.geojson')}?v={rev}"
    by_id = {i.id: i for i in items}
    return (
        tc.detail_head(summary, lang, settings.timezone),
        tc.progress_bar(summary.counts, lang, element_id=f"{ids.TASK_PROGRESS}-bar", large=True),
        tc.items_table(shown, lang, settings.timezone, item),
        tc.history_list(history, by_id, lang, settings.timezone),
        new_url if new_url != url else no_update,
        # the map goes to a task's items when it is opened, and stays put when they refresh
        ctx.triggered_id in (None, ids.TASK_CURRENT),
        summary.version,
        summary.status != "open",
    )


@dash.callback(
    Output(ids.TASK_ITEMS_LAYER, "hideout"),
    Input(ids.TASK_ITEM, "data"),
    Input(ids.LANG_STORE, "data"),
    State(ids.TASK_ITEMS_LAYER, "hideout"),
)
def item_hideout(item, lang, hideout):
    """The chosen item stands out on the map; the tooltips speak the page's language."""
    wanted = _items_hideout(_lang(lang), item)
    if wanted == hideout:
        raise PreventUpdate
    return wanted


# The chosen item's row is marked in the table in the browser (no round trip, no re-render).
dash.clientside_callback(
    """function(item) {
        document.querySelectorAll("tr.gm-tk-row").forEach(function (tr) {
            tr.classList.toggle("gm-tk-row-selected", String(item) === tr.dataset.item);
        });
        return window.dash_clientside.no_update;
    }""",
    Output(ids.TASK_ITEMS, "title"),
    Input(ids.TASK_ITEM, "data"),
    prevent_initial_call=True,
)


@dash.callback(
    Output(ids.TASK_ITEM, "data"),
    Output(ids.TASK_ITEM_MESSAGE, "children", allow_duplicate=True),
    Input({"type": ids.TASK_ITEM_PICK, "item": ALL}, "n_clicks"),
    Input(ids.TASK_ITEMS_LAYER, "clickData"),
    prevent_initial_call=True,
)
def pick_item(_clicks, feature):
    """An item chosen in the table or clicked on the map."""
    trigger = ctx.triggered_id
    if isinstance(trigger, dict):
        if not ctx.triggered[0]["value"]:
            raise PreventUpdate
        return trigger["item"], None
    fid = (feature or {}).get("id")
    if fid is None:
        raise PreventUpdate
    return int(fid), None


@dash.callback(
    Output(ids.TASK_ITEM_BOX, "children"),
    Output(f"{ids.TASK_ITEM_BOX}-wrap", "className"),
    Output(ids.TASK_REASSIGN_TO, "options"),
    Output(ids.TASK_REASSIGN_TO, "value"),
    Output(f"{ids.TASK_REASSIGN}-box", "className"),
    Output(f"{ids.TASK_VALIDATE}-box", "className"),
    Output(ids.TASK_ITEM_VERSION, "data"),
    Input(ids.TASK_ITEM, "data"),
    Input(VERSION, "data"),
    Input(ids.LANG_STORE, "data"),
)
def show_item(item_id, _version_data, lang):
    """The selected item: its facts, whom to give it to instead, and (community workers) validation."""
    lang = _lang(lang)
    hidden = "gm-tk-item-box gm-ae-hidden"
    if not item_id:
        return None, hidden, [], None, "gm-tk-reassign", "gm-tk-validate gm-ae-hidden", None
    settings = current_settings()
    principal = current_principal()
    try:
        with session_scope(settings.database_url) as session:
            item = tasks.get_item(session, item_id, _now(), principal=principal)
            staff = tasks.staff_choices(session, item.community_id)
    except DatabaseUnavailable as exc:
        return _db_problem(lang, exc), "gm-tk-item-box", [], None, "gm-ae-hidden", "gm-ae-hidden", None
    except GridmapError as exc:
        return _error(lang, exc, "tasks.cannot_open"), "gm-tk-item-box", [], None, "gm-ae-hidden", "gm-ae-hidden", None
    unfinished = item.effective_state in ("open", "locked", "invalidated")
    may_validate = (principal is not None and principal.role in settings.task_validator_roles
                    and item.effective_state in ("done", "failed"))
    return (
        tc.item_facts(item, lang, settings.timezone),
        "gm-tk-item-box",
        tc.staff_options(staff, lang),
        item.assigned_staff_id,
        "gm-tk-reassign" + ("" if unfinished else " gm-ae-hidden"),
        "gm-tk-validate" + ("" if may_validate else " gm-ae-hidden"),
        item.version,
    )


@dash.callback(
    Output(ids.TASK_ITEM_MESSAGE, "children", allow_duplicate=True),
    Output(VERSION, "data", allow_duplicate=True),
    Input(ids.TASK_REASSIGN, "n_clicks"),
    State(ids.TASK_ITEM, "data"),
    State(ids.TASK_REASSIGN_TO, "value"),
    State(ids.TASK_ITEM_VERSION, "data"),
    State(VERSION, "data"),
    State(ids.LANG_STORE, "data"),
    prevent_initial_call=True,
)
def reassign(n_clicks, item_id, staff_id, item_version, version, lang):
    """Give the item to another staff member by hand, from the version shown (a stale one is refused)."""
    if not n_clicks or not item_id or not staff_id:
        raise PreventUpdate
    lang = _lang(lang)
    item, new_version, problem = _write(lambda session: tasks.reassign_item(
        session, item_id, staff_id, actor=_author(), now=_now(), base_version=item_version,
        principal=current_principal()))
    if problem:
        return _problem(lang, problem), no_update
    return (tc.problem(tc.tr("tasks.reassigned_msg", lang, name=item.assigned_name or "?"), "", "success"),
            tc.bumped(version, new_version))


@dash.callback(
    Output(ids.TASK_ITEM_MESSAGE, "children", allow_duplicate=True),
    Output(VERSION, "data", allow_duplicate=True),
    Output(ids.TASK_VALIDATE_NOTE, "value"),
    Input(ids.TASK_VALIDATE, "n_clicks"),
    Input(ids.TASK_INVALIDATE, "n_clicks"),
    State(ids.TASK_ITEM, "data"),
    State(ids.TASK_VALIDATE_NOTE, "value"),
    State(VERSION, "data"),
    State(ids.LANG_STORE, "data"),
    prevent_initial_call=True,
)
def validate(_ok, _back, item_id, note, version, lang):
    """A community worker accepts a finished item (验收) or sends it back with a note (退回重做)."""
    if not item_id or not ctx.triggered or not ctx.triggered[0]["value"]:
        raise PreventUpdate
    lang = _lang(lang)
    valid = ctx.triggered_id == ids.TASK_VALIDATE
    settings = current_settings()
    principal = current_principal()

    def run(session) -> bool:
        me = tasks.acting_staff(session, principal)
        if me is None:
            return False
        tasks.validate_item(session, item_id, me.id, valid=valid, note=note or "", now=_now(), settings=settings,
                            principal=principal)
        return True

    acted, new_version, problem = _write(run)
    if problem:
        return _problem(lang, problem), no_update, no_update
    if not acted:
        return tc.problem(t("tasks.not_done", lang), t("field.no_staff_short", lang)), no_update, no_update
    key = "tasks.validated_msg" if valid else "tasks.invalidated_msg"
    return tc.problem(t(key, lang), "", "success" if valid else "info"), tc.bumped(version, new_version), ""


@dash.callback(
    Output(ids.TASK_ROUNDS_MESSAGE, "children", allow_duplicate=True),
    Output(VERSION, "data", allow_duplicate=True),
    Input(ids.TASK_CLOSE, "n_clicks"),
    State(ids.TASK_CURRENT, "data"),
    State(ids.TASK_VERSION, "data"),
    State(VERSION, "data"),
    State(ids.LANG_STORE, "data"),
    prevent_initial_call=True,
)
def close(n_clicks, current, task_version, version, lang):
    """Close the open task from the version shown; refused when someone changed it meanwhile."""
    if not n_clicks or not current or task_version is None:
        raise PreventUpdate
    lang = _lang(lang)
    closed, new_version, problem = _write(lambda session: tasks.close_task(
        session, current, base_version=task_version, actor=_author(), now=_now(), principal=current_principal()))
    if problem:
        return _problem(lang, problem), no_update
    return tc.problem(tc.tr("tasks.closed_msg", lang, title=closed.title), "", "info"), tc.bumped(version, new_version)
