"""The Flask routes beside the Dash app, through Flask's test client (no browser)."""

from __future__ import annotations

import gzip
import json

import pytest

from gridmap.config import Settings
from gridmap.web import create_app
from tests.web.conftest import login_client  # access (issue 7)

DEAD_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:1/gridmap_nowhere"


@pytest.fixture(scope="module")
def client(database_url):
    # access (issue 7): the data routes need a log-in.
    return login_client(create_app(Settings(database_url=database_url)).server.test_client())


def test_healthz(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.get_json() == {"ok": True, "db": True}


def test_healthz_reports_a_dead_database():
    client = create_app(Settings(database_url=DEAD_DATABASE)).server.test_client()
    resp = client.get("/healthz")
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["ok"] is False and body["db"] is False
    assert "数据库不可用" in body["error"] and "127.0.0.1:1" in body["error"]
    # The layers say so too, as JSON, not as a stack trace (access, issue 7: for a browser holding a
    # session, which cannot be checked while the database is down).
    with client.session_transaction() as cookie:
        cookie["sid"] = "a-session-token"
    resp = client.get("/api/layers/grid.geojson")
    assert resp.status_code == 503 and resp.get_json()["code"] == "database_unavailable"


def test_layer_is_compressed_cached_and_revalidated(client, session):
    resp = client.get("/api/layers/grid.geojson", headers={"Accept-Encoding": "gzip"})
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/geo+json")
    assert resp.headers["Content-Encoding"] == "gzip"
    assert "max-age=" in resp.headers["Cache-Control"]
    fc = json.loads(gzip.decompress(resp.data))
    assert fc["type"] == "FeatureCollection" and fc["features"]
    again = client.get("/api/layers/grid.geojson", headers={"If-None-Match": resp.headers["ETag"]})
    assert again.status_code == 304 and not again.data


def test_layer_language_and_unknown_layer(client):
    en = client.get("/api/layers/community.geojson?lang=en").get_json()
    assert {f["properties"]["risk_name"] for f in en["features"]} <= {"Low risk", "Medium risk", "High risk"}
    resp = client.get("/api/layers/key_person.geojson")
    assert resp.status_code == 404 and resp.get_json()["code"] == "unknown_layer"


def test_settings_travel_with_the_app(database_url):
    # Two apps in one process, each with its own database: nothing is read from a global.
    ok = create_app(Settings(database_url=database_url)).server.test_client()
    dead = create_app(Settings(database_url=DEAD_DATABASE)).server.test_client()
    assert ok.get("/healthz").status_code == 200
    assert dead.get("/healthz").status_code == 503
    assert ok.get("/healthz").status_code == 200
