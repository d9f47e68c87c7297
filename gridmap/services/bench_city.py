"""City-scale figures (issue 8): what the naive path costs, what the whole map costs a browser and
a worker, and how many requests one worker answers.

* ``bench_naive``: the path many dashboards take — load the layers (buildings and households) into
  geopandas in the web process and ``sjoin`` them with the drawn polygon — on the same fixed
  polygons as ``bench.bench_impact``, against the impact preview. Two variants: the layers loaded
  for every request, and loaded once and kept in the worker (what that costs in memory, and that
  it goes stale with the next change, is the price).
* ``bench_map``: the whole-city command map in headless Debian chromium against one app worker in
  a process of its own (werkzeug in a thread, on a free port of 127.0.0.1): bytes of the layers the
  map loads at its opening view (gzip and raw), time to first complete paint (cold and from the
  browser's cache, defined in ``bench_map``), the worker's memory (peak RSS) after serving them,
  and requests per second of that worker on the routes screens poll.

The worker is started from ``app``, a ``"module:factory"`` reference like gunicorn's (the factory
takes the settings and returns the app or a WSGI callable), so this module never imports the web
package. Selenium is a dev dependency: it is imported inside ``bench_map``.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.parse import urlencode, urlparse

import geopandas as gpd
from shapely.geometry.base import BaseGeometry
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from gridmap.config import Settings
from gridmap.domain.errors import GridmapError
from gridmap.services.auth import DEMO_USERS
from gridmap.services.bench import BARE_SQL, RADII_M, Timing, fixed_polygons, time_calls, timing_of
from gridmap.services.impact import compute_impact, to_ewkb

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
    "--disable-component-update",
    "--no-first-run",
    # Nothing but this machine resolves: the map must not wait on the internet.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--window-size=1600,1000",
)
# The grid layer is drawn when it has one interactive SVG path per grid (as in the map's browser test).
GRID_PATHS = ".gm-pane-grid path.leaflet-interactive"
# Polygons drawn for the communities (drawn with the grids, from the same opening requests).
COMMUNITY_PATHS = ".gm-pane-community path.leaflet-interactive"
# (grid paths, community paths) of each map page: the command map's panes, and the area editor's
# and the tasking map's (both gm-ae-pane-<layer>).
PAINT_SELECTORS: dict[str, tuple[str, str]] = {
    "/": (GRID_PATHS, COMMUNITY_PATHS),
    "/areas": (".gm-ae-pane-grid path.leaflet-interactive", ".gm-ae-pane-community path.leaflet-interactive"),
    "/tasks": (".gm-ae-pane-grid path.leaflet-interactive", ".gm-ae-pane-community path.leaflet-interactive"),
}
LAYER_PATH = re.compile(r"/api/layers/(\w+)\.(?:geojson|pbf)")
# The impact preview should beat the naive geopandas path by this factor.
TARGET_SPEEDUP = 10.0
# The layer list of the map is settled when no new layer request appears for this long.
SETTLE_S = 1.0
# Time spent on the naive path loaded per request, at most (beyond MIN_SAMPLES calls).
NAIVE_BUDGET_S = 60.0
MIN_SAMPLES = 3

NAIVE_BUILDINGS = text("SELECT id, geom FROM building")
NAIVE_HOUSEHOLDS = text("SELECT id, building_id, coalesce(residents, 0) AS residents, geom FROM household")


class BenchUnavailable(GridmapError):
    """Something the benchmark needs (selenium, chromium, a worker) is missing or did not start."""

    code = "bench_unavailable"


def _mb(kb: int) -> float:
    return round(kb / 1024, 1)


def proc_status_kb(pid: int | str = "self") -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in kB, from /proc (Linux)."""
    figures = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            figures[key] = int(value.split()[0])
    return figures


def _ratio(slow: float, fast: float) -> float:
    return round(slow / fast, 1) if fast else 0.0


# --- the naive path ------------------------------------------------------------------------------


def load_layers_geopandas(session: Session) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Buildings and households as GeoDataFrames, as a dashboard loads them into its process."""
    conn = session.connection()
    buildings = gpd.read_postgis(NAIVE_BUILDINGS, conn, geom_col="geom")
    households = gpd.read_postgis(NAIVE_HOUSEHOLDS, conn, geom_col="geom")
    return buildings, households


def naive_households(buildings: gpd.GeoDataFrame, households: gpd.GeoDataFrame, polygon: BaseGeometry) -> tuple[int, int]:
    """Households and residents of the buildings the polygon touches: ``BARE_SQL`` done in geopandas."""
    area = gpd.GeoDataFrame(geometry=[polygon], crs=buildings.crs)
    hit = gpd.sjoin(buildings, area, predicate="intersects")
    inside = households[households["building_id"].isin(hit["id"])]
    return len(inside), int(inside["residents"].sum())


def _time_within(calls: list[Callable[[], object]], repeat: int, budget_s: float) -> Timing:
    """Like ``bench.time_calls``, but no new call once ``budget_s`` is spent (after MIN_SAMPLES)."""
    samples: list[float] = []
    deadline = time.monotonic() + budget_s
    for call in [c for _ in range(repeat) for c in calls]:
        if len(samples) >= MIN_SAMPLES and time.monotonic() > deadline:
            break
        t0 = time.perf_counter()
        call()
        samples.append((time.perf_counter() - t0) * 1000)
    return timing_of(samples)


def bench_naive(
    session: Session,
    settings: Settings,
    *,
    count: int = 50,
    repeat: int = 1,
    naive_budget_s: float = NAIVE_BUDGET_S,
    radii: tuple[int, ...] = RADII_M,
) -> dict:
    """The impact preview against the naive geopandas path, on ``bench.fixed_polygons``."""
    polygons = fixed_polygons(session, settings, count, radii=radii)
    for p in polygons:  # warm the caches, as bench_impact does
        compute_impact(session, p, "sealed", settings)
    impact = time_calls([lambda p=p: compute_impact(session, p, "sealed", settings) for p in polygons], repeat)

    # Kept in the worker: loaded once (first, so the growth of RSS is the layers' and not a heap
    # that earlier loads left behind), then sjoin only.
    before = proc_status_kb()["VmRSS"]
    started = time.perf_counter()
    buildings, households = load_layers_geopandas(session)
    load_ms = (time.perf_counter() - started) * 1000
    held_kb = proc_status_kb()["VmRSS"] - before
    cached = time_calls([lambda p=p: naive_households(buildings, households, p) for p in polygons], repeat)

    def per_request(polygon: BaseGeometry) -> tuple[int, int]:
        return naive_households(*load_layers_geopandas(session), polygon)

    # At city scale one naive request takes tens of seconds: stop after the budget (n says how many).
    naive = _time_within([lambda p=p: per_request(p) for p in polygons], repeat, naive_budget_s)
    # The naive path answers the same question as the indexed join, or the comparison is void.
    same = all(
        naive_households(buildings, households, p)
        == tuple(int(v) for v in session.execute(BARE_SQL, {"wkb": to_ewkb(p)}).one())
        for p in polygons
    )
    return {
        "polygons": count,
        "repeat": repeat,
        "buildings": len(buildings),
        "households": len(households),
        "impact": impact.as_dict(),
        # read_postgis(building) + read_postgis(household) + sjoin, for every request (n: within the budget)
        "naive_per_request": {**naive.as_dict(), "budget_s": naive_budget_s},
        # the layers kept in the worker's memory: sjoin only, after one load
        "naive_cached": {**cached.as_dict(), "load_ms": round(load_ms, 1), "rss_held_mb": _mb(held_kb)},
        "speedup_p50": _ratio(naive.p50_ms, impact.p50_ms),
        "speedup_p95": _ratio(naive.p95_ms, impact.p95_ms),
        "cached_speedup_p50": _ratio(cached.p50_ms, impact.p50_ms),
        "cached_speedup_p95": _ratio(cached.p95_ms, impact.p95_ms),
        "target_speedup": TARGET_SPEEDUP,
        "meets_target": _ratio(naive.p95_ms, impact.p95_ms) >= TARGET_SPEEDUP,
        "naive_matches_bare_join": same,
    }


# --- one app worker in a process of its own ---------------------------------------------------------


def serve_worker() -> None:
    """The worker process (``python -c``): settings as JSON on stdin's first line, the app reference
    as the argument; prints ``port N`` when it serves, and stops when stdin closes."""
    from werkzeug.serving import make_server

    settings = Settings.model_validate_json(sys.stdin.readline())
    module, _, attr = sys.argv[1].partition(":")
    app = getattr(importlib.import_module(module), attr)(settings)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request on stderr
    server = make_server("127.0.0.1", 0, getattr(app, "server", app), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"port {server.server_port}", flush=True)
    os.dup2(2, 1)  # anything else printed goes to stderr: nobody reads this pipe any more
    sys.stdin.read()  # until the parent closes it, or goes away
    server.shutdown()


class Worker:
    """One app worker in a process of its own (a fresh interpreter, like a gunicorn worker)."""

    def __init__(self, app_ref: str, settings: Settings, *, start_timeout_s: float = 120):
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from gridmap.services.bench_city import serve_worker; serve_worker()", app_ref],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        self.process.stdin.write(settings.model_dump_json() + "\n")
        self.process.stdin.flush()
        first: list[str] = []
        reader = threading.Thread(target=lambda: first.append(self.process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(start_timeout_s)
        if not first or not first[0].startswith("port "):
            code = self.process.poll()
            self.stop()
            why = f"exited with status {code}" if code is not None else f"did not start within {start_timeout_s:.0f} s"
            raise BenchUnavailable(f"the app worker ({app_ref}) {why}: see its error above")
        self.url = f"http://127.0.0.1:{int(first[0].split()[1])}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            self.process.wait(5)


# --- HTTP beside the browser -------------------------------------------------------------------------


def log_in(base_url: str, username: str, password: str, cookie_name: str) -> str:
    """Log in through the form; the session cookie's value."""
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base_url + "/login", timeout=60).read().decode()
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    if not match:
        raise BenchUnavailable("the log-in page has no form")
    form = {"username": username, "password": password, "csrf": match.group(1), "next": "/"}
    opener.open(base_url + "/login", data=urlencode(form).encode(), timeout=60).read()
    for cookie in jar:
        if cookie.name == cookie_name:
            return cookie.value
    raise BenchUnavailable(f"log-in as {username} failed (wrong password, or no such user in this database)")


def fetch(url: str, headers: dict[str, str], timeout: float = 120) -> tuple[int, bytes]:
    """Status and body bytes as sent (not decompressed)."""
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def load_test(url: str, headers: dict[str, str], *, requests: int, concurrency: int = 1) -> dict:
    """``requests`` GETs of ``url`` over ``concurrency`` connections at a time, a new connection each
    (as gunicorn's sync workers serve them): requests per second and latency."""
    def one() -> tuple[float, int]:
        t0 = time.perf_counter()
        status, _ = fetch(url, headers)
        return (time.perf_counter() - t0) * 1000, status

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda _: one(), range(requests)))
    seconds = time.perf_counter() - started
    latencies = sorted(ms for ms, _ in results)
    return {
        "requests": requests,
        "concurrency": concurrency,
        "seconds": round(seconds, 2),
        "rps": round(requests / seconds, 1),
        "p50_ms": round(statistics.median(latencies), 2),
        "p95_ms": round(latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))], 2),
        "errors": sum(1 for _, status in results if status != 200),
    }


# --- the map in chromium -------------------------------------------------------------------------------


def _chromium(profile: str):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        raise BenchUnavailable(
            "the map benchmark needs selenium (a dev dependency): .venv/bin/pip install -e '.[dev]'"
        ) from exc
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not Path(binary).exists():
            raise BenchUnavailable(f"{binary} is missing: apt-get install chromium chromium-driver")
    options = Options()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(120)
    return driver


def _paint_ms(driver, url: str, grids: int, timeout_s: float, selectors: tuple[str, str] = PAINT_SELECTORS["/"]
              ) -> float | None:
    """Navigate to the map; ms from navigation start until the first complete paint: the grid
    pane has one path per grid and the community pane has its paths (None: not within
    ``timeout_s``)."""
    driver.get(url)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        drawn, communities, now_ms = driver.execute_script(
            "return [document.querySelectorAll(arguments[0]).length, "
            "document.querySelectorAll(arguments[1]).length, performance.now()];", *selectors
        )
        if drawn >= grids and communities > 0:
            return round(now_ms, 1)
        time.sleep(0.02)
    return None


def _or(values: list[float | None], default: float) -> list[float]:
    return [default if v is None else v for v in values]


def _layer_urls(driver) -> list[str]:
    """The layer URLs the page requested, once no new one has appeared for SETTLE_S."""
    script = ("return performance.getEntriesByType('resource').map(e => e.name)"
              ".filter(n => n.includes('/api/layers/'));")
    urls, stable_since = driver.execute_script(script), time.monotonic()
    while time.monotonic() - stable_since < SETTLE_S:
        time.sleep(0.1)
        now = driver.execute_script(script)
        if now != urls:
            urls, stable_since = now, time.monotonic()
    return sorted(set(urls))


def bench_map(
    settings: Settings,
    *,
    app: str,
    grids: int,
    username: str = DEMO_USERS[0][0],
    password: str = DEMO_USERS[0][1],
    requests: int = 200,
    paints: int = 3,
    timeout_s: float = 120,
    page: str = "/",
) -> dict:
    """The whole-city map against one worker: bytes, first paint (median of ``paints`` visits with
    an empty browser cache, and of as many with a warm one), worker memory, requests/s.

    ``page`` is the map page measured: the command map ("/", by default), the area editor
    ("/areas") or the tasking map ("/tasks") (``PAINT_SELECTORS``: where each draws its grids and
    communities); the same definitions hold for each.

    "First complete paint" is the time from navigation start until every grid is drawn (the grid
    pane holds one SVG path per grid) and the communities are drawn: the polygon layers of the
    opening view. Its other layers (district, controlled areas, clustered checkpoints) are
    requested together with them and are smaller; detail layers (buildings, gates, key
    households, compounds, service points) are not drawn at the opening zoom of a city, only the
    "zoom in" hint. The bytes are those of every layer URL the page requested by the time the
    list settled (``SETTLE_S`` without a new one), fetched again as the browser would (gzip) and
    uncompressed (raw).

    ``app`` is a ``"module:factory"`` reference; ``grids`` is how many grids the database holds
    (the map is complete when all are drawn). Logs in as ``username`` (the demo commander by
    default: the figures are for a user who sees the whole district).
    """
    if page not in PAINT_SELECTORS:
        raise BenchUnavailable(f"no first-paint definition for page {page!r}: one of {sorted(PAINT_SELECTORS)}")
    selectors = PAINT_SELECTORS[page]
    worker = Worker(app, settings)
    profile = tempfile.mkdtemp(prefix="gridmap-bench-chromium-")
    driver = None
    try:
        idle = proc_status_kb(worker.pid)
        cookie = log_in(worker.url, username, password, settings.session_cookie_name)
        auth = {"Cookie": f"{settings.session_cookie_name}={cookie}"}
        driver = _chromium(profile)
        driver.get(worker.url + "/healthz")  # a public page of the origin, to set the cookie on
        driver.add_cookie({"name": settings.session_cookie_name, "value": cookie, "path": "/", "httpOnly": True})
        cold, warm, urls = [], [], []
        for _ in range(paints):
            driver.execute_cdp_cmd("Network.clearBrowserCache", {})  # a first visit: nothing cached
            cold.append(_paint_ms(driver, worker.url + page, grids, timeout_s, selectors))
            urls = _layer_urls(driver)
            # A second visit: the layers revalidated (304) or reused from the browser's cache.
            warm.append(_paint_ms(driver, worker.url + page, grids, timeout_s, selectors))
        if not urls:
            raise BenchUnavailable("the map requested no /api/layers/ URL")

        layers: dict[str, dict] = {}
        grid_url = worker.url + "/api/layers/grid.geojson"
        for url in urls:
            name = LAYER_PATH.search(urlparse(url).path).group(1)
            t0 = time.perf_counter()
            status, raw = fetch(url, auth)
            raw_ms = (time.perf_counter() - t0) * 1000
            # As sent to a browser that accepts gzip (tiny layers go uncompressed: routes.GZIP_MIN_BYTES).
            status_gz, zipped = fetch(url, {**auth, "Accept-Encoding": "gzip"})
            if status != 200 or status_gz != 200:
                raise BenchUnavailable(f"{url} answered {status} / {status_gz}")
            layers[name] = {"raw_bytes": len(raw), "gzip_bytes": len(zipped), "ms": round(raw_ms, 1)}
            if name == "grid":
                grid_url = url  # the load test asks for what the map asks for
        served = proc_status_kb(worker.pid)

        throughput = {
            "changes": load_test(worker.url + "/api/changes", auth, requests=requests),
            "grid_layer_gzip": load_test(grid_url, {**auth, "Accept-Encoding": "gzip"}, requests=requests),
        }
        with contextlib.suppress(OSError):
            fetch(worker.url + "/logout", auth)
        after = proc_status_kb(worker.pid)
        return {
            "grids": grids,
            "layers_loaded": len(layers),
            "bytes_raw": sum(v["raw_bytes"] for v in layers.values()),
            "bytes_gzip": sum(v["gzip_bytes"] for v in layers.values()),
            "layers": layers,
            "paints": paints,
            # A paint that timed out counts as the timeout (a lower bound), and is counted.
            "paint_timeouts": sum(v is None for v in cold + warm),
            "first_paint_cold_ms": round(statistics.median(_or(cold, timeout_s * 1000)), 1),
            # The first visit also found the worker's kept layer answers empty (web.layer_cache);
            # the later cold visits, with an empty browser cache, get those answers.
            "first_paint_first_ms": _or(cold, timeout_s * 1000)[0],
            "first_paint_cold_max_ms": max(_or(cold, timeout_s * 1000)),
            "first_paint_warm_ms": round(statistics.median(_or(warm, timeout_s * 1000)), 1),
            "worker_rss_idle_mb": _mb(idle["VmRSS"]),
            "worker_peak_rss_after_map_mb": _mb(served["VmHWM"]),
            "worker_peak_rss_after_load_test_mb": _mb(after["VmHWM"]),
            "throughput": throughput,
        }
    finally:
        if driver is not None:
            with contextlib.suppress(Exception):
                driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
        worker.stop()


# --- all of it -----------------------------------------------------------------------------------------


def bench_city(
    session: Session,
    settings: Settings,
    *,
    scale: str,
    app: str,
    count: int = 50,
    naive_repeat: int = 1,
    requests: int = 200,
    paints: int = 3,
    browser: bool = True,
    radii: tuple[int, ...] = RADII_M,
) -> dict:
    """Sizes, the naive path and (with ``browser``) the map, labelled with ``scale``."""
    sizes = session.execute(
        text("SELECT (SELECT count(*) FROM grid) AS grids, (SELECT count(*) FROM building) AS buildings, "
             "(SELECT count(*) FROM household) AS households, (SELECT count(*) FROM community) AS communities")
    ).mappings().one()
    result: dict = {
        "scale": scale,
        "database": make_url(settings.database_url).database,
        "sizes": dict(sizes),
        "naive": bench_naive(session, settings, count=count, repeat=naive_repeat, radii=radii),
    }
    if browser:
        result["map"] = bench_map(settings, app=app, grids=sizes["grids"], requests=requests, paints=paints)
    return result


__all__ = [
    "BenchUnavailable",
    "bench_city",
    "bench_map",
    "bench_naive",
    "load_test",
    "naive_households",
]
