"""The wall (/wall) at 1920×1080 in a real browser: the district drawn by class, the KPIs equal to
the services' figures, no personal data, and a refresh within seconds of a change committed in the
database by someone else (here: the test, writing contacts straight to PostgreSQL). Also the
command map's choropleth of a metric, its worst-first ranking and the staffing gaps."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.config import Settings
from gridmap.services import coverage_layers
from gridmap.web import ids
from tests.web.conftest import WINDOW

pytestmark = pytest.mark.browser

REFRESH_LIMIT_S = 10
KPIS = ("overdue_contacts", "uncovered_slots", "grids_with_gaps")


def set_viewport(driver, width: int, height: int) -> None:
    """Make the page's viewport (not the window) width × height."""
    driver.set_window_size(width, height)
    inner_w, inner_h = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    driver.set_window_size(width + (width - inner_w), height + (height - inner_h))


def _wait(driver, seconds: float = 30) -> WebDriverWait:
    return WebDriverWait(driver, seconds, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,))


def _shown(driver) -> dict[str, int]:
    values = {k: int(driver.find_element(By.ID, ids.wall_kpi(k)).get_attribute("data-value")) for k in KPIS}
    values["reports_missing"] = int(
        driver.find_element(By.CSS_SELECTOR, "[data-missing]").get_attribute("data-missing"))
    for code in cc_classes():
        values[f"class_{code}"] = int(driver.find_element(By.ID, ids.wall_kpi(f"class_{code}")).get_attribute("data-value"))
    return values


def cc_classes() -> tuple[str, ...]:
    from gridmap.web.coverage_components import WALL_CLASSES

    return WALL_CLASSES


def _expected(engine, database_url: str) -> dict[str, int]:
    with Session(engine) as session:
        f = coverage_layers.wall_figures(session, Settings(database_url=database_url), datetime.now(UTC))
    values = {k: getattr(f, k) for k in KPIS}
    values["reports_missing"] = f.reports_missing
    by_code = {r["code"]: r["households"] for r in f.households_by_class}
    for code in cc_classes():
        values[f"class_{code}"] = by_code[code]
    return values


def _matches(driver, engine, database_url: str) -> tuple[dict, dict]:
    """The page's figures and the services', read again if a shift slot turned over in between."""
    for _ in range(3):
        shown, expected = _shown(driver), _expected(engine, database_url)
        if shown == expected:
            break
        time.sleep(1)
    return shown, expected


def test_wall_shows_the_services_figures_and_refreshes(browser, live_server, engine, database_url, artifacts_dir):
    set_viewport(browser, 1920, 1080)
    added: list[int] = []
    try:
        browser.get(live_server.url + "/wall")
        _wait(browser).until(lambda d: d.find_elements(By.ID, ids.wall_kpi("overdue_contacts")))
        with engine.connect() as conn:
            communities = conn.execute(text("SELECT count(*) FROM community")).scalar_one()
            names = conn.execute(text("SELECT name FROM key_person WHERE length(name) >= 2")).scalars().all()
            phones = conn.execute(text("SELECT phone FROM key_person WHERE phone IS NOT NULL")).scalars().all()
        # The district drawn by class: every community, coloured from the command map's style function.
        _wait(browser).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, ".gm-wall-pane-community path.gm-community")) >= communities)
        _wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, f"#{ids.WALL_CHART_CONTACTS} .main-svg"))

        shown, expected = _matches(browser, engine, database_url)
        assert shown == expected
        body = browser.find_element(By.TAG_NAME, "body").text
        assert "数据更新于" in body and "网格化防控指挥大屏" in body
        # Counts only: no key person's name or phone anywhere on the wall.
        assert not [n for n in names if n in body]
        assert not [p for p in phones if p in body]
        # Full screen, legible: no header, no scrolling, large figures.
        assert not browser.find_element(By.CSS_SELECTOR, ".gm-header").is_displayed()
        assert browser.execute_script(
            "return document.documentElement.scrollWidth <= innerWidth && document.documentElement.scrollHeight <= innerHeight")
        size = browser.execute_script(
            f"return parseFloat(getComputedStyle(document.getElementById('{ids.wall_kpi('overdue_contacts')}')).fontSize)")
        assert size >= 40
        browser.save_screenshot(str(artifacts_dir / "wall.png"))

        # Someone contacts an overdue vulnerable person twice, committed straight to the database.
        stamp = browser.find_element(By.ID, f"{ids.WALL_UPDATED}-time")
        before_version = stamp.get_attribute("data-version")
        now = datetime.now(UTC)
        with engine.begin() as conn:
            person = conn.execute(text(
                "SELECT kp.id FROM key_person kp WHERE EXISTS (SELECT 1 FROM key_person_category_link l"
                " JOIN key_person_category c ON c.id = l.category_id AND c.vulnerable WHERE l.key_person_id = kp.id)"
                " AND NOT EXISTS (SELECT 1 FROM contact_log cl WHERE cl.key_person_id = kp.id"
                "   AND cl.contacted_at > :since) ORDER BY kp.id LIMIT 1"),
                {"since": now - timedelta(days=8)}).scalar_one()
            added = list(conn.execute(text(
                "INSERT INTO contact_log (key_person_id, contacted_at, method, outcome)"
                " VALUES (:p, :at, 'visit', 'normal'), (:p, :at, 'phone', 'normal') RETURNING id"),
                {"p": person, "at": now}).scalars())
        committed = time.monotonic()
        target = expected["overdue_contacts"] - 1
        _wait(browser, REFRESH_LIMIT_S).until(
            lambda d: d.find_element(By.ID, ids.wall_kpi("overdue_contacts")).get_attribute("data-value") == str(target))
        latency = time.monotonic() - committed
        assert latency <= REFRESH_LIMIT_S
        after = browser.find_element(By.ID, f"{ids.WALL_UPDATED}-time")
        assert after.get_attribute("data-version") != before_version
        # The layers refetched with the new version.
        urls = browser.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name).filter(n => n.includes('/api/layers/'))")
        assert any(f"v={after.get_attribute('data-version')}" in u for u in urls)
        shown, expected = _matches(browser, engine, database_url)
        assert shown == expected and shown["overdue_contacts"] == target
        (artifacts_dir / "wall-refresh.json").write_text(json.dumps(
            {"refresh_latency_s": round(latency, 2), "limit_s": REFRESH_LIMIT_S, "poll_ms": 2000}, indent=2))
        print(f"wall refreshed {latency:.2f}s after the commit")
    finally:
        if added:
            with engine.begin() as conn:
                conn.execute(text("DELETE FROM contact_log WHERE id = ANY(:ids)"), {"ids": added})
        set_viewport(browser, *WINDOW)


def test_wall_in_english_by_query(browser, live_server):
    browser.get(live_server.url + "/wall?lang=en")
    _wait(browser).until(lambda d: "data updated at" in d.find_element(By.ID, ids.WALL_UPDATED).text)
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "Grid control wall" in body and "Overdue contacts" in body


def test_command_map_choropleth_ranking_and_gaps(browser, live_server, engine, database_url):
    with engine.connect() as conn:
        grids = conn.execute(text("SELECT count(*) FROM grid")).scalar_one()
    browser.get(live_server.url + "/")
    _wait(browser).until(lambda d: d.find_elements(By.ID, ids.MAP_METRIC))
    _wait(browser).until(lambda d: "选择一个指标" in d.find_element(By.ID, ids.MAP_COVERAGE_BODY).text)
    assert not browser.find_elements(By.CSS_SELECTOR, ".gm-pane-choropleth path")  # off until chosen
    browser.find_element(By.ID, ids.MAP_METRIC).click()
    option = _wait(browser).until(lambda d: [o for o in d.find_elements(By.CSS_SELECTOR, ".dash-dropdown-option")
                                             if "每名网格员户数" in o.text])
    option[0].click()
    _wait(browser).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".gm-pane-choropleth path.gm-choropleth"))
                         == grids)
    rows = _wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".gm-cov-row"))
    assert len(rows) == grids
    with Session(engine) as session:
        expected = coverage_layers.ranking(session, Settings(database_url=database_url), datetime.now(UTC),
                                           "households_per_leader")
    shown = [int(r.get_attribute("data-grid")) for r in browser.find_elements(By.CSS_SELECTOR, ".gm-cov-row")]
    assert shown == [r["grid_id"] for r in expected]  # worst first, as the service orders them
    # A row opens its grid in the side panel.
    browser.find_elements(By.CSS_SELECTOR, ".gm-cov-row")[0].click()
    _wait(browser).until(lambda d: expected[0]["name"] in d.find_element(By.ID, ids.MAP_PANEL).text)
    # The staffing gaps, with the moves proposed from neighbouring grids.
    browser.find_element(By.XPATH, f"//*[@id='{ids.MAP_COVERAGE_TAB}']//*[normalize-space()='人员缺口']").click()
    _wait(browser).until(lambda d: "相邻网格" in d.find_element(By.ID, ids.MAP_COVERAGE_BODY).text
                         or "均达到" in d.find_element(By.ID, ids.MAP_COVERAGE_BODY).text)
