"""Daily and zero reports in a real browser (issue 6): a refused filing says why; the community
worker files the zero report in one click and sees it as a version; the commander's board shows
the community as "zero"; on a past day every community without a report is missing, in red; the
day's roll-up downloads as an Excel file."""

from __future__ import annotations

import contextlib
import re
from datetime import date

import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import text

from gridmap.web import ids
from tests.web.conftest import DEMO_PASSWORD, DEMO_USER, login, session_cookie

pytestmark = pytest.mark.browser

# A day long past in the demo's history: nobody has reported for it.
PAST_DAY = date(2022, 11, 20)


def _wait(driver, seconds: float = 30) -> WebDriverWait:
    return WebDriverWait(driver, seconds, poll_frequency=0.05,
                         ignored_exceptions=(StaleElementReferenceException, NoSuchElementException))


def _text(driver, element_id: str) -> str:
    return driver.execute_script(
        "const el = document.getElementById(arguments[0]); return el ? el.innerText : '';", element_id
    )


def _row(driver, community_id: int) -> dict | None:
    """The board's row of a community: its status and the colour it is drawn in."""
    return driver.execute_script(
        "const tr = document.querySelector(`#${arguments[0]} tr[data-community='${arguments[1]}']`);"
        "if (!tr) return null; const td = tr.querySelector('td:nth-child(2)');"
        "return {status: tr.dataset.status, background: getComputedStyle(td).backgroundColor,"
        "        badge: getComputedStyle(tr.querySelector('.gm-rp-badge')).backgroundColor};",
        ids.REPORT_BOARD, community_id,
    )


def _set(driver, element_id: str, value: str) -> None:
    field = driver.find_element(By.ID, element_id)
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(value)


def test_zero_report_on_the_board_and_missing_in_red(browser, live_server, engine, artifacts_dir):
    with engine.connect() as conn:
        community_id, name = conn.execute(text(
            "SELECT c.id, c.name FROM app_user u JOIN community c ON c.id = u.area_id WHERE u.username = 'community'"
        )).one()
        communities = conn.execute(text("SELECT count(*) FROM community")).scalar_one()
        before = conn.execute(text("SELECT coalesce(max(id), 0) FROM daily_report")).scalar_one()
    try:
        # 1. The community worker: a negative count is refused with the reason, nothing written.
        login(browser, live_server.url, "community", "demo-community")
        browser.get(live_server.url + "/reports")
        _wait(browser).until(lambda d: d.find_element(By.ID, ids.REPORT_ZERO).is_enabled())
        _wait(browser).until(lambda d: name in _text(d, ids.REPORT_COMMUNITY))
        _wait(browser).until(lambda d: _text(d, ids.REPORT_VERSIONS))
        assert "当日尚无报送" in _text(browser, ids.REPORT_VERSIONS)
        _set(browser, ids.report_field("new_cases"), "-1")
        browser.find_element(By.ID, ids.REPORT_SUBMIT).click()
        _wait(browser).until(lambda d: "不能为负" in _text(d, ids.REPORT_MESSAGE))
        assert "未能报送" in _text(browser, ids.REPORT_MESSAGE)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM daily_report WHERE id > :b"), {"b": before}).scalar() == 0

        # 2. One click: the zero report, seen as version 1.
        browser.find_element(By.ID, ids.REPORT_ZERO).click()
        _wait(browser).until(lambda d: "零报告已报送" in _text(d, ids.REPORT_MESSAGE))
        _wait(browser).until(lambda d: "第1版" in _text(d, ids.REPORT_VERSIONS))
        assert "零报告" in _text(browser, ids.REPORT_TODAY)
        with engine.connect() as conn:
            filed = conn.execute(text("SELECT community_id, kind, version, new_cases FROM daily_report WHERE id > :b"),
                                 {"b": before}).one()
        assert (filed.community_id, filed.kind, filed.version, filed.new_cases) == (community_id, "zero", 1, 0)

        # 3. The commander's board: the community is "zero"; the alarm counts the others.
        login(browser, live_server.url, DEMO_USER, DEMO_PASSWORD)
        browser.get(live_server.url + "/reports")
        _wait(browser).until(lambda d: (_row(d, community_id) or {}).get("status") == "zero")
        assert "零报告" in browser.find_element(
            By.CSS_SELECTOR, f"#{ids.REPORT_BOARD} tr[data-community='{community_id}']").text
        chips = _text(browser, ids.REPORT_TOTALS)
        assert "零报告" in chips and "未报" in chips
        assert "合计" in _text(browser, ids.REPORT_ROLLUP)
        browser.save_screenshot(str(artifacts_dir / "reports.png"))

        # 4. A past day: nobody reported, every community is missing and drawn in red.
        browser.get(live_server.url + f"/reports?date={PAST_DAY.isoformat()}")
        _wait(browser).until(lambda d: (_row(d, community_id) or {}).get("status") == "missing")
        row = _row(browser, community_id)
        red, green, blue = (int(x) for x in re.findall(r"\d+", row["background"])[:3])
        assert red > 200 and red > green + 10 and red > blue + 10  # the row's pink
        assert row["badge"].startswith("rgb(198, 40, 40")  # the badge's red (#c62828)
        assert browser.execute_script(
            "return document.querySelectorAll(`#${arguments[0]} tr[data-status='missing']`).length", ids.REPORT_BOARD
        ) == communities
        assert f"{communities} 个社区" in _text(browser, f"{ids.REPORT_TOTALS}-box")

        # 5. The day's roll-up as an Excel file, named for the day.
        href = browser.find_element(By.ID, ids.REPORT_EXPORT).get_attribute("href")
        assert href.endswith(f"/api/reports/{PAST_DAY.isoformat()}.xlsx")
        import urllib.request

        request = urllib.request.Request(href, headers=session_cookie(browser))
        with urllib.request.urlopen(request, timeout=30) as response:
            disposition = response.headers["Content-Disposition"]
            body = response.read()
        assert disposition.startswith("attachment;") and PAST_DAY.isoformat() in disposition
        assert "filename*=UTF-8''" in disposition
        assert body[:2] == b"PK"  # an .xlsx is a zip
    finally:
        with contextlib.suppress(Exception):
            login(browser, live_server.url, DEMO_USER, DEMO_PASSWORD)
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM daily_report WHERE id > :b"), {"b": before})


RESTYLE_MOVES_CLASSES = """
    var div = document.createElement("div");
    div.style.width = div.style.height = "100px";
    document.body.appendChild(div);
    var map = L.map(div).setView([0, 0], 1);
    var p = L.polygon([[0, 0], [1, 1], [1, 0]], {className: "gm-community"}).addTo(map);
    p.setStyle({className: "gm-community gm-report-missing"});
    var added = p.getElement().classList.contains("gm-report-missing");
    p.setStyle({className: "gm-community"});
    var removed = !p.getElement().classList.contains("gm-report-missing") && p.getElement().classList.contains("gm-community");
    map.remove();
    div.remove();
    return [added, removed];
"""


def test_missing_reports_are_red_on_the_map_and_the_wall(chromium, database_url, engine, artifacts_dir):
    """Past the deadline, every community without a report today is outlined in red on the command
    map and on the wall (issue 6), styled in the browser from the ids the page is given. A server of
    its own with the deadline at 00:00 makes "past the deadline" true whatever the hour."""
    from datetime import UTC, datetime
    from datetime import time as clock

    from sqlalchemy.orm import Session

    from gridmap.config import Settings
    from gridmap.services.reports import missing_communities
    from tests.web.conftest import LiveServer

    settings = Settings(database_url=database_url, tile_url="", report_deadline=clock(0, 0))
    with Session(engine) as session:
        expected = missing_communities(session, settings, datetime.now(UTC))
        communities = session.execute(text("SELECT count(*) FROM community")).scalar_one()
    assert expected, "every community reported today: nothing to see"
    server = LiveServer(settings).start()
    try:
        login(chromium, server.url, DEMO_USER, DEMO_PASSWORD)
        chromium.get(server.url + "/")
        _wait(chromium).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".gm-pane-community path")) >= communities)
        _wait(chromium).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, ".gm-pane-community path.gm-report-missing")) == len(expected))
        legend = chromium.find_element(By.ID, ids.MAP_LEGEND).text
        assert "过截止时间未报社区" in legend
        chromium.get(server.url + "/wall")
        _wait(chromium).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, ".gm-wall-pane-community path.gm-report-missing"))
            == len(expected))
        assert "过截止时间未报社区" in chromium.find_element(By.ID, ids.WALL_LEGEND).text
        chromium.save_screenshot(str(artifacts_dir / "wall-missing-reports.png"))
        # Whichever arrives first, the ids or the features: a restyle moves a path's classes too
        # (Leaflet sets them only when it creates a path; assets/gridmap.js).
        assert chromium.execute_script(RESTYLE_MOVES_CLASSES) == [True, True]
    finally:
        server.stop()
