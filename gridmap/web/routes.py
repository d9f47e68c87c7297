"""Plain Flask routes beside the Dash app: the map's layer data and a health check.

The map's dl.GeoJSON components fetch their data from ``/api/layers/<layer>.geojson`` through
their ``url`` prop, so big layers never pass through the Dash layout or a callback. The JSON text
comes straight from PostgreSQL; the route only compresses it and lets the browser revalidate it.
"""

from __future__ import annotations

import gzip
import hashlib
import os

from flask import Flask, Response, jsonify, request
from sqlalchemy import text

from gridmap.db.session import DatabaseUnavailable, session_scope
from gridmap.domain.errors import GridmapError
from gridmap.services import layers
from gridmap.services.changes import data_version
from gridmap.web.auth import current_principal
from gridmap.web.context import current_settings

# The browser may reuse a layer for this long before revalidating it (an ETag makes that cheap).
LAYER_MAX_AGE_S = 60
# Below this size compressing costs more than it saves.
GZIP_MIN_BYTES = 1024


def _json_error(status: int, code: str, message: str) -> Response:
    response = jsonify(ok=False, code=code, error=message)
    response.status_code = status
    return response


def layer_response(layer: str) -> Response:
    if layer not in layers.LAYERS:
        return _json_error(404, "unknown_layer", f"未知图层 / unknown layer {layer!r}")
    settings = current_settings()
    lang = request.args.get("lang", settings.default_language)
    try:
        with session_scope(settings.database_url) as session:
            body = layers.layer_geojson_text(session, layer, lang=lang, principal=current_principal()).encode()
    except DatabaseUnavailable as exc:
        return _json_error(503, exc.code, str(exc))
    except GridmapError as exc:
        return _json_error(400, exc.code, exc.message)

    response = Response(body, mimetype="application/geo+json")
    response.set_etag(hashlib.sha1(body).hexdigest()[:20], weak=True)
    # Behind the log-in and cut to the user's area: a browser may keep it, a shared cache not.
    response.cache_control.private = True
    response.vary.add("Cookie")
    response.cache_control.max_age = LAYER_MAX_AGE_S
    response.vary.add("Accept-Encoding")
    response = response.make_conditional(request)
    if (
        response.status_code == 200
        and len(body) >= GZIP_MIN_BYTES
        and "gzip" in request.headers.get("Accept-Encoding", "")
    ):
        response.set_data(gzip.compress(body, compresslevel=5))
        response.headers["Content-Encoding"] = "gzip"
    return response


def healthz() -> Response:
    settings = current_settings()
    try:
        with session_scope(settings.database_url) as session:
            session.execute(text("SELECT 1"))
    except DatabaseUnavailable as exc:
        response = jsonify(ok=False, db=False, error=str(exc))
        response.status_code = 503
        return response
    return jsonify(ok=True, db=True)


def changes() -> Response:
    """The data version (services.changes): screens poll it and reload only when it moved."""
    settings = current_settings()
    try:
        with session_scope(settings.database_url) as session:
            version = data_version(session)
    except DatabaseUnavailable as exc:
        return _json_error(503, exc.code, str(exc))
    response = jsonify(ok=True, **version.as_dict())
    response.cache_control.no_store = True
    response.headers["X-Gridmap-Worker"] = str(os.getpid())  # workers (issue 8): which process answered
    return response


def register_routes(server: Flask, prefix: str = "/") -> None:
    """Add the routes under ``prefix`` (the Dash app's ``routes_pathname_prefix``)."""
    server.add_url_rule(f"{prefix}api/layers/<layer>.geojson", "gridmap_layer", layer_response)
    server.add_url_rule(f"{prefix}healthz", "gridmap_healthz", healthz)
    server.add_url_rule(f"{prefix}api/changes", "gridmap_changes", changes)
