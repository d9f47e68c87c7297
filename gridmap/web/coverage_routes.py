"""Coverage views (issue 5): a metric's grids as GeoJSON, for exports and other tools.

``/api/coverage/<metric>.geojson`` returns every grid with its value of the metric, its class and
colour (services.coverage_layers); callers add ``?v=<data version>`` so a change refetches it.
Counts only, as every layer of the map.

The command map's choropleth no longer loads it (issue 8). Of the two ways to make it city-sized
-- this geometry generalised for the zoom (layers.tolerance_deg), or only the values with the
browser styling the grid layer it already holds -- the map does the second
(coverage_components.choropleth_values, gridmap.coverage.choroplethStyle): the grids' outlines are
already in the browser, generalised per zoom band and cached under the layer's ETag, so a metric
picked or a change costs ~250 KB of values (10,000 grids) instead of ~5.6 MB of full-detail
GeoJSON, no geometry is sent twice, the choropleth follows the grid layer's band as it zooms, and
the metric is computed once for the ranking and the colours instead of once more here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from flask import Flask, Response

from gridmap.db.session import DatabaseUnavailable, session_scope
from gridmap.domain.errors import GridmapError
from gridmap.services import coverage_layers
from gridmap.web.context import current_settings
from gridmap.web.routes import _json_error


def choropleth_response(metric: str) -> Response:
    settings = current_settings()
    try:
        with session_scope(settings.database_url) as session:
            body = coverage_layers.choropleth_geojson(session, settings, datetime.now(UTC), metric)
    except DatabaseUnavailable as exc:
        return _json_error(503, exc.code, str(exc))
    except GridmapError as exc:
        return _json_error(404 if exc.code == "unknown_metric" else 400, exc.code, exc.message)
    response = Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")), mimetype="application/geo+json")
    # Computed for now: never reused; the page's ?v= asks again when the data moved.
    response.cache_control.no_store = True
    return response


def register_coverage_routes(server: Flask, prefix: str = "/") -> None:
    server.add_url_rule(f"{prefix}api/coverage/<metric>.geojson", "gridmap_coverage", choropleth_response)
