"""The command map in a real browser: layers drawn, language switch, click a grid, side panel."""

from __future__ import annotations

import time
from urllib.parse import urlparse

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import text

from gridmap.web import ids
from tests.web.conftest import requested_urls, session_cookie, zoom_in_until, zoom_out_until

pytestmark = pytest.mark.browser

GRID_PATHS = ".gm-pane-grid path.leaflet-interactive.gm-grid"

# A point inside a grid polygon where the grid itself is the topmost element (not a building,
# a marker or a cluster drawn above it): the middle of the longest run of such points.
FIND_CLICKABLE_GRID = """
const paths = Array.from(document.querySelectorAll(arguments[0]));
for (const path of paths) {
    const box = path.getBoundingClientRect();
    if (box.width < 30 || box.height < 30) continue;
    for (let fy = 0.3; fy <= 0.7; fy += 0.1) {
        for (let fx = 0.3; fx <= 0.7; fx += 0.05) {
            const x = Math.round(box.left + fx * box.width), y = Math.round(box.top + fy * box.height);
            if (document.elementFromPoint(x, y) === path) return [x, y];
        }
    }
}
return null;
"""


def _wait(driver, seconds: float = 30) -> WebDriverWait:
    return WebDriverWait(driver, seconds, poll_frequency=0.2)


def _grid_facts(engine, name: str) -> dict:
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT g.id, g.households, g.residents, "
                "(SELECT s.name FROM staff s JOIN staff_assignment a ON a.staff_id = s.id "
                " WHERE a.grid_id = g.id AND s.role = 'grid_leader' ORDER BY s.id LIMIT 1) AS leader, "
                "(SELECT s.phone FROM staff s JOIN staff_assignment a ON a.staff_id = s.id "
                " WHERE a.grid_id = g.id AND s.role = 'grid_leader' ORDER BY s.id LIMIT 1) AS phone "
                "FROM grid g WHERE g.name = :n"
            ),
            {"n": name},
        ).mappings().one()
    return dict(row)


def test_command_map(browser, live_server, engine, artifacts_dir):
    with engine.connect() as conn:
        grids = conn.execute(text("SELECT count(*) FROM grid")).scalar_one()
    assert grids > 0

    started = time.monotonic()
    browser.get(live_server.url + "/")
    # The grid layer is drawn: one SVG path per grid, with the class the style function gives it.
    _wait(browser).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, GRID_PATHS)) >= grids)
    drawn_s = time.monotonic() - started
    # checkpoints drawn, one by one or clustered (buildings: test_buildings_only_when_zoomed_in)
    _wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".gm-cp, .gm-cluster"))
    print(f"grid layer drawn {drawn_s:.2f}s after navigation")

    # Chinese by default.
    title = browser.find_element(By.ID, ids.HEADER_TITLE)
    assert title.text == "网格化防控指挥图"
    assert "演示数据均为虚构" in browser.find_element(By.ID, ids.HEADER_NOTE).text
    assert "网格" in browser.find_element(By.CSS_SELECTOR, ".leaflet-control-layers").text
    # The overview stands in the panel until something is clicked.
    _wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, f"#{ids.MAP_PANEL} .gm-card-overview"))

    # English on the switch: header, layer switcher and legend follow.
    browser.find_element(By.ID, ids.LANG_EN).click()
    _wait(browser).until(ec.text_to_be_present_in_element((By.ID, ids.HEADER_TITLE), "Grid Command Map"))
    _wait(browser).until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, ".leaflet-control-layers"), "Grids"))
    _wait(browser).until(ec.text_to_be_present_in_element((By.ID, ids.MAP_LEGEND), "High risk"))
    assert "synthetic" in browser.find_element(By.ID, ids.HEADER_NOTE).text
    # The switch re-styles the layers from the browser's copy: still every grid drawn.
    _wait(browser).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, GRID_PATHS)) >= grids)

    # Click a grid where nothing else is drawn above it.
    point = _wait(browser).until(lambda d: d.execute_script(FIND_CLICKABLE_GRID, GRID_PATHS))
    actions = ActionBuilder(browser)
    actions.pointer_action.move_to_location(*point).click()
    actions.perform()

    panel = _wait(browser).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, f"#{ids.MAP_PANEL} .gm-card-grid"))
    )
    name = panel.find_element(By.CSS_SELECTOR, ".gm-card-title").text
    facts = _grid_facts(engine, name)
    panel_text = panel.text
    assert "Households" in panel_text and "Grid leader" in panel_text
    assert f"{facts['households']:,}" in panel_text
    assert f"{facts['residents']:,}" in panel_text
    assert facts["leader"] and facts["leader"] in panel_text
    assert facts["phone"] in panel_text
    # The clicked grid is highlighted on the map.
    assert browser.find_elements(By.CSS_SELECTOR, ".gm-pane-grid path.gm-selected")
    # The pointer rests on it: its tooltip (built when it opens, not while drawing) names it.
    _wait(browser).until(lambda d: any(
        name in e.text for e in d.find_elements(By.CSS_SELECTOR, ".leaflet-tooltip.gm-tooltip")))

    ActionChains(browser).move_by_offset(0, 0).perform()
    browser.save_screenshot(str(artifacts_dir / "map.png"))

    # Back to Chinese: the open panel follows.
    browser.find_element(By.ID, ids.LANG_ZH).click()
    _wait(browser).until(ec.text_to_be_present_in_element((By.ID, ids.HEADER_TITLE), "网格化防控指挥图"))
    _wait(browser).until(ec.text_to_be_present_in_element((By.ID, ids.MAP_PANEL), "网格员"))

    # The grid's community opens from the panel (grids cover it on the map), with its risk history.
    browser.find_element(By.CSS_SELECTOR, f"#{ids.MAP_PANEL} .gm-card-head .gm-link").click()
    community = _wait(browser).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, f"#{ids.MAP_PANEL} .gm-card-community"))
    )
    assert "定级记录" in community.text and "防控措施" in community.text

    # Nothing was fetched from anywhere but this server (no CDN, no tiles, no fonts).
    hosts = {urlparse(u).hostname for u in requested_urls(browser) if u.startswith("http")}
    assert hosts <= {"127.0.0.1"}, hosts


def test_layer_routes_and_health(browser, live_server):
    import json
    import urllib.request

    with urllib.request.urlopen(live_server.url + "/healthz") as resp:
        assert resp.status == 200 and json.load(resp) == {"ok": True, "db": True}
    cookie = session_cookie(browser)  # access (issue 7): the data routes need the log-in
    req = urllib.request.Request(live_server.url + "/api/layers/grid.geojson",
                                 headers={"Accept-Encoding": "gzip", **cookie})
    with urllib.request.urlopen(req) as resp:
        assert resp.headers["Content-Encoding"] == "gzip"
        assert "max-age" in resp.headers["Cache-Control"]
        etag = resp.headers["ETag"]
    req = urllib.request.Request(live_server.url + "/api/layers/grid.geojson",
                                 headers={"If-None-Match": etag, **cookie})
    try:
        urllib.request.urlopen(req)
        raise AssertionError("expected 304 Not Modified")
    except urllib.error.HTTPError as exc:
        assert exc.code == 304
    try:
        urllib.request.urlopen(urllib.request.Request(live_server.url + "/api/layers/household.geojson",
                                                      headers=cookie))
        raise AssertionError("households are not a map layer")
    except urllib.error.HTTPError as exc:
        assert exc.code == 404


BUILDING_PATHS = ".gm-pane-building path.gm-building"
HINT_SHOWN = f"#{ids.MAP_ZOOM_HINT}:not(.gm-zoom-hint-off)"


def _layer_requests(driver, layer: str) -> list[str]:
    return [u for u in requested_urls(driver) if f"/api/layers/{layer}." in u]


def test_buildings_only_when_zoomed_in(browser, live_server, engine):
    """Issue 8: polygons come generalised per zoom band as geobuf; buildings only for the viewport,
    from their minimum zoom on, with a hint to zoom in below it."""
    with engine.connect() as conn:
        grids = conn.execute(text("SELECT count(*) FROM grid")).scalar_one()
    browser.get(live_server.url + "/")
    _wait(browser).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, GRID_PATHS)) >= grids)

    # Out to where buildings are not sent: the hint says so, in Chinese, and no building is drawn.
    zoom_out_until(browser, HINT_SHOWN)
    hint = _wait(browser).until(ec.visibility_of_element_located((By.CSS_SELECTOR, HINT_SHOWN)))
    assert "放大地图" in hint.text
    time.sleep(1.0)
    assert not browser.find_elements(By.CSS_SELECTOR, BUILDING_PATHS)
    grid_urls = _layer_requests(browser, "grid")
    assert grid_urls and all(".pbf?" in u for u in grid_urls), grid_urls
    # every grid is still drawn, from the generalised copy of this zoom band
    _wait(browser).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, GRID_PATHS)) >= grids)
    assert any("&z=" in u for u in grid_urls + _layer_requests(browser, "grid")), grid_urls
    assert not [u for u in _layer_requests(browser, "building") if "bbox=" in u]

    # In, step by step, until the buildings of the viewport arrive; the hint goes.
    zoom_in_until(browser, BUILDING_PATHS)
    buildings = browser.find_elements(By.CSS_SELECTOR, BUILDING_PATHS)
    assert buildings, ("no building drawn after zooming in", _layer_requests(browser, "building"))
    assert not browser.find_elements(By.CSS_SELECTOR, HINT_SHOWN)
    building_urls = _layer_requests(browser, "building")
    assert any("bbox=" in u and ".pbf?" in u for u in building_urls), building_urls
    with engine.connect() as conn:
        total = conn.execute(text("SELECT count(*) FROM building")).scalar_one()
    assert len(buildings) <= total


def test_key_households_counted_per_grid_when_zoomed_out(browser, live_server, engine, artifacts_dir):
    """At the opening view each grid with key households shows their number as a badge (the
    households themselves come from their own zoom on); a click on a badge opens the grid."""
    with engine.connect() as conn:
        per_grid = dict(conn.execute(text(
            "SELECT b.grid_id, count(DISTINCT kp.household_id) FROM key_person kp "
            "JOIN household h ON h.id = kp.household_id JOIN building b ON b.id = h.building_id GROUP BY 1")).all())
    browser.get(live_server.url + "/")
    badges = _wait(browser).until(
        lambda d: (found := d.find_elements(By.CSS_SELECTOR, ".gm-khg")) and len(found) == len(per_grid) and found)
    assert sorted(int(b.text.replace(",", "")) for b in badges) == sorted(per_grid.values())
    browser.save_screenshot(str(artifacts_dir / "map-key-households-per-grid.png"))
    browser.execute_script("arguments[0].click();", badges[0])
    _wait(browser).until(lambda d: "网格" in d.find_element(By.ID, ids.MAP_PANEL).text
                         and d.find_element(By.ID, ids.MAP_PANEL).text.count("户") >= 1)
