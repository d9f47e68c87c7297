"""Several workers, one truth: a real gunicorn with two workers against the fixture database.

The app keeps no state in its processes. A change committed to PostgreSQL is seen through every
worker within one polling interval (5 s), and a session cookie issued by one worker is accepted by
the other: sessions live in the database and the signing key is shared by all workers (here a
fresh key file that the two workers race to create, as on a first start).

Which worker answered is told by ``/api/changes``'s ``X-Gridmap-Worker`` header (sent only with
``GRIDMAP_EXPOSE_WORKER_ID`` on, as here: by default a user learns no pid) and, for every other
route, by gunicorn's access log, whose ``%(p)s`` is the worker's pid.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.parse import urlencode

import pytest
from sqlalchemy import text

from tests.web.conftest import DEMO_PASSWORD, DEMO_USER

pytestmark = pytest.mark.workers

REPO = Path(__file__).resolve().parents[2]
WORKERS = 2
PROPAGATION_S = 5.0  # a wall or map polls /api/changes this often
STARTUP_S = 90.0
COOKIE = "gridmap_session"
MARK = "（多进程测试）"


@dataclass
class Gunicorn:
    process: subprocess.Popen
    url: str
    access_log: Path
    error_log: Path

    def served_by(self, probe: str, requests: int) -> set[int]:
        """Pids of the workers that answered the ``requests`` requests whose URL contains ``probe``.

        A worker logs a request after sending its response: wait a moment for the last lines.
        """
        deadline = time.monotonic() + 5
        while True:
            lines = [line for line in self.access_log.read_text().splitlines() if probe in line]
            if len(lines) >= requests or time.monotonic() > deadline:
                return {int(line.partition(" ")[0].strip("<>")) for line in lines}  # %(p)s is "<pid>"
            time.sleep(0.05)


def _gunicorn() -> str:
    """The gunicorn beside this interpreter (.venv/bin), else the one on PATH."""
    beside = Path(sys.executable).with_name("gunicorn")
    return str(beside) if beside.exists() else (shutil.which("gunicorn") or pytest.fail("gunicorn is not installed"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, cookie: str | None = None, timeout: float = 30) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, headers={"Cookie": f"{COOKIE}={cookie}"} if cookie else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def _wait_healthy(server: Gunicorn) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"gunicorn exited with {server.process.returncode}:\n{server.error_log.read_text()[-3000:]}")
        try:
            if _get(server.url + "/healthz", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"gunicorn did not answer /healthz within {STARTUP_S:.0f} s:\n{server.error_log.read_text()[-3000:]}")


@pytest.fixture
def gunicorn(database_url: str, tmp_path: Path) -> Iterator[Gunicorn]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "GRIDMAP_SECRET_KEY"}
    # A key file that does not exist yet: the workers create and share it (no secret of its own in any process).
    env.update(GRIDMAP_DATABASE_URL=database_url, GRIDMAP_SECRET_FILE=str(tmp_path / "secret"),
               GRIDMAP_EXPOSE_WORKER_ID="1")
    access_log, error_log = tmp_path / "access.log", tmp_path / "error.log"
    process = subprocess.Popen(
        [
            _gunicorn(), "-w", str(WORKERS), "-b", f"127.0.0.1:{port}",
            "--access-logfile", str(access_log), "--access-logformat", "%(p)s %(r)s %(s)s",
            "--error-logfile", str(error_log), "app:server",
        ],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    server = Gunicorn(process, f"http://127.0.0.1:{port}", access_log, error_log)
    try:
        _wait_healthy(server)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)  # the master stops its workers
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _log_in(base_url: str) -> str:
    """Log in through the form; the session cookie's value."""
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base_url + "/login", timeout=30).read().decode()
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    form = urlencode({"username": DEMO_USER, "password": DEMO_PASSWORD, "csrf": csrf, "next": "/"}).encode()
    opener.open(base_url + "/login", data=form, timeout=30).read()
    return next(c.value for c in jar if c.name == COOKIE)


def _fan_out(calls: list, threads: int = 4) -> list:
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda call: call(), calls))


def _versions_by_worker(base_url: str, cookie: str, requests: int = 24) -> dict[int, set[int]]:
    """Concurrent /api/changes requests: the data versions each worker answered."""
    seen: dict[int, set[int]] = {}
    for status, headers, body in _fan_out([lambda: _get(base_url + "/api/changes", cookie)] * requests):
        assert status == 200, body[:300]
        pid = int(headers["X-Gridmap-Worker"])
        seen.setdefault(pid, set()).add(int(re.search(rb'"version":\s*(\d+)', body).group(1)))
    return seen


def _round(server: Gunicorn, path: str, cookie: str, status: int, contains: bytes = b"", requests: int = 8) -> set[int]:
    """``requests`` concurrent GETs of ``path``, each answering ``status`` (and holding ``contains``);
    the pids of the workers that answered."""
    probe = f"probe={time.monotonic_ns()}"
    results = _fan_out([lambda: _get(f"{server.url}{path}?{probe}", cookie)] * requests)
    for got, _, body in results:
        assert got == status, (path, got, body[:300])
        assert contains in body, (path, body[:300])
    return server.served_by(probe, requests)


def _until_both_workers(call, rounds: int = 20):
    """``call()`` until it has heard from every worker."""
    for _ in range(rounds):
        result = call()
        if len(result) >= WORKERS:
            return result
    pytest.fail(f"only {len(result)} of {WORKERS} workers answered in {rounds} rounds")


def test_every_worker_serves_the_same_truth(gunicorn: Gunicorn, engine):
    base = gunicorn.url
    cookie = _log_in(base)  # served by one worker

    # The cookie that worker issued is accepted by both (no secret, no session kept per process).
    before = _until_both_workers(lambda: _versions_by_worker(base, cookie))
    assert len({v for versions in before.values() for v in versions}) == 1, before
    (v0,) = next(iter(before.values()))
    assert all(pid != gunicorn.process.pid for pid in before)  # workers answer, not the master

    # Every page and the Dash endpoints behind it work in both workers.
    for path in ("/", "/_dash-layout", "/_dash-dependencies", "/api/layers/building.geojson"):
        _until_both_workers(lambda path=path: _round(gunicorn, path, cookie, 200))

    with engine.connect() as conn:
        grid_id, name = conn.execute(text("SELECT id, name FROM grid ORDER BY id LIMIT 1")).one()
    try:
        # A change committed by another process (a CLI, another app node, a direct SQL edit) ...
        with engine.begin() as conn:
            conn.execute(text("UPDATE grid SET name = :n WHERE id = :id"), {"n": name + MARK, "id": grid_id})
        committed = time.monotonic()

        # ... is seen through both workers within one polling interval: the version and the layer.
        version_seen: set[int] = set()
        layer_seen: set[int] = set()
        while time.monotonic() - committed < PROPAGATION_S and (
            len(version_seen) < WORKERS or len(layer_seen) < WORKERS
        ):
            for pid, versions in _versions_by_worker(base, cookie, requests=8).items():
                if max(versions) > v0:
                    version_seen.add(pid)
            # No worker serves a stale layer.
            layer_seen |= _round(gunicorn, "/api/layers/grid.geojson", cookie, 200, (name + MARK).encode())
        elapsed = time.monotonic() - committed
        assert len(version_seen) == WORKERS, f"new version seen by {version_seen} after {elapsed:.2f} s"
        assert len(layer_seen) == WORKERS, f"changed layer served by {layer_seen} after {elapsed:.2f} s"
        assert elapsed < PROPAGATION_S
        print(f"a committed change seen through {WORKERS} workers (version and layer) after {elapsed * 1000:.0f} ms")
    finally:
        with engine.begin() as conn:
            conn.execute(text("UPDATE grid SET name = :n WHERE id = :id"), {"n": name, "id": grid_id})

    # Logging out through one worker ends the session in both.
    _get(base + "/logout", cookie)
    _until_both_workers(lambda: _round(gunicorn, "/api/changes", cookie, 401))
    assert "Traceback" not in gunicorn.error_log.read_text()
