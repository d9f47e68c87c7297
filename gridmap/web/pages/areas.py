"""The controlled-area editor (path "/areas"): draw or redraw a sealed / controlled / precaution
area (or a tier) on the district map, see its impact live while editing, and save it as a version.

The map holds the district's grids, compounds, buildings and the current areas (loaded by URL
from web/routes.py like the command map) under an editable dl.FeatureGroup with dash-leaflet's
EditControl. A whole city (issue 8) is drawn as on the command map (web/map_view.py): district,
communities and grids come generalised for the zoom band, compounds, buildings and gates only for
the viewport and from their minimum zoom on, with a hint to zoom in; the current areas come whole,
as stored (few, and the one being edited is compared against them). The "add a whole ..." tools
pick on the server by the clicked point, so what is drawn only needs to be visible. assets/gridmap.js (``gridmap.areas``) reports the editor's polygons as the
EditControl's ``geojson`` on every draw, vertex drag, delete or load; the callbacks here read it,
call one service (services.area_editing / services.areas) and format the answer
(web/area_components.py). Browser-side state lives in dcc.Store: the version the user started
from (``AREA_BASE``) is what a save is checked against, so a stale save is refused and the drawing
stays on the map.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

import dash
import dash_leaflet as dl
from dash import ALL, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from gridmap.db.session import DatabaseUnavailable, session_scope
from gridmap.domain.access import EDIT_AREA
from gridmap.domain.errors import GridmapError
from gridmap.services import area_editing, areas, layers
from gridmap.services.area_editing import DrawingError
from gridmap.services.areas import AreaConflict, ReasonRequired
from gridmap.services.changes import data_version
from gridmap.web import area_components as ac
from gridmap.web import ids, map_view
from gridmap.web.auth import current_principal
from gridmap.web.components import call_service
from gridmap.web.context import current_settings
from gridmap.web.i18n import LANGUAGES, STRINGS, both, js_labels, normalise, t

dash.register_page(
    __name__,
    path="/areas",
    name="Area editor",
    title="管控区域划定 · Controlled areas",
    nav_key="nav.areas",
    order=1,
)

# The editor's tools; "add_*" click a feature of that layer to add all of it, "cut" takes the next
# shape drawn out of the area.
MODES = ("draw", "add_compound", "add_building", "add_grid", "cut")
PICK_LAYER = {"add_compound": "compound", "add_building": "building", "add_grid": "grid"}
DEFAULT_CLASS = "controlled"


# Dash executes page modules before putting them in sys.modules, so no @dataclass here.
class BackLayer(NamedTuple):
    name: str  # a layer of services.layers
    checked: bool
    paned: bool = True  # polygons get a pane below the editor (z-order in gridmap.css)


BACK_LAYERS: tuple[BackLayer, ...] = (
    BackLayer("district", True),
    BackLayer("community", True),
    BackLayer("grid", True),
    BackLayer("compound", True),
    BackLayer("building", True),
    BackLayer("controlled_area", True),
    BackLayer("gate", False, paned=False),
)
AREAS_LAYER = ids.area_layer("controlled_area")
# Layers whose URL follows the map's view (map_view): all but the current areas, which the
# callback ``areas_layer`` refetches after a save. Compounds, buildings and gates are viewport
# layers (settings.map_viewport_min_zoom); the others are generalised per zoom band.
VIEW_LAYERS: tuple[map_view.ViewLayer, ...] = tuple(
    map_view.ViewLayer(m.name, m.name in ("district", "community", "grid"))
    for m in BACK_LAYERS if m.name != "controlled_area"
)

_FN = "gridmap."
# Leaflet.draw's strings, sent to gridmap.areas.configure in both languages.
_DRAW_KEYS = tuple(k for k in STRINGS if k.startswith("areas.draw."))


def current_author(operator: str | None) -> str:
    """The name a save, revert or lift is recorded under: the logged-in user's, else the operator's.

    Every write of this page takes its author from here. Without a log-in (an app run without the
    access guard) it is what was typed in "操作人 / Operator", kept in the browser's localStorage.
    """
    principal = current_principal()
    if principal is not None:
        return principal.display_name or principal.username
    return (operator or "").strip()


def may_edit() -> bool:
    """Whether the user may change controlled areas (everyone may preview)."""
    principal = current_principal()
    return principal is None or principal.may(EDIT_AREA)


def _now() -> datetime:
    return datetime.now(UTC)


def _rules() -> dict:
    s = current_settings()
    return {"shifts": s.checkpoint_shifts_per_day, "staff": s.checkpoint_staff_per_shift}


def _db_message(lang: str, exc: Exception) -> html.Div:
    return ac.problem(t("areas.error_db", lang), str(exc))


def _forbidden(lang: str) -> html.Div:
    return ac.problem(t("areas.not_saved", lang), t("areas.hint_forbidden", lang))


def _error_message(lang: str, exc: GridmapError) -> html.Div:
    return ac.problem(t("areas.not_saved", lang), exc.message)


def _problem(lang: str, exc: Exception) -> html.Div:
    """What call_service's problem says: the database is down, or why the service refused."""
    return _db_message(lang, exc) if isinstance(exc, DatabaseUnavailable) else _error_message(lang, exc)


# --- layout --------------------------------------------------------------------------------------


def _hideout(layer: str, lang: str, risk_names: dict, editing: int | None = None) -> dict:
    hideout = {"layer": layer, "t": js_labels(lang), "riskNames": risk_names, "kindNames": {}}
    if layer == "controlled_area":
        hideout["editing"] = editing
    return hideout


def _risk_names(risk_classes: list[dict]) -> dict:
    return {f"{r['scheme']}:{r['code']}": r["name"] for r in risk_classes}


def _layer_url(layer: str, revision: int = 0) -> str:
    url = dash.get_relative_path(f"/api/layers/{layer}.geojson")
    return f"{url}?rev={revision}" if revision else url


def _back_layer(m: BackLayer, lang: str, risk_names: dict, editing: int | None, url: str | None) -> dl.Overlay:
    props: dict = {
        "id": ids.area_layer(m.name),
        "style": {"variable": _FN + "style"},
        "pointToLayer": {"variable": _FN + "pointToLayer"},
        "onEachFeature": {"variable": _FN + "areas.onEachFeature"},
        "hideout": _hideout(m.name, lang, risk_names, editing),
        "interactive": m.name != "district",
        # Clicks reach the map, whose clickData (a point) the "add a whole ..." tools use.
        "bubblingMouseEvents": True,
    }
    if m.name == "controlled_area":
        props["filter"] = {"variable": _FN + "areas.hideEditing"}
        props["url"] = url
    else:
        props["format"] = "geobuf"
        if url:  # a viewport layer starts with neither url nor data (dash-leaflet prefers data to url)
            props["url"] = url
    layer = dl.GeoJSON(**props)
    if m.paned:
        layer = dl.Pane(layer, name=f"gm-ae-{m.name}", className=f"gm-ae-pane gm-ae-pane-{m.name}")
    return dl.Overlay(layer, name=both(f"layer.{m.name}"), checked=m.checked)


def _shape_options(color: str) -> dict:
    return {"color": color, "weight": 3, "opacity": 1, "fillColor": color, "fillOpacity": 0.2}


def _editor(color: str) -> dl.FeatureGroup:
    shape = _shape_options(color)
    events = ("draw:created", "draw:edited", "draw:deleted", "draw:editvertex", "draw:editmove",
              "draw:editresize", "draw:editstop", "draw:deletestop")
    return dl.FeatureGroup(
        dl.EditControl(
            id=ids.AREA_EDIT,
            position="topleft",
            draw={
                # Leaflet.draw refuses crossing edges while drawing; the server checks the rest.
                "polygon": {"allowIntersection": False, "showArea": False, "shapeOptions": shape},
                # showArea on rectangles hits a Leaflet.draw 1.0.4 bug (readableArea): off.
                "rectangle": {"showArea": False, "shapeOptions": shape},
                "polyline": False, "circle": False, "marker": False, "circlemarker": False,
            },
            edit={"poly": {"allowIntersection": False}},
            # dash-leaflet's own handlers drop holes and ignore vertex drags: gridmap.areas reports.
            disableDefaultEventHandlers=True,
            eventHandlers={"draw:mounted": {"variable": _FN + "areas.mounted"},
                           **{e: {"variable": _FN + "areas.changed"} for e in events}},
        ),
        id=ids.AREA_EDIT_GROUP,
    )


def _opening_urls(settings, bounds, version: int) -> dict[str, str | None]:
    zoom = layers.fit_zoom(bounds, settings.map_fit_width_px)
    urls: dict[str, str | None] = {m.name: map_view.opening_url(settings, m, version, zoom) for m in VIEW_LAYERS}
    urls["controlled_area"] = _layer_url("controlled_area")
    return urls


def _map(settings, bounds, lang: str, risk_names: dict, color: str, editing: int | None,
         version: int) -> dl.MapContainer:
    children: list = []
    if settings.tile_url:
        children.append(dl.TileLayer(url=settings.tile_url, attribution=settings.tile_attribution, maxZoom=19))
    urls = _opening_urls(settings, bounds, version)
    children += [
        dl.LayersControl([_back_layer(m, lang, risk_names, editing, urls[m.name]) for m in BACK_LAYERS],
                         position="topright", collapsed=True),
        # Comparison of two versions, or the other's version after a conflict; never catches a click.
        dl.Pane(
            dl.GeoJSON(id=ids.AREA_COMPARE_LAYER, data={"type": "FeatureCollection", "features": []},
                       style={"variable": _FN + "areas.compareStyle"}, interactive=False, zoomToBounds=True),
            name="gm-ae-compare", className="gm-ae-pane gm-ae-pane-compare",
        ),
        _editor(color),
        dl.ScaleControl(position="bottomright", imperial=False),
    ]
    return dl.MapContainer(
        children,
        id=ids.AREA_MAP,
        bounds=bounds,
        trackViewport=False,  # see pages/map.py: the view is set by bounds...
        eventHandlers=map_view.map_event_handlers(),  # ...and reported by gridmap.view (map_view)
        boundsOptions={"padding": [16, 16]},
        zoomSnap=0.25,
        minZoom=9,
        maxZoom=19,
        className="gm-map",
        attributionControl=bool(settings.tile_url),
    )


def _toolbar(lang: str) -> html.Div:
    options = [{"label": html.Span(ac.bi(f"areas.tool.{m}"), className=f"gm-ae-tool gm-ae-tool-{m}"), "value": m}
               for m in MODES]
    return html.Div(
        [
            dcc.RadioItems(id=ids.AREA_MODE, options=options, value="draw", className="gm-ae-tools",
                           inputClassName="gm-ae-tool-input", labelClassName="gm-ae-tool-label"),
            html.Div(t("areas.hint.draw", lang), id=ids.AREA_MODE_HINT, className="gm-ae-tool-hint"),
        ],
        className="gm-ae-toolbar",
    )


def _map_legend() -> html.Div:
    def key(kind: str, label: str) -> html.Div:
        return html.Div([html.Span(className=f"gm-ae-key gm-ae-key-{kind}"), html.Span(ac.bi(label))],
                        className="gm-ae-cmp-row")

    return html.Div([key("editing", "areas.legend_editing"), key("added", "areas.added"),
                     key("released", "areas.released")], className="gm-ae-map-legend")


def _field(label_key: str, control, extra: str = "", note=None) -> html.Div:
    children = [html.Label(ac.bi(label_key), className="gm-ae-label"), control]
    if note is not None:
        children.append(note)
    return html.Div(children, className=f"gm-ae-field {extra}".strip())


def _author_field(lang: str) -> html.Div:
    """Who saves: the logged-in user (fixed), or a name typed in and remembered by the browser."""
    if current_principal() is not None:
        control = dcc.Input(id=ids.AREA_AUTHOR, type="text", value=current_author(None), disabled=True,
                            className="gm-ae-input")
        return _field("areas.author", control, note=html.Div(ac.bi("areas.author_logged_in"), className="gm-ae-note"))
    control = dcc.Input(id=ids.AREA_AUTHOR, type="text", placeholder=t("areas.author_placeholder", lang),
                        persistence=True, persistence_type="local", className="gm-ae-input", maxLength=64)
    return _field("areas.author", control, note=html.Div(ac.bi("areas.author_note"), className="gm-ae-note"))


def _panel(lang: str, class_options: list[dict], initial_class: str, base: dict | None) -> html.Aside:
    form = html.Div(
        [
            _field("areas.name", dcc.Input(id=ids.AREA_NAME, type="text", value=(base or {}).get("name", ""),
                                           placeholder=t("areas.name_placeholder", lang), debounce=True,
                                           className="gm-ae-input", maxLength=100)),
            _field("areas.class", dcc.RadioItems(id=ids.AREA_CLASS, options=class_options, value=initial_class,
                                                 className="gm-ae-classes", inputClassName="gm-ae-class-input",
                                                 labelClassName="gm-ae-class-label")),
            _author_field(lang),
        ],
        className="gm-ae-form",
    )
    areas_box = html.Details(
        [
            html.Summary([html.Span(ac.bi("areas.list")),
                          html.Button(ac.bi("areas.new"), id=ids.AREA_NEW, n_clicks=0, className="gm-ae-btn gm-ae-btn-new")],
                         className="gm-ae-summary"),
            html.Div(id=ids.AREA_LIST, className="gm-ae-list"),
        ],
        open=True,
        className="gm-ae-box",
    )
    versions_box = html.Details(
        [
            html.Summary(html.Span(ac.bi("areas.versions")), className="gm-ae-summary"),
            html.Div(id=ids.AREA_VERSIONS),
            html.Div(
                [
                    html.Div(ac.bi("areas.compare"), className="gm-ae-label"),
                    html.Div(
                        [
                            dcc.Dropdown(id=ids.AREA_COMPARE_OLD, options=[], clearable=False, searchable=False,
                                         className="gm-ae-select"),
                            html.Span("→", className="gm-ae-arrow"),
                            dcc.Dropdown(id=ids.AREA_COMPARE_NEW, options=[], clearable=False, searchable=False,
                                         className="gm-ae-select"),
                            html.Button(ac.bi("areas.compare_clear"), id=ids.AREA_COMPARE_CLEAR, n_clicks=0,
                                        className="gm-ae-btn gm-ae-btn-small"),
                        ],
                        className="gm-ae-compare-row",
                    ),
                    html.Div(id=ids.AREA_COMPARE_SUMMARY),
                ],
                className="gm-ae-compare",
            ),
            html.Div(
                [
                    html.Div(ac.bi("areas.lift_title"), className="gm-ae-label"),
                    dcc.Textarea(id=ids.AREA_LIFT_REASON, placeholder=t("areas.lift_placeholder", lang),
                                 className="gm-ae-textarea gm-ae-textarea-small"),
                    html.Button(ac.bi("areas.lift"), id=ids.AREA_LIFT, n_clicks=0, className="gm-ae-btn gm-ae-btn-danger"),
                ],
                className="gm-ae-lift",
            ),
        ],
        open=True,
        id=ids.AREA_VERSIONS_BOX,
        className="gm-ae-box" + ("" if base else " gm-ae-hidden"),
    )
    footer = html.Div(
        [
            html.Div(id=ids.AREA_MESSAGE, className="gm-ae-message"),
            html.Div(
                [
                    html.Div(id=ids.AREA_CONFLICT_TEXT),
                    html.Div([html.Button(ac.bi("areas.reload"), id=ids.AREA_RELOAD, n_clicks=0, className="gm-ae-btn"),
                              html.Button(ac.bi("areas.rebase"), id=ids.AREA_REBASE, n_clicks=0,
                                          className="gm-ae-btn gm-ae-btn-primary-outline")],
                             className="gm-ae-conflict-actions"),
                ],
                id=ids.AREA_CONFLICT_BOX,
                className="gm-ae-msg gm-ae-msg-conflict gm-ae-hidden",
            ),
            html.Div(
                [html.Label([html.Span(ac.bi("areas.reason")),
                             html.Span(ac.bi("areas.reason_required"), className="gm-ae-required")],
                            className="gm-ae-label", htmlFor=ids.AREA_REASON),
                 dcc.Textarea(id=ids.AREA_REASON, placeholder=t("areas.reason_placeholder", lang),
                              className="gm-ae-textarea")],
                id=ids.AREA_REASON_FIELD,
                className="gm-ae-field gm-ae-reason",
            ),
            html.Div(
                [html.Button(ac.bi("areas.save"), id=ids.AREA_SAVE, n_clicks=0, disabled=True,
                             className="gm-ae-btn gm-ae-btn-primary"),
                 html.Div(ac.save_hint("hint_empty", lang), id=ids.AREA_SAVE_HINT, className="gm-ae-save-hint")],
                className="gm-ae-save-row",
            ),
        ],
        className="gm-ae-footer",
    )
    return html.Aside(
        [
            html.Div(
                [
                    html.Div([html.Div(ac.bi("areas.page_title"), className="gm-card-kind"),
                              html.Div(ac.editing_title(base, lang), id=ids.AREA_EDITING, className="gm-ae-editing")],
                             className="gm-ae-head"),
                    areas_box,
                    form,
                    html.Div(ac.empty_preview(lang), id=ids.AREA_PREVIEW),
                    versions_box,
                ],
                className="gm-ae-scroll",
            ),
            footer,
        ],
        className="gm-ae-panel",
    )


def _client_data(risk_classes: list[dict]) -> dict:
    ordered = sorted(risk_classes, key=lambda r: r["scheme"] == "area")  # area classes win a shared code
    return {
        "colors": {r["code"]: r["color"] for r in ordered},
        "names": {lang: {r["code"]: r["names"][lang] for r in ordered} for lang in LANGUAGES},
        "texts": {lang: {k.removeprefix("areas.draw."): t(k, lang) for k in _DRAW_KEYS} for lang in LANGUAGES},
    }


def layout(area: str | None = None, **_query) -> html.Div:
    """The editor; ``/areas?area=<key>`` opens that area's latest version."""
    settings = current_settings()
    lang = normalise(settings.default_language)
    opened = None
    try:
        with session_scope(settings.database_url) as session:
            bounds = layers.district_bounds(session)
            by_lang = {code: layers.risk_legend(session, code) for code in LANGUAGES}
            version = data_version(session).version
            if area and area.isdigit():
                opened = area_editing.area_for_editing(session, int(area))
    except DatabaseUnavailable as exc:
        return html.Div([html.B(t("error.db", lang)), html.Div(str(exc))], className="gm-error")
    except GridmapError:
        opened = None  # an unknown area in the URL: start a new one
    if bounds is None:
        return html.Div(t("error.empty", lang), className="gm-error")

    risk_classes = [{**r, "names": {code: by_lang[code][i]["name"] for code in LANGUAGES}}
                    for i, r in enumerate(by_lang[lang])]
    client = _client_data(risk_classes)
    base = opened["base"] if opened else None
    initial_class = base["class_code"] if base else DEFAULT_CLASS
    load = {"geojson": opened["geojson"], "fit": True, "seq": 0} if opened else None
    risk_names = _risk_names(by_lang[lang])

    return html.Div(
        className="gm-map-page gm-ae-page",
        children=[
            html.Div(
                [_map(settings, bounds, lang, risk_names, client["colors"].get(initial_class, "#0b3d91"),
                      (base or {}).get("area_key"), version),
                 _toolbar(lang), _map_legend(),
                 html.Div(t("areas.zoom_in", lang), id=ids.AREA_ZOOM_HINT,
                          className=map_view.hint_class(settings, bounds))],
                id=ids.AREA_MAP_WRAP,
                className="gm-map-wrap gm-ae-map-wrap gm-ae-mode-draw",
            ),
            _panel(lang, ac.class_options(risk_classes), initial_class, base),
            dcc.Store(id=ids.AREA_BASE, data=base),
            dcc.Store(id=ids.AREA_LOAD, data=load),
            dcc.Store(id=ids.AREA_PREVIEW_STATE, data={"status": "empty"}),
            dcc.Store(id=ids.AREA_CONFLICT, data=None),
            dcc.Store(id=ids.AREA_REFRESH, data=0),
            dcc.Store(id=ids.AREA_CLIENT, data=client),
            *map_view.view_stores(ids.AREA_MAP, ids.AREA_VIEW_CONFIG, settings, version, VIEW_LAYERS),
        ],
    )


# --- callbacks in the browser -------------------------------------------------------------------------

# The map's view -> the URLs of the layers that follow it, and the zoom-in hint (as on the command map).
map_view.register_view_urls(ids.AREA_MAP, ids.AREA_VIEW_CONFIG, ids.AREA_ZOOM_HINT,
                            [ids.area_layer(m.name) for m in VIEW_LAYERS])

# A drawing from the server (an area opened, a union, a cut) into the editor.
dash.clientside_callback(
    "function(data) { return window.gridmap.areas.load(data); }",
    Output(ids.AREA_EDIT, "geojson"),
    Input(ids.AREA_LOAD, "data"),
)

# The tool, the class colour and the language reach Leaflet.draw; pick modes get a crosshair.
dash.clientside_callback(
    """function(mode, cls, lang, client) {
        client = client || {};
        return window.gridmap.areas.configure(mode, (client.colors || {})[cls], lang, client.texts);
    }""",
    Output(ids.AREA_MAP_WRAP, "className"),
    Input(ids.AREA_MODE, "value"),
    Input(ids.AREA_CLASS, "value"),
    Input(ids.LANG_STORE, "data"),
    State(ids.AREA_CLIENT, "data"),
)


# --- callbacks: read inputs, call one service, format the output ------------------------------------


@dash.callback(
    Output(ids.AREA_MODE_HINT, "children"),
    Output(ids.AREA_NAME, "placeholder"),
    Output(ids.AREA_AUTHOR, "placeholder"),
    Output(ids.AREA_REASON, "placeholder"),
    Output(ids.AREA_LIFT_REASON, "placeholder"),
    Output(ids.AREA_ZOOM_HINT, "children"),
    Input(ids.AREA_MODE, "value"),
    Input(ids.LANG_STORE, "data"),
)
def translate_tools(mode: str | None, lang: str | None):
    lang = normalise(lang)
    return (t(f"areas.hint.{mode or 'draw'}", lang), t("areas.name_placeholder", lang),
            t("areas.author_placeholder", lang), t("areas.reason_placeholder", lang),
            t("areas.lift_placeholder", lang), t("areas.zoom_in", lang))


@dash.callback(
    Output(ids.AREA_BASE, "data"),
    Output(ids.AREA_LOAD, "data"),
    Output(ids.AREA_CLASS, "value"),
    Output(ids.AREA_NAME, "value"),
    Output(ids.AREA_MESSAGE, "children"),
    Output(ids.AREA_CONFLICT, "data"),
    Output(ids.AREA_REASON, "value"),
    Output(ids.AREA_MODE, "value"),
    Input({"type": ids.AREA_OPEN, "key": ALL}, "n_clicks"),
    Input(ids.AREA_NEW, "n_clicks"),
    Input(ids.AREA_RELOAD, "n_clicks"),
    State(ids.AREA_BASE, "data"),
    State(ids.LANG_STORE, "data"),
    prevent_initial_call=True,
)
def open_area(_opens, _new, _reload, base: dict | None, lang: str | None):
    """Open an area's latest version in the editor, start a new one, or reload after a conflict."""
    lang = normalise(lang)
    trigger = ctx.triggered_id
    if not ctx.triggered or not ctx.triggered[0]["value"]:
        raise PreventUpdate  # buttons in the list fire when they are (re)drawn, with no click
    if trigger == ids.AREA_NEW:
        empty = {"geojson": area_editing.editor_features(None), "fit": False, "seq": _now().timestamp()}
        return None, empty, no_update, "", None, None, "", "draw"
    key = trigger["key"] if isinstance(trigger, dict) else (base or {}).get("area_key")
    if key is None:
        raise PreventUpdate
    state, problem = call_service(lambda session: area_editing.area_for_editing(session, key))
    if problem:
        return no_update, no_update, no_update, no_update, _problem(lang, problem), no_update, no_update, no_update
    b = state["base"]
    load = {"geojson": state["geojson"], "fit": True, "seq": _now().timestamp()}
    return b, load, b["class_code"], b["name"], None, None, "", "draw"


@dash.callback(
    Output(ids.AREA_PREVIEW, "children"),
    Output(ids.AREA_PREVIEW_STATE, "data"),
    Input(ids.AREA_EDIT, "geojson"),
    Input(ids.AREA_CLASS, "value"),
    Input(ids.LANG_STORE, "data"),
    State(ids.AREA_BASE, "data"),
    State(ids.AREA_MODE, "value"),
)
def preview(drawing: dict | None, class_code: str | None, lang: str | None, base: dict | None, mode: str | None):
    """The live impact of what is drawn (recomputed on every change of the drawing or the class)."""
    lang = normalise(lang)
    if mode == "cut" and (drawing or {}).get("event") == "draw:created":
        raise PreventUpdate  # the cut callback sends the holed drawing back; preview that instead
    if not (drawing or {}).get("features"):
        return ac.empty_preview(lang), {"status": "empty"}
    settings = current_settings()
    try:
        with session_scope(settings.database_url) as session:
            impact = area_editing.preview(session, drawing, class_code or DEFAULT_CLASS, settings,
                                          (base or {}).get("area_key"), lang=lang)
    except DatabaseUnavailable as exc:
        return _db_message(lang, exc), {"status": "error", "code": "database_unavailable"}
    except GridmapError as exc:
        box = ac.problem(t("areas.invalid_drawing", lang), exc.message)
        return html.Div(box, className="gm-ae-preview-error"), {"status": "error", "code": exc.code}
    state = {"status": "ok", "warnings": len(impact["warnings"]), "buildings": impact["buildings"],
             "codes": [w["code"] for w in impact["warnings"]]}
    return ac.preview_panel(impact, _rules(), lang, (drawing or {}).get("seq")), state


@dash.callback(
    Output(ids.AREA_SAVE, "disabled"),
    Output(ids.AREA_SAVE_HINT, "children"),
    Output(ids.AREA_REASON_FIELD, "className"),
    Input(ids.AREA_PREVIEW_STATE, "data"),
    Input(ids.AREA_REASON, "value"),
    Input(ids.AREA_AUTHOR, "value"),
    Input(ids.AREA_BASE, "data"),
    Input(ids.AREA_CONFLICT, "data"),
    Input(ids.LANG_STORE, "data"),
)
def save_state(state: dict | None, reason: str | None, operator: str | None, base: dict | None,
               conflict: dict | None, lang: str | None):
    """Whether Save can be pressed, and if not, why (the service checks the same again on save)."""
    lang = normalise(lang)
    state = state or {"status": "empty"}
    warned = state.get("status") == "ok" and state.get("warnings", 0) > 0
    reason_css = "gm-ae-field gm-ae-reason" + (" gm-ae-reason-required" if warned else "")
    if warned and not (reason or "").strip():
        reason_css += " gm-ae-reason-missing"
    if not may_edit():
        status, values = "hint_forbidden", {}
    elif conflict:
        status, values = "hint_conflict", {}
    elif base and base.get("ended"):
        status, values = "hint_ended", {}
    elif state.get("status") == "empty":
        status, values = "hint_empty", {}
    elif state.get("status") != "ok":
        status, values = "hint_invalid", {}
    elif not current_author(operator):
        status, values = "hint_author", {}
    elif warned and not (reason or "").strip():
        status, values = "hint_reason", {"n": state["warnings"]}
    elif base:
        status, values = "hint_next", {"next": base["version"] + 1, "base": base["version"]}
    else:
        status, values = "hint_new", {}
    return status not in ("hint_new", "hint_next"), ac.save_hint(status, lang, **values), reason_css


@dash.callback(
    Output(ids.AREA_BASE, "data", allow_duplicate=True),
    Output(ids.AREA_MESSAGE, "children", allow_duplicate=True),
    Output(ids.AREA_CONFLICT, "data", allow_duplicate=True),
    Output(ids.AREA_REFRESH, "data"),
    Output(ids.AREA_REASON, "value", allow_duplicate=True),
    Input(ids.AREA_SAVE, "n_clicks"),
    State(ids.AREA_EDIT, "geojson"),
    State(ids.AREA_CLASS, "value"),
    State(ids.AREA_NAME, "value"),
    State(ids.AREA_REASON, "value"),
    State(ids.AREA_AUTHOR, "value"),
    State(ids.AREA_BASE, "data"),
    State(ids.AREA_REFRESH, "data"),
    State(ids.LANG_STORE, "data"),
    prevent_initial_call=True,
)
def save(n_clicks, drawing, class_code, name, reason, operator, base, refresh, lang):
    """A new area (create_area) or the next version of the open one from the version it started from."""
    if not n_clicks:
        raise PreventUpdate
    lang = normalise(lang)
    if not may_edit():
        return no_update, _forbidden(lang), no_update, no_update, no_update
    settings = current_settings()
    try:
        with session_scope(settings.database_url) as session:
            saved = area_editing.save_drawing(
                session, drawing, class_code or DEFAULT_CLASS, settings=settings, author=current_author(operator),
                now=_now(), reason=reason or "", name=name or "",
                area_key=(base or {}).get("area_key"), base_version=(base or {}).get("version"),
                principal=current_principal(),
            )
            state = area_editing.editing_state(saved)
    except AreaConflict as exc:
        conflict = {**exc.current, "base_version": (base or {}).get("version")}
        return no_update, None, conflict, (refresh or 0) + 1, no_update
    except ReasonRequired as exc:
        return no_update, ac.problem(t("areas.not_saved", lang), exc.message, "warning"), None, no_update, no_update
    except DatabaseUnavailable as exc:
        return no_update, _db_message(lang, exc), no_update, no_update, no_update
    except GridmapError as exc:
        return no_update, _error_message(lang, exc), no_update, no_update, no_update
    done = ac.problem(ac.tr("areas.saved", lang, key=saved.area_key, version=saved.version), "", "success")
    # Each version carries its own reason: the next one is written afresh.
    return state["base"], done, None, (refresh or 0) + 1, ""


@dash.callback(
    Output(ids.AREA_CONFLICT_BOX, "className"),
    Output(ids.AREA_CONFLICT_TEXT, "children"),
    Output(ids.AREA_COMPARE_LAYER, "data", allow_duplicate=True),
    Input(ids.AREA_CONFLICT, "data"),
    State(ids.LANG_STORE, "data"),
    State(ids.AREA_CLIENT, "data"),
    prevent_initial_call=True,
)
def show_conflict(conflict: dict | None, lang: str | None, client: dict | None):
    lang = normalise(lang)
    hidden = "gm-ae-msg gm-ae-msg-conflict gm-ae-hidden"
    if not conflict:
        return hidden, None, {"type": "FeatureCollection", "features": []}
    names = (client or {}).get("names", {}).get(lang, {})
    text = ac.conflict_text(conflict, conflict.get("base_version"), names, lang, current_settings().timezone)
    return "gm-ae-msg gm-ae-msg-conflict", text, ac.conflict_features(conflict)


@dash.callback(
    Output(ids.AREA_BASE, "data", allow_duplicate=True),
    Output(ids.AREA_CONFLICT, "data", allow_duplicate=True),
    Output(ids.AREA_MESSAGE, "children", allow_duplicate=True),
    Input(ids.AREA_REBASE, "n_clicks"),
    State(ids.AREA_CONFLICT, "data"),
    State(ids.AREA_BASE, "data"),
    State(ids.LANG_STORE, "data"),
    prevent_initial_call=True,
)
def rebase(n_clicks, conflict: dict | None, base: dict | None, lang: str | None):
    """Keep the drawing and edit it from the latest version: the next save overwrites theirs, knowingly."""
    if not n_clicks or not conflict or not base:
        raise PreventUpdate
    lang = normalise(lang)
    new_base = {**base, "version": conflict["version"], "ended": conflict.get("ended_at") is not None}
    note = ac.problem(ac.tr("areas.rebased", lang, version=conflict["version"]), "", "info")
    return new_base, None, note


@dash.callback(
    Output(ids.AREA_LOAD, "data", allow_duplicate=True),
    Output(ids.AREA_MESSAGE, "children", allow_duplicate=True),
    Input(ids.AREA_MAP, "clickData"),
    State(ids.AREA_MODE, "value"),
    State(ids.AREA_EDIT, "geojson"),
    State(ids.LANG_STORE, "data"),
    prevent_initial_call=True,
)
def add_clicked_feature(click: dict | None, mode: str | None, drawing: dict | None, lang: str | None):
    """In an "add a whole ..." mode, the clicked compound, building or grid joins the drawing."""
    layer = PICK_LAYER.get(mode or "")
    latlng = (click or {}).get("latlng")
    if layer is None or not latlng:
        raise PreventUpdate
    lang = normalise(lang)
    settings = current_settings()
    try:
        with session_scope(settings.database_url) as session:
            fc = area_editing.add_feature_at(session, drawing, layer, latlng["lng"], latlng["lat"], settings)
    except DatabaseUnavailable as exc:
        return no_update, _db_message(lang, exc)
    except GridmapError as exc:
        return no_update, ac.problem(t("areas.invalid_drawing", lang), exc.message, "warning")
    return {"geojson": fc, "fit": False, "seq": _now().timestamp()}, None


@dash.callback(
    Output(ids.AREA_LOAD, "data", allow_duplicate=True),
    Output(ids.AREA_MESSAGE, "children", allow_duplicate=True),
    Input(ids.AREA_EDIT, "geojson"),
    State(ids.AREA_MODE, "value"),
    State(ids.LANG_STORE, "data"),
    prevent_initial_call=True,
)
def cut_hole(drawing: dict | None, mode: str | None, lang: str | None):
    """In cut mode, the shape just drawn is taken out of the area."""
    if mode != "cut" or (drawing or {}).get("event") != "draw:created":
        raise PreventUpdate
    lang = normalise(lang)
    try:
        fc = area_editing.cut_drawing(drawing, current_settings())
    except DrawingError as exc:
        # Drop the shape drawn for cutting so it never becomes part of the area.
        kept = [f for f in drawing.get("features", []) if not (f.get("properties") or {}).get("created")]
        load = {"geojson": {"type": "FeatureCollection", "features": kept}, "fit": False, "seq": _now().timestamp()}
        return load, ac.problem(t("areas.invalid_drawing", lang), exc.message, "warning")
    return {"geojson": fc, "fit": False, "seq": _now().timestamp()}, None


@dash.callback(
    Output(ids.AREA_LIST, "children"),
    Input(ids.AREA_REFRESH, "data"),
    Input(ids.AREA_BASE, "data"),
    Input(ids.LANG_STORE, "data"),
)
def list_areas(_refresh, base: dict | None, lang: str | None):
    """The current areas to pick from (again after every save)."""
    lang = normalise(lang)
    settings = current_settings()
    try:
        with session_scope(settings.database_url) as session:
            rows = area_editing.editable_areas(session, lang)
    except DatabaseUnavailable as exc:
        return _db_message(lang, exc)
    return ac.area_list(rows, (base or {}).get("area_key"), lang)


@dash.callback(
    Output(AREAS_LAYER, "url"),
    Output(AREAS_LAYER, "hideout"),
    Input(ids.AREA_REFRESH, "data"),
    Input(ids.AREA_BASE, "data"),
    Input(ids.LANG_STORE, "data"),
    State(AREAS_LAYER, "url"),
    State(AREAS_LAYER, "hideout"),
)
def areas_layer(refresh: int | None, base: dict | None, lang: str | None, url: str | None, hideout: dict | None):
    """The layer of current areas: refetched after a save, the area being edited left out.

    URL and hideout change in one update: dash-leaflet drops a new hideout that arrives while the
    layer is still fetching, and the area just saved would show twice.
    """
    lang = normalise(lang)
    new_url = _layer_url("controlled_area", refresh or 0)
    new_hideout = _hideout("controlled_area", lang, (hideout or {}).get("riskNames") or {},
                           (base or {}).get("area_key"))
    if (hideout or {}).get("t") != new_hideout["t"]:  # another language: names of the classes too
        settings = current_settings()
        try:
            with session_scope(settings.database_url) as session:
                new_hideout["riskNames"] = _risk_names(layers.risk_legend(session, lang))
        except DatabaseUnavailable:
            pass  # tooltips keep the old names
    if new_url == url and new_hideout == hideout:
        raise PreventUpdate
    return (new_url if new_url != url else no_update), (new_hideout if new_hideout != hideout else no_update)


@dash.callback(
    [Output(ids.area_layer(m.name), "hideout") for m in BACK_LAYERS if m.name != "controlled_area"],
    Input(ids.LANG_STORE, "data"),
    [State(ids.area_layer(m.name), "hideout") for m in BACK_LAYERS if m.name != "controlled_area"],
)
def layer_hideouts(lang: str | None, *current: dict | None):
    """Tooltips in the chosen language. A layer whose hideout stays the same keeps its features as
    drawn (a new hideout redraws them)."""
    lang = normalise(lang)
    if all((c or {}).get("t") == js_labels(lang) for c in current):
        raise PreventUpdate
    settings = current_settings()
    try:
        with session_scope(settings.database_url) as session:
            risk_names = _risk_names(layers.risk_legend(session, lang))
    except DatabaseUnavailable:
        raise PreventUpdate from None
    return [_hideout(m.name, lang, risk_names) for m in BACK_LAYERS if m.name != "controlled_area"]


@dash.callback(
    Output(ids.AREA_EDITING, "children"),
    Output(ids.AREA_VERSIONS_BOX, "className"),
    Output(ids.AREA_VERSIONS, "children"),
    Output(ids.AREA_COMPARE_OLD, "options"),
    Output(ids.AREA_COMPARE_NEW, "options"),
    Output(ids.AREA_LIFT, "disabled"),
    Input(ids.AREA_BASE, "data"),
    Input(ids.AREA_REFRESH, "data"),
    Input(ids.LANG_STORE, "data"),
)
def show_versions(base: dict | None, _refresh, lang: str | None):
    lang = normalise(lang)
    title = ac.editing_title(base, lang)
    if not base:
        return title, "gm-ae-box gm-ae-hidden", None, [], [], True
    settings = current_settings()
    versions, problem = call_service(lambda session: area_editing.version_history(session, base["area_key"], lang))
    if problem:
        return title, "gm-ae-box", _problem(lang, problem), [], [], True
    options = ac.version_options(versions, lang)
    ended = bool(versions and versions[-1].get("ended_at"))
    return title, "gm-ae-box", ac.versions_list(versions, lang, settings.timezone), options, options, ended


@dash.callback(
    Output(ids.AREA_COMPARE_LAYER, "data"),
    Output(ids.AREA_COMPARE_SUMMARY, "children"),
    Output(ids.AREA_COMPARE_OLD, "value"),
    Output(ids.AREA_COMPARE_NEW, "value"),
    Input(ids.AREA_COMPARE_OLD, "value"),
    Input(ids.AREA_COMPARE_NEW, "value"),
    Input(ids.AREA_COMPARE_CLEAR, "n_clicks"),
    Input(ids.AREA_BASE, "data"),
    Input(ids.LANG_STORE, "data"),
    prevent_initial_call=True,
)
def compare(old: int | None, new: int | None, _clear, base: dict | None, lang: str | None):
    """Two versions on the map: what the newer added and what it released, with m²."""
    empty = {"type": "FeatureCollection", "features": []}
    if ctx.triggered_id in (ids.AREA_COMPARE_CLEAR, ids.AREA_BASE) or not base:
        return empty, None, None, None
    if old is None or new is None or old == new:
        return empty, None, no_update, no_update
    lang = normalise(lang)
    diff, problem = call_service(
        lambda session: areas.compare_versions(session, base["area_key"], min(old, new), max(old, new)))
    if problem:
        return empty, _problem(lang, problem), no_update, no_update
    return ac.compare_features(diff), ac.compare_summary(diff, lang), no_update, no_update


@dash.callback(
    Output(ids.AREA_BASE, "data", allow_duplicate=True),
    Output(ids.AREA_LOAD, "data", allow_duplicate=True),
    Output(ids.AREA_MESSAGE, "children", allow_duplicate=True),
    Output(ids.AREA_REFRESH, "data", allow_duplicate=True),
    Output(ids.AREA_CLASS, "value", allow_duplicate=True),
    Input({"type": ids.AREA_REVERT, "version": ALL}, "n_clicks"),
    State(ids.AREA_BASE, "data"),
    State(ids.AREA_AUTHOR, "value"),
    State(ids.AREA_REASON, "value"),
    State(ids.AREA_REFRESH, "data"),
    State(ids.LANG_STORE, "data"),
    prevent_initial_call=True,
)
def revert_to(_clicks, base: dict | None, operator: str | None, reason: str | None, refresh, lang: str | None):
    """A new version equal to an older one, from the version the user has open."""
    if not ctx.triggered or not ctx.triggered[0]["value"] or not isinstance(ctx.triggered_id, dict) or not base:
        raise PreventUpdate
    lang = normalise(lang)
    to_version = ctx.triggered_id["version"]
    if not may_edit():
        return no_update, no_update, _forbidden(lang), no_update, no_update
    settings = current_settings()
    author = current_author(operator)
    if not author:
        return no_update, no_update, ac.problem(t("areas.hint_author", lang), "", "warning"), no_update, no_update
    try:
        with session_scope(settings.database_url) as session:
            saved = areas.revert(session, base["area_key"], to_version, base["version"], settings=settings,
                                 author=author, now=_now(), reason=reason or "", principal=current_principal())
            state = area_editing.editing_state(saved)
    except AreaConflict as exc:
        note = ac.problem(t("areas.conflict_title", lang), exc.message)
        return no_update, no_update, note, no_update, no_update
    except DatabaseUnavailable as exc:
        return no_update, no_update, _db_message(lang, exc), no_update, no_update
    except GridmapError as exc:
        return no_update, no_update, _error_message(lang, exc), no_update, no_update
    done = ac.problem(ac.tr("areas.reverted", lang, version=saved.version, to=to_version), "", "success")
    load = {"geojson": state["geojson"], "fit": True, "seq": _now().timestamp()}
    return state["base"], load, done, (refresh or 0) + 1, saved.class_code


@dash.callback(
    Output(ids.AREA_BASE, "data", allow_duplicate=True),
    Output(ids.AREA_MESSAGE, "children", allow_duplicate=True),
    Output(ids.AREA_REFRESH, "data", allow_duplicate=True),
    Output(ids.AREA_LIFT_REASON, "value"),
    Input(ids.AREA_LIFT, "n_clicks"),
    State(ids.AREA_BASE, "data"),
    State(ids.AREA_AUTHOR, "value"),
    State(ids.AREA_LIFT_REASON, "value"),
    State(ids.AREA_REFRESH, "data"),
    State(ids.LANG_STORE, "data"),
    prevent_initial_call=True,
)
def lift_area(n_clicks, base: dict | None, operator: str | None, reason: str | None, refresh, lang: str | None):
    """End the area (解封) with a reason: a last version carrying the end."""
    if not n_clicks or not base:
        raise PreventUpdate
    lang = normalise(lang)
    if not may_edit():
        return no_update, _forbidden(lang), no_update, no_update
    author = current_author(operator)
    if not author:
        return no_update, ac.problem(t("areas.hint_author", lang), "", "warning"), no_update, no_update
    settings = current_settings()
    try:
        with session_scope(settings.database_url) as session:
            ended = areas.lift(session, base["area_key"], base["version"], author=author, now=_now(),
                               reason=reason or "", principal=current_principal())
            state = area_editing.editing_state(ended)
    except AreaConflict as exc:
        return no_update, ac.problem(t("areas.conflict_title", lang), exc.message), no_update, no_update
    except DatabaseUnavailable as exc:
        return no_update, _db_message(lang, exc), no_update, no_update
    except GridmapError as exc:
        return no_update, _error_message(lang, exc), no_update, no_update
    done = ac.problem(ac.tr("areas.lifted", lang, key=ended.area_key, version=ended.version), "", "success")
    return state["base"], done, (refresh or 0) + 1, ""
