"""Flask routes of tasking and reporting (issue 6), beside the Dash app.

* ``/api/tasks/<id>/items.geojson``: a task's items as points, each with its state (a lock that ran
  out counts as open) for the tasking map to colour (assets/gridmap.js ``gridmap.tasks``); only the
  items inside the user's area.
* ``/api/reports/<YYYY-MM-DD>.xlsx``: the day's roll-up as the office summary sheet (services.reports
  .export_report_xlsx), downloaded as an attachment; the user's area only, and audited.

As in web/routes.py the route only translates: the request into one service call, the result or
the service's typed error into a response (JSON with a code, never a traceback).
"""

from __future__ import annotations

import tempfile
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import quote

from flask import Flask, Response, jsonify

from gridmap.db.session import DatabaseUnavailable, session_scope
from gridmap.domain.errors import GridmapError, NotFound
from gridmap.services import reports, tasks
from gridmap.services.access import AccessDenied
from gridmap.web.auth import current_principal
from gridmap.web.context import current_settings
from gridmap.web.task_components import place

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _error(status: int, code: str, message: str) -> Response:
    response = jsonify(ok=False, code=code, error=message)
    response.status_code = status
    return response


def _status_of(exc: GridmapError) -> int:
    if isinstance(exc, AccessDenied):
        return 403
    if isinstance(exc, NotFound):
        return 404
    return 400


# Households of one building share a point: what moved draws last, on top of the open ones.
_DRAW_ORDER = {"open": 0, "invalidated": 1, "locked": 2, "failed": 3, "done": 4, "validated": 5}


def item_features(items: list) -> dict:
    """Items as a GeoJSON FeatureCollection of points; properties carry what the map shows."""
    items = sorted(items, key=lambda i: (_DRAW_ORDER.get(i.effective_state, 0), i.id))
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": i.id,
                "geometry": {"type": "Point", "coordinates": [round(i.lon, 7), round(i.lat, 7)]},
                "properties": {
                    "id": i.id, "state": i.effective_state, "overdue": i.overdue,
                    "place": place(i),
                    "assignee": i.assigned_name, "due_at": i.due_at.isoformat(),
                },
            }
            for i in items
        ],
    }


def task_items_geojson(task_id: int) -> Response:
    settings = current_settings()
    try:
        with session_scope(settings.database_url) as session:
            items = tasks.task_items(session, task_id, datetime.now(UTC), principal=current_principal())
    except DatabaseUnavailable as exc:
        return _error(503, exc.code, str(exc))
    except GridmapError as exc:
        return _error(_status_of(exc), exc.code, exc.message)
    response = jsonify(item_features(items))
    response.mimetype = "application/geo+json"
    # States change by the minute and the data is the user's area: never reuse a stale copy.
    response.cache_control.no_store = True
    return response


def download_name(report_date: date) -> tuple[str, str]:
    """(ASCII fallback, the Chinese name offices expect) of the summary sheet."""
    return f"daily-reports-{report_date.isoformat()}.xlsx", f"社区防控日报汇总表_{report_date.isoformat()}.xlsx"


def report_xlsx(day: str) -> Response:
    try:
        report_date = date.fromisoformat(day)
    except ValueError:
        return _error(400, "bad_date", f"日期格式应为 YYYY-MM-DD / a date is YYYY-MM-DD, not {day!r}")
    settings = current_settings()
    try:
        with tempfile.TemporaryDirectory(prefix="gridmap-report-") as folder:
            path = Path(folder) / "report.xlsx"
            with session_scope(settings.database_url) as session:
                reports.export_report_xlsx(session, settings, report_date, path, datetime.now(UTC),
                                           principal=current_principal())
            body = path.read_bytes()
    except DatabaseUnavailable as exc:
        return _error(503, exc.code, str(exc))
    except GridmapError as exc:
        return _error(_status_of(exc), exc.code, exc.message)
    ascii_name, name = download_name(report_date)
    response = Response(body, mimetype=XLSX)
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
    )
    response.cache_control.no_store = True
    return response


def register_task_routes(server: Flask, prefix: str = "/") -> None:
    """Add the routes under ``prefix`` (the Dash app's ``routes_pathname_prefix``)."""
    server.add_url_rule(f"{prefix}api/tasks/<int:task_id>/items.geojson", "gridmap_task_items", task_items_geojson)
    server.add_url_rule(f"{prefix}api/reports/<day>.xlsx", "gridmap_report_xlsx", report_xlsx)
