"""Log-in, the user in the header, log-out, the audit page, and markup in names shown as text — in a
real browser; plus the log-in form's hardening through Flask's test client."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest
from selenium.common.exceptions import (
    NoAlertPresentException,
    NoSuchElementException,
    StaleElementReferenceException,
)
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import text

from gridmap.config import Settings
from gridmap.web import create_app, ids
from tests.web.conftest import log_out, login, login_client, requested_urls
from tests.web.test_map_browser import FIND_CLICKABLE_GRID, GRID_PATHS


def _wait(driver, seconds: float = 30) -> WebDriverWait:
    # Dash replaces elements as callbacks answer: look them up again rather than fail on a stale one.
    return WebDriverWait(driver, seconds, poll_frequency=0.1,
                         ignored_exceptions=(StaleElementReferenceException, NoSuchElementException))


def _fetch_status(driver, path: str) -> int:
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        f"fetch('{path}').then(r => done(r.status)).catch(() => done(0));"
    )


def _logged_out(driver, base: str) -> None:
    log_out(driver, base)


@pytest.mark.browser
def test_login_header_and_logout(chromium, live_server, artifacts_dir):
    driver, base = chromium, live_server.url
    _logged_out(driver, base)
    try:
        # A page sends an anonymous visitor to the log-in form; data routes answer 401.
        driver.get(base + "/")
        _wait(driver).until(lambda d: urlparse(d.current_url).path == "/login")
        assert "next=/" in driver.current_url
        assert "用户名" in driver.page_source and "Password" in driver.page_source
        assert _fetch_status(driver, "/api/layers/grid.geojson") == 401
        # A wrong password: one message, whatever was wrong.
        driver.find_element(By.ID, "login-username").send_keys("gridleader")
        driver.find_element(By.ID, "login-password").send_keys("not-my-password")
        driver.find_element(By.ID, "login-submit").click()
        error = _wait(driver).until(ec.presence_of_element_located((By.ID, "login-error")))
        assert "用户名或密码错误" in error.text
        # The grid leader logs in and lands where they were going, named in the header.
        driver.find_element(By.ID, "login-password").send_keys("demo-gridleader")
        driver.find_element(By.ID, "login-submit").click()
        header = _wait(driver).until(ec.presence_of_element_located((By.ID, "header-user")))
        assert urlparse(driver.current_url).path == "/"
        assert "网格员" in header.text
        _wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, GRID_PATHS))
        assert _fetch_status(driver, "/api/layers/grid.geojson") == 200
        cookie = next(c for c in driver.get_cookies() if c["name"] == "gridmap_session")
        assert cookie["httpOnly"] and cookie.get("sameSite") == "Lax"
        # Not an auditor: no audit trail in the menu, and the page says no.
        assert "操作审计" not in driver.find_element(By.ID, ids.NAV).text
        driver.save_screenshot(str(artifacts_dir / "logged-in.png"))
        # Log out: back to the form, and the data routes are closed again.
        driver.find_element(By.ID, "header-logout").click()
        _wait(driver).until(lambda d: urlparse(d.current_url).path == "/login")
        assert _fetch_status(driver, "/api/layers/grid.geojson") == 401
        driver.get(base + "/audit")
        _wait(driver).until(lambda d: urlparse(d.current_url).path == "/login")
    finally:
        _logged_out(driver, base)  # the next test's fixture logs in as the commander again


@pytest.mark.browser
def test_audit_page_for_the_auditor(chromium, live_server, artifacts_dir):
    driver, base = chromium, live_server.url
    _logged_out(driver, base)
    try:
        login(driver, base, "auditor", "demo-auditor")
        _wait(driver).until(lambda d: "操作审计" in d.find_element(By.ID, ids.NAV).text)
        _wait(driver).until(lambda d: d.find_element(By.ID, ids.NAV).find_element(By.LINK_TEXT, "操作审计").click()
                            or True)
        _wait(driver).until(lambda d: "LOGIN" in d.find_element(By.CSS_SELECTOR, ".gm-audit-table").text)
        table = driver.find_element(By.CSS_SELECTOR, ".gm-audit-table")
        assert "auditor" in table.text  # our own log-in is there
        assert "条记录" in driver.find_element(By.ID, "audit-count").text
        # Filter by who (our own entries exist in whichever database this worker has): only theirs.
        driver.find_element(By.ID, "audit-actor").send_keys("auditor\n")
        _wait(driver).until(lambda d: (rows := d.find_elements(By.CSS_SELECTOR, ".gm-audit-table tbody tr"))
                            and all(row.find_elements(By.TAG_NAME, "td")[1].text == "auditor" for row in rows))
        driver.save_screenshot(str(artifacts_dir / "audit.png"))
        hosts = {urlparse(u).hostname for u in requested_urls(driver) if u.startswith("http")}
        assert hosts <= {"127.0.0.1"}
    finally:
        _logged_out(driver, base)


@pytest.mark.browser
def test_an_open_page_whose_session_ended_goes_to_the_login_form(chromium, live_server, engine):
    """The session expires in the database while /reports is open: the next callback gets 401, and
    assets/session.js takes the page to the log-in form, which says why and leads back to /reports."""
    driver, base = chromium, live_server.url
    _logged_out(driver, base)
    try:
        login(driver, base, "community", "demo-community")
        driver.get(base + "/reports?tab=status")
        _wait(driver).until(lambda d: d.find_elements(By.ID, ids.LANG_EN) and d.find_elements(By.ID, "header-user"))
        assert driver.execute_script("return window.__gridmapSessionWatch === true")
        with engine.begin() as conn:
            ended = conn.execute(text(
                "UPDATE user_session SET expires_at = now() - interval '1 minute' WHERE ended_at IS NULL"
                " AND expires_at > now() AND user_id = (SELECT id FROM app_user WHERE username = 'community')"
            )).rowcount
        assert ended >= 1
        driver.get_log("performance")
        driver.find_element(By.ID, ids.LANG_EN).click()  # a server-side callback
        _wait(driver).until(lambda d: urlparse(d.current_url).path == "/login")
        notice = _wait(driver).until(ec.presence_of_element_located((By.ID, "login-notice")))
        assert "登录已过期" in notice.text and "Your session expired" in notice.text
        assert parse_qs(urlparse(driver.current_url).query)["next"] == ["/reports?tab=status"]
        assert any("/_dash-update-component" in u or "/api/" in u for u in requested_urls(driver))
        # Logging in again returns to the page.
        driver.find_element(By.ID, "login-username").send_keys("community")
        driver.find_element(By.ID, "login-password").send_keys("demo-community")
        driver.find_element(By.ID, "login-submit").click()
        _wait(driver).until(lambda d: urlparse(d.current_url).path == "/reports")
        assert urlparse(driver.current_url).query == "tab=status"
    finally:
        _logged_out(driver, base)


@pytest.mark.browser
def test_markup_in_names_is_shown_as_text(browser, live_server, engine):
    """A community and a grid leader named with HTML and script show as those characters, nothing runs."""
    script, image = "<script>alert(1)</script>", "<img src=x onerror=alert(2)>"
    with engine.begin() as conn:
        communities = conn.execute(text("SELECT id, name FROM community")).all()
        leaders = conn.execute(text("SELECT id, name FROM staff WHERE role = 'grid_leader'")).all()
        conn.execute(text("UPDATE community SET name = :n"), {"n": script})
        conn.execute(text("UPDATE staff SET name = :n WHERE role = 'grid_leader'"), {"n": image})
    try:
        browser.get(live_server.url + "/")
        _wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, GRID_PATHS))
        point = _wait(browser).until(lambda d: d.execute_script(FIND_CLICKABLE_GRID, GRID_PATHS))
        actions = ActionBuilder(browser)
        actions.pointer_action.move_to_location(*point).click()
        actions.perform()
        panel = _wait(browser).until(
            ec.presence_of_element_located((By.CSS_SELECTOR, f"#{ids.MAP_PANEL} .gm-card-grid")))
        _wait(browser).until(lambda d: image in panel.text)
        assert script in panel.text and image in panel.text
        assert not panel.find_elements(By.TAG_NAME, "script")
        assert not panel.find_elements(By.CSS_SELECTOR, "img[src='x']")
        with pytest.raises(NoAlertPresentException):
            browser.switch_to.alert.text  # noqa: B018 - reading it is the check
    finally:
        with engine.begin() as conn:
            for row in communities:
                conn.execute(text("UPDATE community SET name = :n WHERE id = :id"), {"n": row.name, "id": row.id})
            for row in leaders:
                conn.execute(text("UPDATE staff SET name = :n WHERE id = :id"), {"n": row.name, "id": row.id})


# --- the log-in form, without a browser ------------------------------------------------------------------


@pytest.fixture(scope="module")
def app(database_url):
    return create_app(Settings(database_url=database_url))


def _csrf(page) -> str:
    return re.search(rb'name="csrf" value="([^"]+)"', page.data).group(1).decode()


def test_login_form_escapes_and_refuses_forged_posts(app):
    client = app.server.test_client()
    page = client.get("/login")
    assert page.headers["Cache-Control"] == "no-store"
    # Without the form's token: refused, nothing checked.
    refused = client.post("/login", data={"username": "commander", "password": "demo-commander", "csrf": "forged"})
    assert refused.status_code == 400
    assert client.get("/api/layers/grid.geojson").status_code == 401
    # What was typed comes back as text, never as markup.
    typed = '"><script>alert(3)</script>'
    bad = client.post("/login", data={"username": typed, "password": "x", "csrf": _csrf(client.get("/login"))})
    assert bad.status_code == 401
    assert b"<script>alert(3)" not in bad.data and b"&lt;script&gt;alert(3)" in bad.data


@pytest.mark.parametrize(("target", "landing"), [
    ("/audit", "/audit"),
    ("https://evil.example/", "/"),
    ("//evil.example/x", "/"),
    ("/\\evil.example", "/"),
    ("/api/layers/grid.geojson", "/"),
    ("/logout", "/"),
])
def test_login_goes_only_to_pages_of_this_site(app, target, landing):
    client = app.server.test_client()
    response = client.post("/login", data={"username": "commander", "password": "demo-commander",
                                           "csrf": _csrf(client.get("/login")), "next": target})
    assert response.status_code == 302
    assert response.headers["Location"] == landing


def test_sessions_live_in_the_database_for_every_worker(app):
    first = login_client(app.server.test_client(), "volunteer", "demo-volunteer")
    # Another worker (another app, same database and secret) knows the session.
    other = create_app(Settings(database_url=app.server.config["GRIDMAP_SETTINGS"].database_url))
    cookie = first.get_cookie("gridmap_session")
    second = other.server.test_client()
    second.set_cookie("gridmap_session", cookie.value)
    assert second.get("/api/layers/district.geojson").status_code == 200
    # Logging out in one ends it in the other.
    first.get("/logout")
    assert second.get("/api/layers/district.geojson").status_code == 401


# --- behind nginx (issue 7): X-Forwarded-* trusted only with proxy_hops -----------------------------------


def _cookie_header(response) -> str:
    return next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("gridmap_session="))


@pytest.mark.parametrize("hops", [0, 1])
def test_forwarded_headers_are_trusted_only_behind_a_proxy(database_url, engine, hops):
    settings = Settings(database_url=database_url, proxy_hops=hops)
    client = create_app(settings).server.test_client()
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "gridmap.example.org",
                 "X-Forwarded-For": "203.0.113.7"}
    page = client.get("/tasks", headers=forwarded)  # anonymous: to the log-in form
    assert page.status_code == 302
    csrf = _csrf(client.get("/login", headers=forwarded))
    response = client.post("/login", headers=forwarded,
                           data={"username": "volunteer", "password": "demo-volunteer", "csrf": csrf, "next": "/"})
    assert response.status_code == 302
    cookie = _cookie_header(response)
    if hops:
        # nginx said the browser came over https: the cookie goes over https only.
        assert "; Secure" in cookie
        assert page.headers["Location"].startswith(("https://gridmap.example.org/login", "/login"))
    else:
        # Anyone can send these headers to an app served directly: ignored.
        assert "Secure" not in cookie
        assert "gridmap.example.org" not in page.headers["Location"]
    with engine.connect() as conn:
        remote = conn.execute(text("SELECT remote_addr FROM user_session ORDER BY created_at DESC LIMIT 1")).scalar()
    assert (remote == "203.0.113.7") == bool(hops)


def test_the_cookie_is_secure_when_the_setting_says_so(database_url):
    client = create_app(Settings(database_url=database_url, session_cookie_secure=True)).server.test_client()
    csrf = _csrf(client.get("/login"))
    response = client.post("/login", data={"username": "volunteer", "password": "demo-volunteer", "csrf": csrf})
    assert "; Secure" in _cookie_header(response)
