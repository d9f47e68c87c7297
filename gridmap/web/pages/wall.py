"""The wall display (path "/wall", issue 5): the whole district coloured by class, the figures a
command room watches, and two trends, legible across a room on a 1920×1080 screen; no controls.

It refreshes by itself: a dcc.Interval polls ``/api/changes`` from the browser every
``POLL_MS``; only when the data version moved does the server recompute the figures, and the map's
layers refetch because their ``url`` takes ``?v=<version>``. The layers come as geobuf, generalised
for the zoom the district fits at (services.layers, issue 8): a whole city's 10,000 grids draw. Counts only: any logged-in user may
open it, and nothing on it names a person. ``?lang=en`` fixes the language (a wall has no switch).
With ``wall_rotation_seconds`` > 0 it alternates between the map view and the trends-and-gaps view.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import dash
import dash_leaflet as dl
import flask
from dash import Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from gridmap.db.session import DatabaseUnavailable, session_scope
from gridmap.services import coverage_layers, layers
from gridmap.services.changes import data_version
from gridmap.web import coverage_components as cc
from gridmap.web import ids
from gridmap.web.context import current_settings
from gridmap.web.i18n import normalise, t

dash.register_page(
    __name__,
    path="/wall",
    name="Wall",
    title="指挥大屏 · Control wall",
    nav_key="nav.wall",
    order=80,
)

POLL_MS = 2000
VIEWS = 2  # the map view and the trends-and-gaps view, when rotation is on
# Drawn bottom to top; styled by gridmap.coverage.wallStyle (the command map's colours, dark ground).
WALL_LAYERS = ("community", "grid", "controlled_area", "district")


def _layer_url(layer: str, version: int | None, lang: str, band: int | None) -> str:
    url = dash.get_relative_path(f"/api/layers/{layer}.pbf") + f"?lang={lang}&v={version or 0}"
    return url + (f"&z={band}" if band is not None else "")


def _band(settings, bounds: list[list[float]] | None) -> int | None:
    """The generalisation band of the wall's fixed view (the whole district)."""
    return layers.zoom_band(settings, layers.fit_zoom(bounds, settings.map_fit_width_px)) if bounds else None


def _map(bounds: list[list[float]], version: int, lang: str, band: int | None) -> dl.MapContainer:
    children = [
        dl.Pane(
            dl.GeoJSON(
                id=ids.wall_layer(name),
                url=_layer_url(name, version, lang, band),
                format="geobuf",
                style={"variable": "gridmap.coverage.wallStyle"},
                hideout={"layer": name},
                interactive=False,
            ),
            name=f"gm-wall-{name}",
            className=f"gm-wall-pane-{name}",
        )
        for name in WALL_LAYERS
    ]
    return dl.MapContainer(
        children,
        id=ids.WALL_MAP,
        bounds=bounds,
        trackViewport=False,
        boundsOptions={"padding": [24, 24]},
        zoomSnap=0.1,
        zoomControl=False,
        dragging=False,
        scrollWheelZoom=False,
        doubleClickZoom=False,
        touchZoom=False,
        boxZoom=False,
        keyboard=False,
        attributionControl=False,
        className="gm-wall-map",
    )


def _graph(graph_id: str) -> dcc.Graph:
    return dcc.Graph(id=graph_id, config={"displayModeBar": False, "staticPlot": True, "responsive": True},
                     className="gm-wall-chart")


def layout(lang: str | None = None, **_query) -> html.Div:
    settings = current_settings()
    forced = lang if lang in ("zh", "en") else None
    lang = normalise(forced or settings.default_language)
    try:
        with session_scope(settings.database_url) as session:
            bounds = layers.district_bounds(session)
            version = data_version(session).version
            district = layers.overview(session, lang).get("name") or ""
    except DatabaseUnavailable as exc:
        return html.Div([html.B(t("wall.error", lang)), html.Div(str(exc))], className="gm-error")
    if bounds is None:
        return html.Div(t("error.empty", lang), className="gm-error")
    rotation = max(settings.wall_rotation_seconds, 0)
    return html.Div(
        id=ids.WALL,
        className="gm-wall gm-wall-view-0",
        children=[
            dcc.Store(id=ids.WALL_VERSION, data=version),
            dcc.Store(id=ids.WALL_LINK, data="ok"),
            dcc.Store(id=ids.WALL_CHANGES_URL, data=dash.get_relative_path("/api/changes")),
            dcc.Store(id=ids.WALL_LANG, data=forced),
            dcc.Interval(id=ids.WALL_POLL, interval=POLL_MS),
            dcc.Interval(id=ids.WALL_CLOCK, interval=max(settings.report_alarm_refresh_seconds, 5) * 1000),
            dcc.Interval(id=ids.WALL_ROTATE, interval=max(rotation, 1) * 1000, disabled=rotation <= 0),
            html.Header(
                [
                    html.Div([html.Div(className="gm-logo gm-wall-logo"),
                              html.H1(t("wall.title", lang), id=ids.WALL_TITLE),
                              html.Span(district, className="gm-wall-district")],
                             className="gm-wall-brand"),
                    html.Div([html.Div(id=f"{ids.WALL}-link", className="gm-wall-link"),
                              html.Div(id=ids.WALL_UPDATED, className="gm-wall-updated")],
                             className="gm-wall-status"),
                ],
                className="gm-wall-top",
            ),
            html.Div(
                [
                    html.Section(
                        [_map(bounds, version, lang, _band(settings, bounds)), html.Div(id=ids.WALL_LEGEND, className="gm-wall-legend")],
                        className="gm-wall-mapbox",
                    ),
                    html.Section(
                        [
                            html.H2(id=f"{ids.WALL_CLASSES}-title", className="gm-wall-h"),
                            html.Div(id=ids.WALL_CLASSES, className="gm-wall-classes"),
                            html.H2(id=f"{ids.WALL_KPIS}-title", className="gm-wall-h"),
                            html.Div(id=ids.WALL_KPIS, className="gm-wall-kpis"),
                            html.Div([_graph(ids.WALL_CHART_CONTACTS), _graph(ids.WALL_CHART_REPORTS)],
                                     className="gm-wall-charts"),
                        ],
                        className="gm-wall-side",
                    ),
                    html.Section(id=ids.WALL_GAPS, className="gm-wall-extra"),
                ],
                className="gm-wall-body",
            ),
            html.Footer(id=f"{ids.WALL}-footer", className="gm-wall-footer"),
        ],
    )


# --- callbacks ---------------------------------------------------------------------------------------

dash.clientside_callback(
    "function(n, url, known, link) { return window.gridmap.coverage.poll(n, url, known, link); }",
    Output(ids.WALL_VERSION, "data"),
    Output(ids.WALL_LINK, "data"),
    Input(ids.WALL_POLL, "n_intervals"),
    State(ids.WALL_CHANGES_URL, "data"),
    State(ids.WALL_VERSION, "data"),
    State(ids.WALL_LINK, "data"),
    prevent_initial_call=True,
)

dash.clientside_callback(
    f"function(n) {{ return window.gridmap.coverage.rotate(n, {VIEWS}); }}",
    Output(ids.WALL, "className"),
    Input(ids.WALL_ROTATE, "n_intervals"),
    prevent_initial_call=True,
)


@dash.callback(
    Output(ids.WALL_CLASSES, "children"),
    Output(ids.WALL_KPIS, "children"),
    Output(ids.WALL_CHART_CONTACTS, "figure"),
    Output(ids.WALL_CHART_REPORTS, "figure"),
    Output(ids.WALL_GAPS, "children"),
    Output(ids.WALL_LEGEND, "children"),
    Output(ids.WALL_TITLE, "children"),
    Output(f"{ids.WALL_CLASSES}-title", "children"),
    Output(f"{ids.WALL_KPIS}-title", "children"),
    Output(f"{ids.WALL}-footer", "children"),
    Output(ids.WALL_UPDATED, "children"),
    Output(f"{ids.WALL}-link", "children"),
    [Output(ids.wall_layer(name), "url") for name in WALL_LAYERS],
    Output(ids.wall_layer("community"), "hideout"),
    Input(ids.WALL_VERSION, "data"),
    Input(ids.LANG_STORE, "data"),
    Input(ids.WALL_CLOCK, "n_intervals"),  # reports go missing at the deadline with nothing written
    State(ids.WALL_LANG, "data"),
)
def refresh_wall(version: int | None, stored_lang: str | None, _clock, forced_lang: str | None):
    lang = normalise(forced_lang or stored_lang)
    settings = current_settings()
    now = datetime.now(UTC)
    try:
        with session_scope(settings.database_url) as session:
            figures = _figures(session, settings, now)
            risk_classes = layers.risk_legend(session, lang)
            band = _band(settings, layers.district_bounds(session))
    except DatabaseUnavailable as exc:
        raise PreventUpdate from exc  # the link state shows; the last figures stay up
    days = coverage_layers.TREND_DAYS
    stamp = datetime.fromisoformat(figures["now"]).strftime("%H:%M:%S")
    updated = [html.Span(t("wall.updated", lang), className="gm-wall-updated-label"),
               html.Span(stamp, id=f"{ids.WALL_UPDATED}-time", className="gm-wall-updated-time",
                         **{"data-version": str(version or 0)})]
    return (
        cc.wall_classes(figures, lang),
        cc.wall_kpis(figures, lang),
        cc.contacts_chart(figures, lang, days),
        cc.reports_chart(figures, lang, days),
        cc.wall_gap_list(figures["gaps"], lang),
        cc.wall_legend(risk_classes, lang),
        t("wall.title", lang),
        t("wall.households_by_class", lang),
        t("wall.alarms", lang),
        t("wall.counts_only", lang),
        updated,
        t("wall.link_down", lang),
        *[_layer_url(name, version, lang, band) for name in WALL_LAYERS],
        # communities whose report is missing: outlined in red (gridmap.coverage.wallStyle)
        {"layer": "community", "missing": figures["reports_missing_ids"]},
    )


_FIGURES_LOCK = threading.Lock()


def _figures(session, settings, now: datetime) -> dict:
    """The wall's figures, computed once per data version and clock tick in this worker.

    Every wall display refreshes when the data version moves and at every tick of
    ``report_alarm_refresh_seconds`` (reports go missing with nothing written). The figures are
    the same for every display (counts of the whole district, no user's area), and a city's take
    ~2.5 s to compute: the second display of a command room to ask within a tick gets the first
    one's, as of at most one tick ago, like a display that ticked a moment earlier.
    """
    tick = max(settings.report_alarm_refresh_seconds, 5)
    key = (data_version(session).version, int(now.timestamp() // tick))
    memo = flask.current_app.extensions.setdefault("gridmap_wall_figures", {})
    with _FIGURES_LOCK:
        if memo.get("key") == key:
            return memo["figures"]
    figures = coverage_layers.wall_figures(session, settings, now).as_dict()
    with _FIGURES_LOCK:
        memo.update(key=key, figures=figures)
    return figures


# The link state: when polling fails (database down, session over) a warning shows by the time.
dash.clientside_callback(
    "function(link) { return 'gm-wall-link' + (link === 'down' ? ' gm-wall-link-down' : ''); }",
    Output(f"{ids.WALL}-link", "className"),
    Input(ids.WALL_LINK, "data"),
)
