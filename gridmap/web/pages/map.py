"""The command map (path "/"): the whole district with its risk classes, checkpoints, services and
key households; click a feature to see its facts in the side panel.

Layer data is not in the layout: each dl.GeoJSON loads ``/api/layers/<layer>.pbf`` (geobuf) itself
(web/routes.py). Styling is done in the browser by assets/gridmap.js, driven by each layer's
``hideout``; a language switch only changes hideouts, legend and panel, never refetches a layer.

A whole city (issue 8) is drawn by asking each layer for the map's view (services.layers): the
map reports its zoom and viewport from the browser (assets/gridmap.js ``gridmap.view.moved``,
bound to Leaflet's ``moveend``, sets the store ``map_view.view_store_id(ids.MAP)``), and one clientside callback
(web/map_view.py, shared with the area editor and the tasking map) turns it into each layer's
URL: polygon layers follow the zoom band (generalised geometry, refetched only when the band
changes), detail layers (buildings, gates, key households, compounds, service
points) follow the viewport from their minimum zoom on and are empty below it, with a hint to
zoom in. Point layers sent whole (checkpoints) and key households are clustered. The coverage
choropleth colours the grid layer's own features by per-grid values sent in its hideout (the
geometry is never sent a second time; web/coverage_routes.py says why). URLs carry the
data version the page opened with, so a reload after a change never reuses a stale copy.
"""

from __future__ import annotations

from datetime import UTC, datetime  # coverage choropleth
from typing import NamedTuple

import dash
import dash_leaflet as dl
from dash import ALL, Input, Output, State, ctx, dcc, html
from dash.exceptions import PreventUpdate

from gridmap.db.session import DatabaseUnavailable, session_scope
from gridmap.domain.errors import GridmapError, NotFound  # GridmapError: coverage choropleth
from gridmap.services import coverage_layers, layers, reports  # coverage_layers: coverage choropleth
from gridmap.services.changes import data_version
from gridmap.services.coverage import staffing_gaps  # coverage choropleth
from gridmap.web import components, coverage_components, ids, map_view  # coverage_components: choropleth
from gridmap.web.auth import current_principal
from gridmap.web.context import current_settings
from gridmap.web.i18n import both, js_labels, normalise, t

dash.register_page(
    __name__,
    path="/",
    name="Command map",
    title="网格化防控指挥图 · Grid Command Map",
    nav_key="nav.map",
    order=0,
)


# Dash executes page modules before putting them in sys.modules, so no @dataclass here.
class MapLayer(NamedTuple):
    name: str  # a layer of services.layers
    checked: bool  # shown when the page opens
    interactive: bool = True
    cluster: bool = False


# Bottom to top, as listed in the layer switcher. Buildings, gates, key households, compounds and
# service points are sent for the viewport only, from their minimum zoom (settings) on.
MAP_LAYERS: tuple[MapLayer, ...] = (
    MapLayer("district", True, interactive=False),
    MapLayer("subdistrict", False),
    MapLayer("community", True),
    MapLayer("grid", True),
    MapLayer("controlled_area", True),
    MapLayer("compound", False),
    MapLayer("building", True),
    MapLayer("service_point", True),
    MapLayer("gate", False),
    MapLayer("checkpoint", True, cluster=True),  # ~8,000 in a city: clustered far out
    # Zoomed out, key households as a count per grid; from their own zoom on, each household.
    MapLayer("key_household_grid", True),
    MapLayer("key_household", True, cluster=True),
)
CLICKABLE = tuple(m for m in MAP_LAYERS if m.interactive)
# A click on a grid's count of key households opens the grid.
_BY_ID = {ids.map_layer(m.name): "grid" if m.name == "key_household_grid" else m.name for m in CLICKABLE}

# Polygon layers get a pane each (z-order in gridmap.css); markers use Leaflet's marker pane.
_PANED = {"district", "subdistrict", "community", "grid", "controlled_area", "compound", "building", "service_point"}

_FN = "gridmap."
# Polygon layers sent whole, generalised for the map's zoom band.
_GENERALISED = {"district", "subdistrict", "community", "grid", "controlled_area"}


def _hideout(layer: str, lang: str, risk_classes: list[dict]) -> dict:
    return {
        "layer": layer,
        "t": js_labels(lang),
        "riskNames": {f"{r['scheme']}:{r['code']}": r["name"] for r in risk_classes},
        "kindNames": {k["code"]: k["name"] for k in layers.service_kinds(lang)},
    }


# Every layer's URL follows the map's view (web/map_view.py, shared with the area editor and the tasking map).
VIEW_LAYERS = tuple(map_view.ViewLayer(m.name, m.name in _GENERALISED) for m in MAP_LAYERS)


def _geojson(m: MapLayer, lang: str, risk_classes: list[dict], url: str | None) -> dl.GeoJSON:
    props: dict = {
        "id": ids.map_layer(m.name),
        "format": "geobuf",
        "style": {"variable": _FN + "style"},
        "pointToLayer": {"variable": _FN + "pointToLayer"},
        "onEachFeature": {"variable": _FN + "onEachFeature"},
        "hideout": _hideout(m.name, lang, risk_classes),
        "interactive": m.interactive,
        "bubblingMouseEvents": False,
    }
    if url:  # a viewport layer starts with neither url nor data (dash-leaflet prefers data to url)
        props["url"] = url
    if m.cluster:
        props.update(
            cluster=True,
            clusterToLayer={"variable": _FN + "clusterToLayer"},
            zoomToBoundsOnClick=True,
            spiderfyOnMaxZoom=True,
            superClusterOptions={"radius": 80, "maxZoom": 16, "minPoints": 3},
        )
    return dl.GeoJSON(**props)


def _overlay(m: MapLayer, lang: str, risk_classes: list[dict], url: str | None) -> dl.Overlay:
    layer = _geojson(m, lang, risk_classes, url)
    if m.name in _PANED:
        layer = dl.Pane(layer, name=f"gm-{m.name}", className=f"gm-pane-{m.name}")
    # Leaflet draws the switcher's names as HTML, out of Dash's reach: carry both languages and
    # let the root's lang-xx class show one.
    return dl.Overlay(layer, name=both(f"layer.{m.name}"), checked=m.checked)


def _map(settings, bounds: list[list[float]], lang: str, risk_classes: list[dict], version: int) -> dl.MapContainer:
    children: list = []
    zoom = layers.fit_zoom(bounds, settings.map_fit_width_px)
    if settings.tile_url:
        children.append(dl.TileLayer(url=settings.tile_url, attribution=settings.tile_attribution, maxZoom=19))
    children.append(
        dl.LayersControl(
            [_overlay(m, lang, risk_classes, map_view.opening_url(settings, v, version, zoom))
             for m, v in zip(MAP_LAYERS, VIEW_LAYERS, strict=True)],
            id=ids.MAP_LAYERS_CONTROL,
            position="topright",
            collapsed=True,  # unfolded by CSS on wide screens
        )
    )
    children.append(dl.ScaleControl(position="bottomright", imperial=False))
    children.append(dl.LayerGroup(id=ids.MAP_CHOROPLETH))  # coverage choropleth: filled by show_coverage
    return dl.MapContainer(
        children,
        id=ids.MAP,
        bounds=bounds,
        # dash-leaflet's viewport tracking fails when the view is set by bounds alone (it reads
        # `center`); a center would override the bounds, so the tracking is off.
        trackViewport=False,
        # ...so the view is reported by gridmap.view.moved instead (after every move, and once
        # when the first layer draws: the opening fitBounds happens before handlers are bound).
        eventHandlers=map_view.map_event_handlers(),
        boundsOptions={"paddingTopLeft": [12, 12], "paddingBottomRight": [100, 12]},
        zoomSnap=0.25,
        minZoom=9,
        maxZoom=19,
        className="gm-map",
        attributionControl=bool(settings.tile_url),
    )


def layout(**_query) -> html.Div:
    settings = current_settings()
    lang = normalise(settings.default_language)
    try:
        with session_scope(settings.database_url) as session:
            bounds = layers.district_bounds(session)
            risk_classes = layers.risk_legend(session, lang)
            version = data_version(session).version
    except DatabaseUnavailable as exc:
        return html.Div([html.B(t("error.db", lang)), html.Div(str(exc))], id=ids.MAP_ERROR, className="gm-error")
    if bounds is None:
        return html.Div(t("error.empty", lang), id=ids.MAP_ERROR, className="gm-error")

    return html.Div(
        className="gm-map-page",
        children=[
            html.Div(
                className="gm-map-wrap",
                children=[
                    _map(settings, bounds, lang, risk_classes, version),
                    html.Div(t("map.zoom_in", lang), id=ids.MAP_ZOOM_HINT,
                             className=map_view.hint_class(settings, bounds)),
                    html.Details(
                        [
                            html.Summary(t("legend.title", lang), id=f"{ids.MAP_LEGEND}-summary"),
                            html.Div(
                                components.legend_body(risk_classes, layers.service_kinds(lang), lang),
                                id=ids.MAP_LEGEND,
                                className="gm-legend-body",
                            ),
                        ],
                        open=True,
                        id=ids.MAP_LEGEND_BOX,
                        className="gm-legend",
                    ),
                    coverage_components.metric_box(coverage_layers.metric_catalogue(settings), lang),  # coverage choropleth
                ],
            ),
            html.Aside(components.empty_panel(lang), id=ids.MAP_PANEL, className="gm-panel"),
            dcc.Store(id=ids.MAP_SELECTED, storage_type="memory"),
            *map_view.view_stores(ids.MAP, ids.MAP_VIEW_CONFIG, settings, version, VIEW_LAYERS),
            # coverage choropleth: the data version, polled, so the choropleth and ranking follow changes
            dcc.Store(id=ids.MAP_COVERAGE_VERSION),
            dcc.Store(id=f"{ids.MAP_COVERAGE_VERSION}-link", data="ok"),
            dcc.Store(id=f"{ids.MAP_COVERAGE_VERSION}-url", data=dash.get_relative_path("/api/changes")),
            dcc.Interval(id=ids.MAP_COVERAGE_POLL, interval=COVERAGE_POLL_MS),
            # reports missing today: the community layer outlines them in red (issue 6)
            dcc.Store(id=ids.MAP_REPORT_ALARM, data=[]),
            dcc.Interval(id=ids.MAP_REPORT_CLOCK, interval=max(settings.report_alarm_refresh_seconds, 5) * 1000),
        ],
    )


# --- callbacks: read inputs, call one service, format the output ------------------------------------

# On a small screen (a 1024 x 768 tablet) the legend starts folded (the layer switcher too:
# it is created collapsed and gridmap.css unfolds it on wide screens).
dash.clientside_callback(
    "function(_id) { return window.innerWidth >= 1200; }",
    Output(ids.MAP_LEGEND_BOX, "open"),
    Input(ids.MAP_LEGEND_BOX, "id"),
)



# The map's view -> every layer's URL (no_update where it did not change) and the zoom-in hint.
map_view.register_view_urls(ids.MAP, ids.MAP_VIEW_CONFIG, ids.MAP_ZOOM_HINT, [ids.map_layer(m.name) for m in MAP_LAYERS])


@dash.callback(
    Output(ids.MAP_SELECTED, "data"),
    Input({"type": ids.OPEN_FEATURE, "layer": ALL, "id": ALL}, "n_clicks"),
    [Input(ids.map_layer(m.name), "clickData") for m in CLICKABLE],
    prevent_initial_call=True,
)
def select_feature(_links, *_clicks):
    trigger = ctx.triggered_id
    if isinstance(trigger, dict):  # a link in the panel (fires on creation too, with no click)
        if not ctx.triggered[0]["value"]:
            raise PreventUpdate
        return {"layer": trigger["layer"], "id": trigger["id"]}
    feature = ctx.triggered[0]["value"] if ctx.triggered else None
    layer = _BY_ID.get(trigger)
    if not feature or layer is None or (feature.get("properties") or {}).get("cluster"):
        raise PreventUpdate  # a cluster click only zooms
    fid = feature.get("id", (feature.get("properties") or {}).get("id"))
    if fid is None:
        raise PreventUpdate
    return {"layer": layer, "id": fid}


@dash.callback(
    Output(ids.MAP_PANEL, "children"),
    Input(ids.MAP_SELECTED, "data"),
    Input(ids.LANG_STORE, "data"),
)
def show_details(selected: dict | None, lang: str | None):
    lang = normalise(lang)
    settings = current_settings()
    try:
        with session_scope(settings.database_url) as session:
            if not selected:
                return components.overview_panel(layers.overview(session, lang), lang)
            details = layers.feature_details(
                session, selected["layer"], selected["id"], lang, principal=current_principal()
            )
    except NotFound:
        return components.message_panel(t("error.not_found", lang))
    except DatabaseUnavailable as exc:
        return components.message_panel(f"{t('error.db', lang)} {exc}")
    return components.details_panel(details, lang)


@dash.callback(
    Output(ids.MAP_LEGEND, "children"),
    Output(f"{ids.MAP_LEGEND}-summary", "children"),
    Output(ids.MAP_ZOOM_HINT, "children"),
    [Output(ids.map_layer(m.name), "hideout") for m in MAP_LAYERS],
    Input(ids.LANG_STORE, "data"),
    State(ids.map_layer(MAP_LAYERS[0].name), "hideout"),
    State(ids.MAP_REPORT_ALARM, "data"),
)
def translate_map(lang: str | None, current_hideout: dict | None, missing: list[int] | None):
    lang = normalise(lang)
    if current_hideout and current_hideout.get("t") == js_labels(lang):
        raise PreventUpdate  # already in this language: keep the layers as drawn
    settings = current_settings()
    try:
        with session_scope(settings.database_url) as session:
            risk_classes = layers.risk_legend(session, lang)
    except DatabaseUnavailable:
        raise PreventUpdate from None
    legend = components.legend_body(risk_classes, layers.service_kinds(lang), lang)
    hideouts = [_hideout(m.name, lang, risk_classes) for m in MAP_LAYERS]
    for h in hideouts:
        if h["layer"] == "community":
            h["missing"] = missing or []
    return legend, t("legend.title", lang), t("map.zoom_in", lang), *hideouts


# --- the missing-report alarm (issue 6): communities past the deadline without a report, in red ----

@dash.callback(
    Output(ids.MAP_REPORT_ALARM, "data"),
    Input(ids.MAP_COVERAGE_VERSION, "data"),
    Input(ids.MAP_REPORT_CLOCK, "n_intervals"),  # the deadline passes with nothing written
)
def report_alarm(_version, _clock):
    settings = current_settings()
    try:
        with session_scope(settings.database_url) as session:
            return reports.missing_communities(session, settings, datetime.now(UTC), principal=current_principal())
    except DatabaseUnavailable:
        raise PreventUpdate from None


# Into the community layer's hideout: the features restyle in the browser, nothing is refetched.
dash.clientside_callback(
    """function(missing, hideout) {
        var before = (hideout && hideout.missing) || [];
        if (JSON.stringify(before) === JSON.stringify(missing || [])) { return window.dash_clientside.no_update; }
        return Object.assign({}, hideout, {missing: missing || []});
    }""",
    Output(ids.map_layer("community"), "hideout", allow_duplicate=True),
    Input(ids.MAP_REPORT_ALARM, "data"),
    State(ids.map_layer("community"), "hideout"),
    prevent_initial_call=True,
)


# --- coverage choropleth (issue 5): a per-grid metric as colours, the grids worst first, the
# staffing gaps; a row or a coloured grid opens the grid in the side panel ----------------------------

COVERAGE_POLL_MS = 3000


def _choropleth(metric: dict, rows: list[dict], grid_url: str | None, lang: str) -> dl.Pane:
    """The grids coloured by the metric: geometry from the grid layer's own URL (the browser's copy,
    generalised for the zoom band), the values in the hideout (coverage_components.choropleth_values)."""
    return dl.Pane(
        dl.GeoJSON(
            id=ids.MAP_CHOROPLETH_LAYER,
            url=grid_url,
            format="geobuf",
            style={"variable": "gridmap.coverage.choroplethStyle"},
            onEachFeature={"variable": "gridmap.coverage.choroplethEach"},
            hideout={"layer": "choropleth", "metric": metric[f"name_{lang}"], "t": js_labels(lang),
                     "classes": {c["code"]: c[f"label_{lang}"] for c in metric["classes"]},
                     **coverage_components.choropleth_values(metric, rows)},
            bubblingMouseEvents=False,
        ),
        name="gm-choropleth",
        className="gm-pane-choropleth",
    )


dash.clientside_callback(
    "function(n, url, known, link) { return window.gridmap.coverage.poll(n, url, known, link); }",
    Output(ids.MAP_COVERAGE_VERSION, "data"),
    Output(f"{ids.MAP_COVERAGE_VERSION}-link", "data"),
    Input(ids.MAP_COVERAGE_POLL, "n_intervals"),
    State(f"{ids.MAP_COVERAGE_VERSION}-url", "data"),
    State(ids.MAP_COVERAGE_VERSION, "data"),
    State(f"{ids.MAP_COVERAGE_VERSION}-link", "data"),
    prevent_initial_call=True,
)

# The choropleth's grids follow the grid layer's zoom band (the same URL: no second download).
dash.clientside_callback(
    "function(url) { return url || window.dash_clientside.no_update; }",
    Output(ids.MAP_CHOROPLETH_LAYER, "url"),
    Input(ids.map_layer("grid"), "url"),
    prevent_initial_call=True,
)


@dash.callback(
    Output(ids.MAP_CHOROPLETH, "children"),
    Output(f"{ids.MAP_COVERAGE_BOX}-legend", "children"),
    Output(ids.MAP_COVERAGE_BODY, "children"),
    Output(ids.MAP_METRIC, "options"),
    Output(ids.MAP_COVERAGE_TAB, "options"),
    Output(f"{ids.MAP_COVERAGE_BOX}-summary", "children"),
    Input(ids.MAP_METRIC, "value"),
    Input(ids.MAP_COVERAGE_TAB, "value"),
    Input(ids.MAP_COVERAGE_VERSION, "data"),
    Input(ids.LANG_STORE, "data"),
    State(ids.map_layer("grid"), "url"),
)
def show_coverage(key: str | None, tab: str | None, version: int | None, lang: str | None,
                  grid_url: str | None = None):
    lang = normalise(lang)
    settings = current_settings()
    catalogue = {m["key"]: m for m in coverage_layers.metric_catalogue(settings)}
    metric = catalogue.get(key or "")
    trigger = ctx.triggered_id
    # The layer is rebuilt (and refetched) only when the metric or the data changed.
    redraw = trigger in (None, ids.MAP_METRIC, ids.MAP_COVERAGE_VERSION)
    layer = [] if redraw else dash.no_update
    if trigger == ids.MAP_COVERAGE_VERSION and not metric and tab != "gaps":
        raise PreventUpdate
    now = datetime.now(UTC)
    try:
        with session_scope(settings.database_url) as session:
            # One computation of the metric for the ranking and the colours.
            rows = coverage_layers.ranking(session, settings, now, metric["key"]) if metric else []
            if metric and redraw:
                layer = [_choropleth(metric, rows, grid_url, lang)]
            if tab == "gaps":
                body = coverage_components.gaps_view(staffing_gaps(session, settings, now).as_dict(), lang)
            elif metric:
                body = coverage_components.ranking_table(rows, lang)
            else:
                body = html.Div(t("cov.pick_metric", lang), className="gm-cov-hint")
    except (DatabaseUnavailable, GridmapError) as exc:
        body = html.Div(f"{t('cov.error', lang)}{exc}", className="gm-error")
    return (
        layer,
        coverage_components.metric_legend(metric, lang) if metric else [],
        body,
        coverage_components.metric_options(list(catalogue.values()), lang),
        coverage_components.coverage_tabs(lang),
        t("cov.box", lang),
    )


@dash.callback(
    Output(ids.MAP_SELECTED, "data", allow_duplicate=True),
    Input({"type": ids.MAP_RANK_ROW, "id": ALL}, "n_clicks"),
    Input(ids.MAP_CHOROPLETH_LAYER, "clickData"),
    prevent_initial_call=True,
)
def select_coverage_grid(_rows, feature):
    trigger = ctx.triggered_id
    if isinstance(trigger, dict):  # a row of the ranking or of the gaps (fires on creation, unclicked)
        if not ctx.triggered[0]["value"]:
            raise PreventUpdate
        return {"layer": "grid", "id": trigger["id"]}
    if not feature:
        raise PreventUpdate
    fid = feature.get("id", (feature.get("properties") or {}).get("id"))
    if fid is None:
        raise PreventUpdate
    return {"layer": "grid", "id": fid}

