"""Tasking in a real browser (issue 6): the commander draws an area on /tasks and gives out a
door-knock campaign, sees it with its item count; the grid leader takes an item on /field (seeing
who holds another one and until when) and marks it done; back on /tasks the progress shows 1 done."""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime

import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.config import Settings
from gridmap.services import tasks
from gridmap.web import ids
from tests.web.conftest import DEMO_PASSWORD, DEMO_USER, WINDOW, login

pytestmark = pytest.mark.browser

GRID_PATHS = ".gm-ae-pane-grid path"


def _wait(driver, seconds: float = 30) -> WebDriverWait:
    return WebDriverWait(driver, seconds, poll_frequency=0.05,
                         ignored_exceptions=(StaleElementReferenceException, NoSuchElementException))


def _click_at(driver, x: float, y: float) -> None:
    actions = ActionBuilder(driver)
    actions.pointer_action.move_to_location(int(x), int(y)).click()
    actions.perform()


def _attr(driver, element_id: str, name: str) -> str | None:
    return driver.execute_script(
        "const el = document.getElementById(arguments[0]); return el ? el.getAttribute(arguments[1]) : null;",
        element_id, name,
    )


def _text(driver, element_id: str) -> str:
    return driver.execute_script(
        "const el = document.getElementById(arguments[0]); return el ? el.innerText : '';", element_id
    )


def _preview_items(driver) -> int:
    """The number of items the preview says the task will make (0 while there is none)."""
    return int(driver.execute_script(
        "const el = document.querySelector('.gm-tk-preview-body'); return el ? el.dataset.items : 0;") or 0)


def _card_text(driver, item_id: int) -> str:
    return driver.execute_script(
        "const el = document.querySelector(`.gm-fd-card[data-item='${arguments[0]}']`); return el ? el.innerText : '';",
        item_id,
    )


def _click_in_card(driver, item_id: int, css: str) -> None:
    """Click a card's button; the list may be redrawn under Selenium (look it up again then)."""
    def click(d) -> bool:
        d.find_element(By.CSS_SELECTOR, f".gm-fd-card[data-item='{item_id}'] {css}").click()
        return True

    _wait(driver).until(click)


def test_door_knock_from_a_drawn_area_done_in_the_field(browser, live_server, engine, artifacts_dir):
    with engine.connect() as conn:
        grid_id = conn.execute(text("SELECT area_id FROM app_user WHERE username = 'gridleader'")).scalar_one()
        before = conn.execute(text("SELECT coalesce(max(id), 0) FROM task")).scalar_one()
    try:
        # 1. The commander draws an area over the grid leader's grid and gives out a door-knock campaign.
        browser.get(live_server.url + f"/tasks?grid={grid_id}")
        _wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, GRID_PATHS))
        polygon_tool = _wait(browser).until(ec.element_to_be_clickable((By.CSS_SELECTOR, ".leaflet-draw-draw-polygon")))
        assert "先在地图上选择范围" in _text(browser, ids.TASK_PREVIEW)  # the empty state, in Chinese
        assert not browser.find_element(By.ID, ids.TASK_CREATE).is_enabled()
        _wait(browser).until(lambda d: "敲门行动" in _text(d, ids.TASK_TYPE))  # the default type

        frame = browser.find_element(By.ID, ids.TASK_MAP).rect
        cx, cy = frame["x"] + frame["width"] / 2, frame["y"] + frame["height"] / 2
        rx, ry = frame["width"] * 0.3, frame["height"] * 0.32
        points = [(cx - rx, cy - ry), (cx + rx, cy - ry * 0.9), (cx + rx, cy + ry), (cx - rx * 0.9, cy + ry)]
        polygon_tool.click()
        for x, y in [*points, points[0]]:
            _click_at(browser, x, y)
            time.sleep(0.15)
        _wait(browser).until(lambda d: _preview_items(d) > 0)
        items = _preview_items(browser)
        assert "建议分派" in _text(browser, ids.TASK_PREVIEW)
        _wait(browser).until(lambda d: d.find_element(By.ID, ids.TASK_CREATE).is_enabled())
        browser.find_element(By.ID, ids.TASK_CREATE).click()

        # 2. The task opens with its item count; the list has it too.
        _wait(browser).until(lambda d: _attr(d, f"{ids.TASK_PROGRESS}-bar", "data-items") == str(items))
        assert "已派发" in _text(browser, ids.TASK_ROUNDS_MESSAGE)
        with engine.connect() as conn:
            task_id, n, in_grid = conn.execute(text(
                "SELECT t.id, count(i.id), count(i.id) FILTER (WHERE b.grid_id = :g) FROM task t"
                " JOIN task_type tt ON tt.id = t.task_type_id AND tt.code = 'door_knock'"
                " JOIN task_item i ON i.task_id = t.id JOIN building b ON b.id = i.building_id"
                " WHERE t.id > :b GROUP BY t.id"), {"g": grid_id, "b": before}).one()
        assert n == items and in_grid > 0
        assert "敲门行动" in _text(browser, ids.TASK_DETAIL_HEAD)
        _wait(browser).until(lambda d: d.execute_script("return document.querySelectorAll('path.gm-tk-item').length")
                             == items)  # every item on the map, coloured by state
        _wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, f".gm-tk-card[data-task='{task_id}']"))
        assert browser.find_element(By.CSS_SELECTOR, f".gm-tk-card[data-task='{task_id}']").get_attribute(
            "data-items") == str(items)

        # 3. Somebody else of the community holds the grid's second item (the field screen's order).
        with Session(engine) as session, session.begin():
            first, other_item = session.execute(text(
                "SELECT i.id FROM task_item i JOIN building b ON b.id = i.building_id"
                " WHERE i.task_id = :t AND b.grid_id = :g ORDER BY i.due_at, i.id LIMIT 2"),
                {"g": grid_id, "t": task_id}).scalars().all()
            holder = session.execute(text(
                "SELECT s.id FROM staff s WHERE s.active AND s.role <> 'grid_leader'"
                " AND s.community_id = (SELECT community_id FROM grid WHERE id = :g) ORDER BY s.id LIMIT 1"),
                {"g": grid_id}).scalar_one()
            held = tasks.take_item(session, other_item, holder, datetime.now(UTC), Settings())

        # 4. The grid leader, on a tablet: takes an item, then marks it done.
        browser.set_window_size(1024, 768)
        login(browser, live_server.url, "gridleader", "demo-gridleader")
        browser.get(live_server.url + "/field")
        _wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, f".gm-fd-card[data-item='{first}'] .gm-fd-btn"))
        assert "网格员" in _text(browser, ids.FIELD_WHO)  # whom they work as
        # the other's lock, said plainly: "由 <name> 锁定至 HH:MM", and no take button for it
        assert f"由 {held.locked_by_name} 锁定至" in _card_text(browser, other_item)
        assert not browser.find_element(
            By.CSS_SELECTOR, f".gm-fd-card[data-item='{other_item}'] .gm-fd-btn-primary").is_enabled()
        _click_in_card(browser, first, ".gm-fd-btn-primary")
        _wait(browser).until(lambda d: "你已领取，锁定至" in _card_text(d, first))
        assert "已领取" in _text(browser, ids.FIELD_MESSAGE)
        _click_in_card(browser, first, ".gm-fd-btn-done")
        _wait(browser).until(lambda d: "已完成" in _text(d, ids.FIELD_MESSAGE))
        _wait(browser).until(lambda d: not d.find_elements(By.CSS_SELECTOR, f".gm-fd-card[data-item='{first}']"))
        with engine.connect() as conn:
            done = conn.execute(text("SELECT id, state, done_by FROM task_item WHERE task_id = :t AND state = 'done'"),
                                {"t": task_id}).all()
        assert [d.id for d in done] == [first] and done[0].done_by is not None
        browser.save_screenshot(str(artifacts_dir / "field.png"))

        # 5. Back on /tasks, the commander sees 1 done.
        browser.set_window_size(*WINDOW)
        login(browser, live_server.url, DEMO_USER, DEMO_PASSWORD)
        browser.get(live_server.url + f"/tasks?task={task_id}")
        _wait(browser).until(lambda d: _attr(d, f"{ids.TASK_PROGRESS}-bar", "data-done") == "1")
        assert "已完成 1" in _text(browser, ids.TASK_PROGRESS)
        assert _attr(browser, f"{ids.TASK_PROGRESS}-bar", "data-locked") == "1"  # the other's
        _wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, "path.gm-tk-item.gm-tk-state-done"))
        browser.find_element(By.CSS_SELECTOR, f"tr[data-item='{first}'] .gm-tk-item-link").click()
        _wait(browser).until(lambda d: "条目" in _text(d, ids.TASK_ITEM_BOX) and "已完成" in _text(d, ids.TASK_ITEM_BOX))
        browser.save_screenshot(str(artifacts_dir / "tasks.png"))

        # 6. A write from elsewhere (the other gives the item back) reaches the open page by itself,
        # through the data version at /api/changes: no reload.
        with Session(engine) as session, session.begin():
            tasks.release_item(session, other_item, holder, datetime.now(UTC))
        _wait(browser).until(lambda d: _attr(d, f"{ids.TASK_PROGRESS}-bar", "data-locked") == "0")

    finally:
        browser.set_window_size(*WINDOW)
        with contextlib.suppress(Exception):
            login(browser, live_server.url, DEMO_USER, DEMO_PASSWORD)
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM task WHERE id > :b"), {"b": before})


def test_task_routes(browser, live_server, engine):
    """The items of an unknown task are a 404 in JSON; the export of a bad day is a 400."""
    browser.get(live_server.url + "/api/tasks/999999/items.geojson")
    assert '"unknown_task"' in browser.page_source
    browser.get(live_server.url + "/api/reports/2022-13-45.xlsx")
    assert '"bad_date"' in browser.page_source


TK_BUILDINGS = ".gm-ae-pane-building path.gm-building"
TK_HINT_SHOWN = f"#{ids.TASK_ZOOM_HINT}:not(.gm-zoom-hint-off)"


def test_buildings_only_when_zoomed_in_and_selected(browser, live_server, engine):
    """Issue 8: the tasking map's layers follow the map's view as on the command map: buildings
    only for the viewport from their minimum zoom on (a bbox in the URL), a hint to zoom in below
    it; a building drawn after zooming in is selected with a click."""
    from tests.web.conftest import requested_urls, zoom_in_until, zoomed_out_asks_no_buildings

    with engine.connect() as conn:
        grids = conn.execute(text("SELECT count(*) FROM grid")).scalar_one()
    requested_urls(browser)  # drain what earlier tests requested in this browser
    browser.get(live_server.url + "/tasks")
    _wait(browser).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, GRID_PATHS)) >= grids)
    urls = zoomed_out_asks_no_buildings(browser, TK_HINT_SHOWN, TK_BUILDINGS)
    assert not [u for u in urls if "/api/layers/building.geojson" in u]  # never the whole layer
    assert any("/api/layers/grid.pbf" in u and "&z=" in u for u in urls), urls

    zoom_in_until(browser, TK_BUILDINGS)
    assert browser.find_elements(By.CSS_SELECTOR, TK_BUILDINGS), "no building drawn after zooming in"
    assert not browser.find_elements(By.CSS_SELECTOR, TK_HINT_SHOWN)
    urls += requested_urls(browser)
    assert any("/api/layers/building.pbf" in u and "bbox=" in u for u in urls), urls

    # Pick buildings: a click on a drawn one selects it (outlined from the layer's hideout).
    browser.find_element(By.CSS_SELECTOR, f"#{ids.TASK_MODE} input[value=buildings]").find_element(
        By.XPATH, "../..").click()
    time.sleep(0.5)
    box = browser.execute_script(
        "const w = document.querySelector('.gm-map').getBoundingClientRect();"
        "const inside = Array.from(document.querySelectorAll(arguments[0])).map(p => p.getBoundingClientRect())"
        ".filter(b => b.width > 4 && b.height > 4 && b.left > w.left + 60 && b.right < w.right - 60"
        " && b.top > w.top + 120 && b.bottom < w.bottom - 60);"
        "return inside.length ? inside[0] : null;", TK_BUILDINGS)
    assert box, "no building wholly inside the map to click"
    _click_at(browser, box["left"] + box["width"] / 2, box["top"] + box["height"] / 2)
    _wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".gm-ae-pane-building path.gm-tk-selected"))
