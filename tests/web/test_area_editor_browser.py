"""The area editor in a real browser: draw a polygon with Leaflet.draw, see the live impact, make it
sealed and drag its vertices over the whole district (timing the preview), get the over-control
warning, save with a reason, see version 1."""

from __future__ import annotations

import time

import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import text

from gridmap.web import ids

pytestmark = pytest.mark.browser

GRID_PATHS = ".gm-ae-pane-grid path"
VERTICES = ".leaflet-marker-icon.leaflet-editing-icon"
OPERATOR = "浏览器测试员"

# The screen box of the grids drawn on the map (the district as the map shows it).
GRIDS_BOX = """
const boxes = Array.from(document.querySelectorAll(arguments[0])).map(p => p.getBoundingClientRect());
if (!boxes.length) return null;
return {left: Math.min(...boxes.map(b => b.left)), top: Math.min(...boxes.map(b => b.top)),
        right: Math.max(...boxes.map(b => b.right)), bottom: Math.max(...boxes.map(b => b.bottom))};
"""


def _wait(driver, seconds: float = 30) -> WebDriverWait:
    # Dash replaces elements as callbacks answer: look them up again rather than fail on a stale one.
    return WebDriverWait(driver, seconds, poll_frequency=0.05,
                         ignored_exceptions=(StaleElementReferenceException, NoSuchElementException))


def _click_at(driver, x: float, y: float) -> None:
    actions = ActionBuilder(driver)
    actions.pointer_action.move_to_location(int(x), int(y)).click()
    actions.perform()


def _open(driver, url: str) -> None:
    """Open ``url``, logging in as the demo commander when the app asks for it."""
    from gridmap.services.auth import DEMO_USERS

    driver.get(url)
    if "/login" in driver.current_url:
        username, password = next((u, p) for u, p, role, *_ in DEMO_USERS if role == "district_commander")
        driver.find_element(By.ID, "login-username").send_keys(username)
        driver.find_element(By.ID, "login-password").send_keys(password)
        driver.find_element(By.ID, "login-submit").click()
        _wait(driver).until(lambda d: "/login" not in d.current_url)  # back to ``url`` (its ?next=)


def _vertex_near(driver, x: float, y: float):
    """The editing handle of the polygon's vertex drawn at (x, y)."""
    def distance(el):
        r = el.rect
        return (r["x"] + r["width"] / 2 - x) ** 2 + (r["y"] + r["height"] / 2 - y) ** 2

    return min(driver.find_elements(By.CSS_SELECTOR, VERTICES), key=distance)


def _stat(driver, name: str) -> int | None:
    """A number of the live preview (read in one script: the panel re-renders under Selenium)."""
    value = driver.execute_script(
        "const el = document.getElementById(arguments[0]); return el ? el.dataset[arguments[1]] : null;",
        ids.AREA_STATS, name,
    )
    return int(value) if value is not None else None


def _text(driver, element_id: str) -> str:
    """The visible text of an element, or "" when it is not (yet) there."""
    return driver.execute_script(
        "const el = document.getElementById(arguments[0]); return el ? el.innerText : '';", element_id
    )


def _choose(driver, radio_id: str, value: str) -> None:
    driver.find_element(By.CSS_SELECTOR, f"#{radio_id} input[value={value}]").find_element(By.XPATH, "../..").click()


def test_draw_preview_warn_and_save(browser, live_server, engine, artifacts_dir):
    with engine.connect() as conn:
        before = conn.execute(text("SELECT coalesce(max(id), 0) FROM controlled_area")).scalar_one()
    try:
        _open(browser, live_server.url + "/areas")
        _wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, GRID_PATHS))
        polygon_tool = _wait(browser).until(
            ec.element_to_be_clickable((By.CSS_SELECTOR, ".leaflet-draw-draw-polygon"))
        )
        # Empty state first, in Chinese.
        assert "在地图上绘制区域" in _text(browser, ids.AREA_PREVIEW)
        assert polygon_tool.get_attribute("title") == "绘制多边形"  # Leaflet.draw speaks Chinese too
        author = browser.find_element(By.ID, ids.AREA_AUTHOR)
        if author.is_enabled():  # no log-in in front of the app: the operator types a name
            author.send_keys(OPERATOR)

        # Draw a pentagon over the middle of the district: click the tool, five points, the first again.
        box = _wait(browser).until(lambda d: d.execute_script(GRIDS_BOX, GRID_PATHS))
        cx, cy = (box["left"] + box["right"]) / 2, (box["top"] + box["bottom"]) / 2
        rx, ry = (box["right"] - box["left"]) * 0.2, (box["bottom"] - box["top"]) * 0.2
        points = [(cx - rx, cy - ry), (cx + rx, cy - ry * 0.9), (cx + rx * 1.05, cy + ry * 0.6),
                  (cx, cy + ry), (cx - rx * 1.05, cy + ry * 0.4)]
        polygon_tool.click()
        for x, y in [*points, points[0]]:
            _click_at(browser, x, y)
            time.sleep(0.15)
        _wait(browser).until(lambda d: (_stat(d, "buildings") or 0) > 0)
        preview = _text(browser, ids.AREA_PREVIEW)
        assert "影响评估" in preview and "24 小时值守人员" in preview and "涉及网格及网格员" in preview

        # Sealed, then enlarged over the whole district by dragging each vertex outwards (Leaflet.draw's
        # edit mode): the numbers follow every drag, and the over-control warning shows.
        _choose(browser, ids.AREA_CLASS, "sealed")
        _wait(browser).until(ec.text_to_be_present_in_element((By.ID, ids.AREA_PREVIEW), "物资投放点"))
        browser.find_element(By.CSS_SELECTOR, ".leaflet-draw-edit-edit").click()
        _wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, VERTICES))
        frame = browser.find_element(By.ID, ids.AREA_MAP).rect
        for i, (x, y) in enumerate(points):
            vertex = _vertex_near(browser, x, y)
            tx = min(max(cx + (x - cx) * 4, frame["x"] + 20), frame["x"] + frame["width"] - 20)
            ty = min(max(cy + (y - cy) * 4, frame["y"] + 20), frame["y"] + frame["height"] - 20)
            seq, households = _stat(browser, "seq"), _stat(browser, "households")
            ActionChains(browser).click_and_hold(vertex).move_by_offset((tx - x) / 2, (ty - y) / 2) \
                .move_by_offset((tx - x) / 2, (ty - y) / 2).release().perform()
            dragged = time.monotonic()
            _wait(browser).until(lambda d, s=seq: (_stat(d, "seq") or 0) > s)  # the numbers of the dragged shape
            if i == 0:
                print(f"preview updated {time.monotonic() - dragged:.2f}s after a vertex drag")
                assert _stat(browser, "households") > households
        done = [a for a in browser.find_elements(By.CSS_SELECTOR, ".leaflet-draw-actions a") if a.is_displayed()]
        done[0].click()  # keep the changes (leaves Leaflet.draw's edit mode)

        # The whole district is in: communities sealed whole (一封了之), each warning with its numbers.
        _wait(browser).until(lambda d: "一封了之" in _text(d, ids.AREA_WARNINGS))
        assert "过度防控预警" in _text(browser, ids.AREA_WARNINGS)
        assert browser.execute_script(
            "return document.querySelectorAll(`#${arguments[0]} .gm-ae-warning .gm-ae-chip`).length", ids.AREA_WARNINGS
        ) > 0
        save = browser.find_element(By.ID, ids.AREA_SAVE)
        _wait(browser).until(ec.text_to_be_present_in_element((By.ID, ids.AREA_SAVE_HINT), "理由"))
        assert not save.is_enabled()

        browser.find_element(By.ID, ids.AREA_REASON).send_keys("浏览器测试：病例楼栋及其密接楼栋")
        _wait(browser).until(lambda d: d.find_element(By.ID, ids.AREA_SAVE).is_enabled())
        browser.find_element(By.ID, ids.AREA_SAVE).click()
        _wait(browser).until(ec.text_to_be_present_in_element((By.ID, ids.AREA_VERSIONS), "第 1 版"))
        assert "已保存" in _text(browser, ids.AREA_MESSAGE)
        versions = _text(browser, ids.AREA_VERSIONS)
        assert "封控区" in versions and "浏览器测试" in versions
        with engine.connect() as conn:
            saved = conn.execute(
                text("SELECT area_key, version, reason FROM controlled_area WHERE id > :b"), {"b": before}
            ).one()
        assert saved.version == 1 and saved.reason.startswith("浏览器测试")
        # Now editing from version 1; the next version needs a reason of its own.
        _wait(browser).until(ec.text_to_be_present_in_element((By.ID, ids.AREA_EDITING), "基于第 1 版编辑"))
        _wait(browser).until(ec.text_to_be_present_in_element((By.ID, ids.AREA_SAVE_HINT), "理由"))
        assert browser.find_element(By.ID, ids.AREA_REASON).get_attribute("value") == ""

        ActionChains(browser).move_by_offset(0, 0).perform()
        browser.save_screenshot(str(artifacts_dir / "areas.png"))
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM controlled_area WHERE id > :b"), {"b": before})


AE_BUILDINGS = ".gm-ae-pane-building path.gm-building"
AE_HINT_SHOWN = f"#{ids.AREA_ZOOM_HINT}:not(.gm-zoom-hint-off)"


def _layer_requests(urls: list[str], layer: str) -> list[str]:
    return [u for u in urls if f"/api/layers/{layer}." in u]


def test_buildings_only_when_zoomed_in_and_picked(browser, live_server, engine):
    """Issue 8: the editor's layers follow the map's view as on the command map: grids generalised
    per zoom band as geobuf, compounds and buildings only for the viewport from their minimum zoom,
    with a hint to zoom in; a building drawn after zooming in is added to the area with a click."""
    from tests.web.conftest import requested_urls, zoom_in_until, zoomed_out_asks_no_buildings

    with engine.connect() as conn:
        grids = conn.execute(text("SELECT count(*) FROM grid")).scalar_one()
    requested_urls(browser)  # drain what earlier tests requested in this browser
    _open(browser, live_server.url + "/areas")
    _wait(browser).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, GRID_PATHS)) >= grids)

    # Out to where buildings are not sent: the hint says so, and no building is drawn.
    urls = zoomed_out_asks_no_buildings(browser, AE_HINT_SHOWN, AE_BUILDINGS)
    grid_urls = _layer_requests(urls, "grid")
    assert grid_urls and all(".pbf?" in u for u in grid_urls), grid_urls
    assert any("&z=" in u for u in grid_urls), grid_urls  # generalised for the zoom band zoomed out to
    assert not [u for u in urls if "/api/layers/building.geojson" in u]  # never the whole layer
    _wait(browser).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, GRID_PATHS)) >= grids)

    # In, step by step, until the viewport's buildings arrive; the hint goes.
    zoom_in_until(browser, AE_BUILDINGS)
    assert browser.find_elements(By.CSS_SELECTOR, AE_BUILDINGS), "no building drawn after zooming in"
    assert not browser.find_elements(By.CSS_SELECTOR, AE_HINT_SHOWN)
    urls += requested_urls(browser)
    building_urls = _layer_requests(urls, "building")
    assert any("bbox=" in u and ".pbf?" in u for u in building_urls), building_urls

    # "Add a whole building": a click on a drawn building makes it the drawing; the preview counts it.
    _choose(browser, ids.AREA_MODE, "add_building")
    time.sleep(0.5)
    box = browser.execute_script(
        "const w = document.querySelector('.gm-map').getBoundingClientRect();"
        "const inside = Array.from(document.querySelectorAll(arguments[0])).map(p => p.getBoundingClientRect())"
        ".filter(b => b.width > 4 && b.height > 4 && b.left > w.left + 60 && b.right < w.right - 60"
        " && b.top > w.top + 120 && b.bottom < w.bottom - 60);"
        "return inside.length ? inside[0] : null;", AE_BUILDINGS)
    assert box, "no building wholly inside the map to click"
    _click_at(browser, box["left"] + box["width"] / 2, box["top"] + box["height"] / 2)
    _wait(browser).until(lambda d: (_stat(d, "buildings") or 0) >= 1)
