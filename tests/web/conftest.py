"""Browser-test fixtures: the app served on 127.0.0.1 against the fixture database, and a headless
Debian chromium driven by Selenium.

Chromium is started so that it cannot reach anything but this machine: no background networking,
no component updates, every host name except 127.0.0.1 unresolvable, and Selenium is handed the
Debian chromedriver so Selenium Manager never downloads one. ``requested_urls`` reads the
browser's network log, so a test can assert that no request left 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from gridmap.config import Settings

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WINDOW = (1600, 1000)


class LiveServer:
    """The Dash app served by werkzeug in a background thread."""

    def __init__(self, settings: Settings):
        from gridmap.web import create_app

        self.app = create_app(settings)
        self._server = make_server("127.0.0.1", 0, self.app.server, threaded=True)
        self.port = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="gridmap-live-server", daemon=True)

    def start(self) -> LiveServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server(database_url: str) -> Iterator[LiveServer]:
    server = LiveServer(Settings(database_url=database_url, tile_url="")).start()
    try:
        yield server
    finally:
        server.stop()


def chromium_options(user_data_dir: str):
    from selenium.webdriver.chrome.options import Options

    options = Options()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-quic",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--metrics-recording-only",
        # Nothing but this machine resolves: a stray CDN request fails fast instead of hanging.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        f"--user-data-dir={user_data_dir}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--lang=zh-CN",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    return options


@pytest.fixture(scope="session")
def chromium() -> Iterator:
    """One headless chromium for the whole run (starting one costs seconds)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="gridmap-chromium-")
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=chromium_options(profile))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


# --- access (issue 7): every page needs a log-in; tests log in as the demo district commander ---------

DEMO_USER = "commander"
DEMO_PASSWORD = "demo-commander"


def log_out(driver, base_url: str) -> None:
    """End ``driver``'s session on the server (``/logout``), then drop its cookies.

    Deleting the cookies alone races: a request still under way (the favicon of the page just
    opened) can bring the refreshed session cookie back a moment later; an ended session cannot.
    """
    driver.get(base_url + "/logout")
    driver.delete_all_cookies()


def login(driver, base_url: str, user: str = DEMO_USER, password: str = DEMO_PASSWORD) -> None:
    """Log ``driver`` in through the log-in page."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    for _attempt in range(2):
        driver.get(base_url + "/login")
        driver.find_element(By.ID, "login-username").send_keys(user)
        driver.find_element(By.ID, "login-password").send_keys(password)
        driver.find_element(By.ID, "login-submit").click()
        WebDriverWait(driver, 30, poll_frequency=0.1).until(
            lambda d: "/login" not in d.current_url or d.find_elements(By.ID, "login-error")
        )
        if "/login" not in driver.current_url:
            return
    errors = driver.find_elements(By.ID, "login-error")
    raise AssertionError(f"log-in as {user} failed: {errors[0].text if errors else driver.current_url}")


def logged_in(driver, base_url: str) -> bool:
    """Whether the browser's session is live on ``base_url`` (a protected route answers 200)."""
    if not driver.current_url.startswith(base_url):
        driver.get(base_url + "/healthz")
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('/api/layers/district.geojson', {method: 'HEAD'}).then(r => done(r.status)).catch(() => done(0));"
    ) == 200


def session_cookie(driver) -> dict[str, str]:
    """The browser's session as a Cookie header, for requests made beside the browser (urllib)."""
    cookie = next(c for c in driver.get_cookies() if c["name"] == "gridmap_session")
    return {"Cookie": f"{cookie['name']}={cookie['value']}"}


def login_client(client, user: str = DEMO_USER, password: str = DEMO_PASSWORD):
    """Log a Flask test client in (the form's CSRF token read from the page); returns the client."""
    import re

    page = client.get("/login")
    csrf = re.search(rb'name="csrf" value="([^"]+)"', page.data).group(1).decode()
    response = client.post("/login", data={"username": user, "password": password, "csrf": csrf, "next": "/"})
    assert response.status_code == 302, response.data[:300]
    return client


@pytest.fixture
def browser(chromium, live_server: LiveServer) -> Iterator:
    """The shared chromium, logged in as the demo commander, with storage (the language choice) and
    logs cleared after each test."""
    if not logged_in(chromium, live_server.url):  # access (issue 7)
        login(chromium, live_server.url)
    chromium.get_log("performance")  # drop what earlier tests left
    yield chromium
    # The page may be gone; a fresh one needs no clearing.
    with contextlib.suppress(Exception):
        chromium.execute_script("window.localStorage.clear(); window.sessionStorage.clear();")


def zoom_out_until(driver, css: str, *, at_least: int = 0, steps: int = 6, pause_s: float = 0.6) -> None:
    """Click Leaflet's zoom-out button until ``css`` matches, after at least ``at_least`` clicks."""
    from selenium.webdriver.common.by import By

    button = driver.find_element(By.CSS_SELECTOR, ".leaflet-control-zoom-out")
    for step in range(steps):
        if step >= at_least and driver.find_elements(By.CSS_SELECTOR, css):
            return
        button.click()
        time.sleep(pause_s)


def zoom_in_until(driver, css: str, *, steps: int = 10, wait_s: float = 4) -> bool:
    """Click Leaflet's zoom-in button, a step at a time, until ``css`` matches; whether it did."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    button = driver.find_element(By.CSS_SELECTOR, ".leaflet-control-zoom-in")
    for _ in range(steps):
        button.click()
        with contextlib.suppress(Exception):  # not yet: one more step in
            WebDriverWait(driver, wait_s, poll_frequency=0.1).until(lambda d: d.find_elements(By.CSS_SELECTOR, css))
            return True
    return bool(driver.find_elements(By.CSS_SELECTOR, css))


def zoomed_out_asks_no_buildings(driver, hint: str, buildings: str) -> list[str]:
    """Zoom out (two steps at least: a band of generalised grids of its own) until the map's
    "zoom in" ``hint`` shows; it says so, and since then no building is drawn or asked for. The
    URLs the browser requested meanwhile (the opening view may have been close enough for
    buildings; once zoomed out, none is asked for)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    zoom_out_until(driver, hint, at_least=2)
    shown = WebDriverWait(driver, 30, poll_frequency=0.05,
                          ignored_exceptions=(StaleElementReferenceException, NoSuchElementException)).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, hint)))
    assert "放大地图" in shown.text
    urls = requested_urls(driver)
    time.sleep(1.0)
    assert not driver.find_elements(By.CSS_SELECTOR, buildings)
    since_zoomed_out = requested_urls(driver)
    assert not [u for u in since_zoomed_out if "/api/layers/building." in u], since_zoomed_out
    return urls + since_zoomed_out


def requested_urls(driver) -> list[str]:
    """Every URL the browser requested since the log was last read."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


@pytest.fixture
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
