"""PostgreSQL going away under a running app: it says so, then recovers by itself; and a write cut off
by a dropped connection leaves nothing half-done.

For the client, ``pg_terminate_backend`` on its connections is what a server restart looks like: the
pooled connections die. While connections are refused (``ALLOW_CONNECTIONS false``, the window of a
restart) the app answers 503 "database unavailable"; once they are allowed again it serves as
before, without being restarted (``pool_pre_ping`` replaces the dead connections).

A real restart runs on a scratch cluster the test creates for itself (``pg_createcluster`` of
Debian's postgresql-common, on a free port, dropped afterwards), so it runs in every suite without
disturbing the shared cluster the other tests use.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from gridmap.config import Settings
from gridmap.db.session import DatabaseUnavailable, session_scope
from gridmap.services import access, auth
from gridmap.services.importing import import_layer
from gridmap.web import create_app
from tests.conftest import _admin_execute
from tests.web.conftest import login_client


def _terminate(database: str) -> None:
    _admin_execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{database}' AND pid <> pg_backend_pid()"
    )


def _wait_for(predicate, seconds: float = 20.0):
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


@pytest.fixture
def client(database_url):
    return login_client(create_app(Settings(database_url=database_url)).server.test_client())


def test_terminated_connections_are_replaced_unnoticed(client, database_url):
    assert client.get("/api/layers/grid.geojson").status_code == 200
    _terminate(make_url(database_url).database)
    # The pool's connections are dead; the next request gets fresh ones without an error.
    assert client.get("/api/layers/grid.geojson").status_code == 200
    assert client.get("/healthz").get_json() == {"ok": True, "db": True}


def test_the_app_says_unavailable_then_recovers_by_itself(client, database_url):
    database = make_url(database_url).database
    assert client.get("/healthz").status_code == 200
    try:
        _admin_execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        _terminate(database)
        health = client.get("/healthz")
        assert health.status_code == 503 and "数据库不可用" in health.get_json()["error"]
        layer = client.get("/api/layers/grid.geojson")
        assert layer.status_code == 503 and layer.get_json()["code"] == "database_unavailable"
        page = client.get("/")
        assert page.status_code == 503 and "数据库暂时不可用" in page.get_data(as_text=True)
        assert "Traceback" not in page.get_data(as_text=True)
    finally:
        _admin_execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
    # The same app, not restarted, serves again; the user is still logged in.
    assert _wait_for(lambda: client.get("/healthz").status_code == 200)
    assert client.get("/api/layers/grid.geojson").status_code == 200
    assert client.get("/").status_code == 200


def _staff_file(tmp_path, community: str, n: int):
    path = tmp_path / "staff.csv"
    rows = "".join(f"断线测试{i},volunteer,{community},1380000{i:04d}\n" for i in range(n))
    path.write_text("name,role,community_code,phone\n" + rows, encoding="utf-8")
    return path


def test_an_import_cut_off_before_commit_leaves_zero_rows(database_url, settings, tmp_path, engine):
    with engine.connect() as conn:
        community = conn.execute(text("SELECT code FROM community ORDER BY id LIMIT 1")).scalar_one()
    path = _staff_file(tmp_path, community, 300)
    written = None
    with pytest.raises(DatabaseUnavailable), session_scope(database_url) as session:
        pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        written = import_layer(session, "staff", path, settings=settings).rows_written
        # The rows are written in the transaction; the server goes away before the commit.
        _admin_execute(f"SELECT pg_terminate_backend({int(pid)})")
    assert written == 300
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM staff WHERE name LIKE '断线测试%'")).scalar_one() == 0
        assert conn.execute(text(
            "SELECT count(*) FROM audit_log WHERE table_name = 'staff' AND after->>'name' LIKE '断线测试%'")
        ).scalar_one() == 0


def test_an_edit_cut_off_before_commit_is_not_saved(database_url, engine):
    with session_scope(database_url) as session:
        leader = access.load_principal(session, auth.get_user(session, "gridleader").id)
        person = access.list_key_persons(session, leader)[0]
    with pytest.raises(DatabaseUnavailable), session_scope(database_url) as session:
        pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        access.update_key_person(session, leader, person["id"], person["version"], {"note": "断线前的修改"})
        _admin_execute(f"SELECT pg_terminate_backend({int(pid)})")
    with engine.connect() as conn:
        row = conn.execute(text("SELECT note, version FROM key_person WHERE id = :id"), {"id": person["id"]}).one()
    assert row.version == person["version"] and row.note != "断线前的修改"


# -- a real restart, on a cluster of the test's own ----------------------------------------------

# A scratch PostgreSQL 15 cluster the test creates, restarts and drops: a real server stopping
# and starting under the app, without touching the shared cluster other tests run against.
SCRATCH_CLUSTER = ("15", "gridmap_restart")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ctl(cluster: tuple[str, str], action: str) -> None:
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *cluster, action],
                   check=True, timeout=120, capture_output=True)


@pytest.fixture
def scratch_cluster():
    """(cluster, url) of a new cluster with trust auth on a free port of 127.0.0.1; dropped after."""
    version, name = SCRATCH_CLUSTER
    subprocess.run(["pg_dropcluster", "--stop", version, name], capture_output=True)  # a leftover
    port = _free_port()
    subprocess.run(
        ["pg_createcluster", version, name, "--port", str(port), "--start",
         "--", "--auth-local=trust", "--auth-host=trust"],
        check=True, timeout=180, capture_output=True,
    )
    try:
        yield SCRATCH_CLUSTER, f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(["pg_dropcluster", "--stop", version, name], capture_output=True, timeout=120)


@pytest.mark.restart
def test_a_real_restart_of_postgresql(scratch_cluster):
    """Stop the cluster under a running app, see 503, start it, see the app serve again by itself.

    ``GRIDMAP_TEST_RESTART_CLUSTER`` ("15 main") and ``GRIDMAP_TEST_RESTART_URL`` point it at another
    cluster instead, e.g. the one the app runs on (then run it alone: ``-p no:xdist -m restart``).
    """
    cluster, url = scratch_cluster
    if os.environ.get("GRIDMAP_TEST_RESTART_CLUSTER"):
        cluster = tuple(os.environ["GRIDMAP_TEST_RESTART_CLUSTER"].split())
        url = os.environ.get("GRIDMAP_TEST_RESTART_URL") or url
    client = create_app(Settings(database_url=url)).server.test_client()

    def query_ok() -> bool:
        try:
            with session_scope(url) as session:
                return session.execute(text("SELECT 1")).scalar_one() == 1
        except DatabaseUnavailable:
            return False

    assert client.get("/healthz").status_code == 200 and query_ok()
    started = time.monotonic()
    try:
        _ctl(cluster, "stop")
        down = client.get("/healthz")
        assert down.status_code == 503 and "数据库不可用" in down.get_json()["error"]
        assert not query_ok()
    finally:
        _ctl(cluster, "start")
    assert _wait_for(lambda: client.get("/healthz").status_code == 200, seconds=60)
    assert query_ok()
    print(f"\nreal restart of {' '.join(cluster)}: served again {time.monotonic() - started:.1f} s after the stop")
    # And a restart proper (stop and start in one), the pool once more full of dead connections.
    _ctl(cluster, "restart")
    assert _wait_for(lambda: client.get("/healthz").status_code == 200, seconds=60)
    assert query_ok()
