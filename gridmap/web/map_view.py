"""A map page's layers that follow the map's view (issue 8), for every page with a district map.

The mechanism is the command map's (pages/map.py; services.layers says what the server does):
the map reports its zoom and viewport from the browser (assets/gridmap.js ``gridmap.view.moved``
on Leaflet's ``moveend``, and ``gridmap.view.first`` once, when the first layer draws) into the
store ``<map id>-view``; one clientside callback (``gridmap.view.urls``) turns it into each layer's
URL from the config built here: polygon layers sent whole follow the zoom band (generalised
geometry, refetched only when the band changes), detail layers (``map_viewport_min_zoom``) follow
the viewport from their minimum zoom on, and a hint asks to zoom in below the buildings' zoom.

Pages list their layers with ``ViewLayer`` and wire the callback with ``register_view_urls``; the
area editor and the tasking map use this with the command map's routes and JS functions.
"""

from __future__ import annotations

from typing import NamedTuple

import dash
from dash import Input, Output, State, dcc

from gridmap.services import layers


class ViewLayer(NamedTuple):
    """A layer whose URL follows the view: its name (services.layers), whether it is a polygon
    layer sent whole and generalised per zoom band (False: a detail layer, by the viewport from
    its minimum zoom, or a layer sent as stored)."""

    name: str
    generalised: bool


def view_store_id(map_id: str) -> str:
    """The store ``gridmap.view.moved`` writes the map's view to."""
    return f"{map_id}-view"


def layer_base(name: str, version: int) -> str:
    """A layer's geobuf URL before the view's parameters: the data version the page opened with,
    so a reload after a change never reuses a stale copy."""
    return dash.get_relative_path(f"/api/layers/{name}.pbf") + f"?v={version}"


def opening_url(settings, layer: ViewLayer, version: int, zoom: float) -> str | None:
    """The URL a layer starts with, for the zoom the whole district is expected to open at; None
    for a viewport layer (its URL waits for the browser's viewport)."""
    if layers.is_viewport_layer(settings, layer.name):
        return None
    band = layers.zoom_band(settings, zoom) if layer.generalised else None
    return layer_base(layer.name, version) + (f"&z={band}" if band is not None else "")


def view_config(settings, version: int, view_layers: tuple[ViewLayer, ...] | list[ViewLayer]) -> dict:
    """How the clientside callback (gridmap.view.urls) turns the map's view into layer URLs."""
    minimums, maximums = settings.map_viewport_min_zoom, settings.map_viewport_max_zoom
    return {
        "layers": [
            {"base": layer_base(m.name, version), "generalised": m.generalised, "minZoom": minimums.get(m.name),
             "maxZoom": maximums.get(m.name)}
            for m in view_layers
        ],
        "bands": sorted(settings.map_generalise_zooms),
        "fullDetail": settings.map_full_detail_zoom,
        "hintZoom": minimums.get("building", min(minimums.values(), default=0)),
    }


def hint_class(settings, bounds: list[list[float]]) -> str:
    """The zoom-in hint shows at the opening zoom when buildings need a closer one (as gridmap.view.urls)."""
    hint_zoom = view_config(settings, 0, ())["hintZoom"]
    shown = layers.fit_zoom(bounds, settings.map_fit_width_px) < hint_zoom
    return "gm-zoom-hint" + ("" if shown else " gm-zoom-hint-off")


def map_event_handlers() -> dict:
    """The MapContainer's eventHandlers reporting its view (dash-leaflet's trackViewport fails when
    the view is set by bounds; the opening fitBounds happens before handlers are bound, so the
    first layer drawn reports it once)."""
    return {"moveend": {"variable": "gridmap.view.moved"}, "layeradd": {"variable": "gridmap.view.first"}}


def view_stores(map_id: str, config_id: str, settings, version: int, view_layers) -> list[dcc.Store]:
    """The two stores a page's layout carries for ``register_view_urls``: the view the browser
    reports, and the config turning it into URLs."""
    return [dcc.Store(id=view_store_id(map_id)),
            dcc.Store(id=config_id, data=view_config(settings, version, view_layers))]


def register_view_urls(map_id: str, config_id: str, hint_id: str, layer_ids: list[str]) -> None:
    """The map's view -> every listed layer's URL (no_update where it did not change) and the hint's class.

    ``layer_ids`` are the dl.GeoJSON ids in the order of the config's layers."""
    dash.clientside_callback(
        "function() { return window.gridmap.view.urls.apply(null, arguments); }",
        *[Output(layer_id, "url") for layer_id in layer_ids],
        Output(hint_id, "className"),
        Input(view_store_id(map_id), "data"),
        State(config_id, "data"),
        *[State(layer_id, "url") for layer_id in layer_ids],
        prevent_initial_call=True,
    )
