"""Plain Flask routes beside the Dash app: the maps' layer data, the data version, a health check.

The maps' dl.GeoJSON components fetch their data through their ``url`` prop, so big layers never
pass through the Dash layout or a callback:

* ``/api/layers/<layer>.pbf`` (geobuf, what the maps draw) and ``/api/layers/<layer>.geojson``
  (the same features as GeoJSON: exports, tests, the other pages), both taking ``z`` (the map's
  zoom: polygons generalised for its band, detail layers empty below their minimum zoom),
  ``bbox=west,south,east,north`` (only the features intersecting it), ``lang`` and ``v`` (the
  data version a page knew; only to make a new URL after a change). services.layers explains.
* The ETag is computed before the layer is read (services.layers.layer_etag: data version,
  parameters, the user's area, a clock bucket): a matching If-None-Match gets its 304 after one
  tiny query, the layer's query never runs; another request with the same ETag (another user of
  the same area and role, or a browser without the layer in its cache) gets the answer kept under
  it in the worker (gridmap.web.layer_cache), without the query.
The bytes come straight from PostgreSQL; the route only compresses them.
"""

from __future__ import annotations

import gzip
import os
import time

from flask import Flask, Response, current_app, jsonify, request
from sqlalchemy import text

from gridmap.config import Settings
from gridmap.db.session import DatabaseUnavailable, session_scope
from gridmap.domain.errors import GridmapError
from gridmap.services import layers
from gridmap.services.changes import data_version
from gridmap.web.auth import current_principal
from gridmap.web.context import current_settings
from gridmap.web.layer_cache import LayerCache

# Below this size compressing costs more than it saves.
GZIP_MIN_BYTES = 1024
MIMETYPES = {"geojson": "application/geo+json", "pbf": "application/x-protobuf"}


def _json_error(status: int, code: str, message: str) -> Response:
    response = jsonify(ok=False, code=code, error=message)
    response.status_code = status
    return response


def _cache_headers(response: Response, etag: str, max_age: int) -> None:
    response.set_etag(etag, weak=True)
    # Behind the log-in and cut to the user's area: a browser may keep it, a shared cache not.
    response.cache_control.private = True
    response.cache_control.max_age = max_age
    response.vary.add("Cookie")
    response.vary.add("Accept-Encoding")


def layer_response(layer: str, fmt: str = "geojson") -> Response:
    if layer not in layers.LAYERS:
        return _json_error(404, "unknown_layer", f"未知图层 / unknown layer {layer!r}")
    settings = current_settings()
    lang = request.args.get("lang", settings.default_language)
    principal = current_principal()
    try:
        view = layers.parse_view(request.args.get("z"), request.args.get("bbox"))
        with session_scope(settings.database_url) as session:
            # The version first: a write committed after it only makes this answer's ETag older.
            version = data_version(session).version
            etag = layers.layer_etag(settings, version=version, layer=layer, fmt=fmt, lang=lang, view=view,
                                     principal=principal, at=time.time())
            if request.if_none_match.contains_weak(etag):
                response = Response(status=304)
                _cache_headers(response, etag, settings.map_layer_max_age_s)
                return response
            kept = _kept_answers()
            body = kept.get(etag)
            if body is None:
                body = layers.layer_body(session, layer, fmt, lang=lang, principal=principal, view=view,
                                         settings=settings)
                kept.put(etag, body)
    except DatabaseUnavailable as exc:
        return _json_error(503, exc.code, str(exc))
    except GridmapError as exc:
        return _json_error(400, exc.code, exc.message)

    response = Response(body, mimetype=MIMETYPES[fmt])
    _cache_headers(response, etag, settings.map_layer_max_age_s)
    if len(body) >= GZIP_MIN_BYTES and "gzip" in request.headers.get("Accept-Encoding", ""):
        zipped = kept.get(etag + "|gzip")
        if zipped is None:
            zipped = gzip.compress(body, compresslevel=5)
            kept.put(etag + "|gzip", zipped)
        response.set_data(zipped)
        response.headers["Content-Encoding"] = "gzip"
    return response


def _kept_answers() -> LayerCache:
    """This app's layer answers by ETag (one per app: two apps in a process may read two databases)."""
    return current_app.extensions["gridmap_layer_cache"]


def layer_pbf_response(layer: str) -> Response:
    return layer_response(layer, "pbf")


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
    if settings.expose_worker_id:  # tests of several workers: which process answered
        response.headers["X-Gridmap-Worker"] = str(os.getpid())
    return response


def register_routes(server: Flask, settings: Settings, prefix: str = "/") -> None:
    """Add the routes under ``prefix`` (the Dash app's ``routes_pathname_prefix``)."""
    server.extensions["gridmap_layer_cache"] = LayerCache(settings.map_layer_cache_mb * 1024 * 1024)
    server.add_url_rule(f"{prefix}api/layers/<layer>.geojson", "gridmap_layer", layer_response)
    server.add_url_rule(f"{prefix}api/layers/<layer>.pbf", "gridmap_layer_pbf", layer_pbf_response)
    server.add_url_rule(f"{prefix}healthz", "gridmap_healthz", healthz)
    server.add_url_rule(f"{prefix}api/changes", "gridmap_changes", changes)
