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


# --- city scale (issue 8) -------------------------------------------------------------------------


def test_geobuf_layer_with_zoom_and_bbox(client):
    import geobuf

    whole = client.get("/api/layers/building.geojson").get_json()
    resp = client.get("/api/layers/building.pbf?z=18&bbox=-180,-90,180,90", headers={"Accept-Encoding": "gzip"})
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/x-protobuf"
    assert resp.headers["Content-Encoding"] == "gzip"
    decoded = geobuf.decode(gzip.decompress(resp.data))
    assert sorted(f["properties"]["id"] for f in decoded["features"]) == sorted(f["id"] for f in whole["features"])
    # below the buildings' minimum zoom: empty, whatever the bbox
    far = client.get("/api/layers/building.geojson?z=10&bbox=-180,-90,180,90").get_json()
    assert far == {"type": "FeatureCollection", "features": []}
    grids = client.get("/api/layers/grid.pbf?z=12")
    assert grids.status_code == 200 and geobuf.decode(grids.data)["features"]


def test_revalidation_does_not_run_the_layer_query(client, monkeypatch):
    from gridmap.services import layers

    first = client.get("/api/layers/grid.pbf?z=12&v=1")
    assert first.status_code == 200 and first.headers["ETag"]

    def no_query(*_a, **_k):
        raise AssertionError("the layer query ran for a revalidation")

    monkeypatch.setattr(layers, "layer_body", no_query)
    again = client.get("/api/layers/grid.pbf?z=12&v=1", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and not again.data
    assert again.headers["ETag"] == first.headers["ETag"]
    # another view of the layer is another ETag: it is read (here the patch makes that a 500)
    other = client.get("/api/layers/grid.pbf?z=14&v=1", headers={"If-None-Match": first.headers["ETag"]})
    assert other.status_code == 500


def test_bad_view_is_a_400(client):
    resp = client.get("/api/layers/building.pbf?z=12&bbox=1,2,3")
    assert resp.status_code == 400 and resp.get_json()["code"] == "bad_view"


def test_changes_names_no_worker_by_default(client, database_url):
    assert "X-Gridmap-Worker" not in client.get("/api/changes").headers
    exposed = login_client(create_app(Settings(database_url=database_url, expose_worker_id=True)).server.test_client())
    assert exposed.get("/api/changes").headers["X-Gridmap-Worker"].isdigit()


def test_layer_answers_are_kept_by_etag_until_the_data_moves(database_url, engine, monkeypatch):
    """Another request for the same layer of the same data (no If-None-Match: another browser)
    gets the answer kept under its ETag, without the query; a write moves the version, and the
    layer is read again."""
    from sqlalchemy import text

    from gridmap.services import layers

    client = login_client(create_app(Settings(database_url=database_url)).server.test_client())
    reads = []
    real = layers.layer_body
    monkeypatch.setattr(layers, "layer_body", lambda *a, **k: reads.append(a[1]) or real(*a, **k))
    url, gz = "/api/layers/grid.pbf?z=13", {"Accept-Encoding": "gzip"}
    first, second = client.get(url, headers=gz), client.get(url, headers=gz)
    plain = client.get(url)
    assert first.status_code == second.status_code == plain.status_code == 200
    assert reads == ["grid"]
    assert first.data == second.data and first.headers["ETag"] == second.headers["ETag"]
    assert gzip.decompress(first.data) == plain.data
    with engine.begin() as conn:  # a write (a no-op one still moves the version)
        conn.execute(text("UPDATE grid SET name = name WHERE id = (SELECT min(id) FROM grid)"))
    third = client.get(url, headers=gz)
    assert reads == ["grid", "grid"] and third.headers["ETag"] != first.headers["ETag"]


def test_the_kept_answers_stay_within_their_budget():
    from gridmap.web.layer_cache import LayerCache

    kept = LayerCache(max_bytes=10)
    kept.put("a", b"1234")
    kept.put("b", b"5678")
    assert kept.get("a") == b"1234"  # now the most recently used
    kept.put("c", b"90ab")  # 12 bytes: the least recently used ("b") goes
    assert kept.get("b") is None and kept.get("a") == b"1234" and kept.get("c") == b"90ab"
    assert kept.bytes == 8 and len(kept) == 2
    kept.put("big", b"x" * 11)  # larger than the budget: not kept, nothing evicted for it
    assert kept.get("big") is None and len(kept) == 2


def test_a_kept_answer_goes_only_to_users_of_its_area(database_url):
    """Key households are cut to the user's area: the commander's kept answer never reaches the
    grid leader, whose ETag names another area."""
    app = create_app(Settings(database_url=database_url))
    commander = login_client(app.server.test_client())
    leader = login_client(app.server.test_client(), "gridleader", "demo-gridleader")
    url = "/api/layers/key_household.geojson?z=18&bbox=-180,-90,180,90"
    whole = commander.get(url)
    own = leader.get(url)
    assert whole.status_code == own.status_code == 200
    assert whole.headers["ETag"] != own.headers["ETag"]
    n_whole, n_own = len(whole.get_json()["features"]), len(own.get_json()["features"])
    assert 0 < n_own < n_whole
    assert len(leader.get(url).get_json()["features"]) == n_own  # its own kept answer


def test_wall_figures_are_computed_once_per_version_and_tick(database_url, session, monkeypatch):
    """Wall displays of one command room share a worker's figures within a clock tick, until a
    write moves the data version."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import text

    from gridmap.services import coverage_layers

    settings = Settings(database_url=database_url)
    app = create_app(settings)
    from gridmap.web.pages import wall  # pages register themselves with an app

    computed = []
    real = coverage_layers.wall_figures
    monkeypatch.setattr(coverage_layers, "wall_figures", lambda *a: computed.append(a[2]) or real(*a))
    tick = settings.report_alarm_refresh_seconds
    start = datetime.fromtimestamp((datetime.now(UTC).timestamp() // tick) * tick, UTC)
    with app.server.app_context():
        first = wall._figures(session, settings, start)
        assert wall._figures(session, settings, start + timedelta(seconds=tick - 1)) == first
        assert len(computed) == 1
        wall._figures(session, settings, start + timedelta(seconds=tick))  # the next tick
        assert len(computed) == 2
        session.execute(text("UPDATE grid SET name = name WHERE id = (SELECT min(id) FROM grid)"))  # a write
        wall._figures(session, settings, start + timedelta(seconds=tick))
        assert len(computed) == 3
    with create_app(settings).server.app_context():  # another app (worker): its own
        wall._figures(session, settings, start + timedelta(seconds=tick))
        assert len(computed) == 4
