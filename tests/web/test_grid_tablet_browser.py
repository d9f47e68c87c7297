"""The grid sheet (/grid/<id>) in a real browser, as the demo grid leader on a 1024×768 tablet and a
390×844 phone: no sideways scrolling, names in clear for the grid's leader (masked for the
commander), a contact logged through the form moving the person's status, and a task item taken
and finished with the buttons. Rows the tests commit are deleted again."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.config import Settings
from gridmap.services import tasks
from gridmap.web import ids
from tests.web.conftest import DEMO_PASSWORD, DEMO_USER, WINDOW, log_out, login
from tests.web.test_wall_browser import set_viewport

pytestmark = pytest.mark.browser

LEADER, LEADER_PASSWORD = "gridleader", "demo-gridleader"


def _wait(driver, seconds: float = 30) -> WebDriverWait:
    return WebDriverWait(driver, seconds, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,))


def _login_as(driver, base_url: str, user: str = DEMO_USER, password: str = DEMO_PASSWORD) -> None:
    log_out(driver, base_url)
    login(driver, base_url, user, password)


@pytest.fixture
def leader_browser(chromium, live_server):
    """The shared chromium logged in as the demo grid leader; the commander again afterwards, as the
    other browser tests expect."""
    _login_as(chromium, live_server.url, LEADER, LEADER_PASSWORD)
    try:
        yield chromium
    finally:
        with contextlib.suppress(Exception):
            chromium.execute_script("window.localStorage.clear(); window.sessionStorage.clear();")
        set_viewport(chromium, *WINDOW)
        _login_as(chromium, live_server.url)


def _leader_grid(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT area_id FROM app_user WHERE username = :u"), {"u": LEADER}).scalar_one()


def _no_sideways_scroll(driver) -> bool:
    return driver.execute_script(
        "const gp = document.querySelector('.gm-gp');"
        "return document.documentElement.scrollWidth <= window.innerWidth"
        " && (!gp || gp.scrollWidth <= gp.clientWidth + 1);")


def _status(driver, person: int) -> tuple[str, str]:
    row = driver.find_element(By.ID, ids.grid_person(person))
    return row.get_attribute("data-status"), row.get_attribute("data-contacts")


def _click(driver, by: str, selector: str) -> None:
    """Click, again if the element was redrawn meanwhile (the page redraws when the data moves)."""
    def clicked(d) -> bool:
        d.find_element(by, selector).click()
        return True

    _wait(driver).until(clicked)


def _log_contact(driver, person: int, method_label: str) -> None:
    _click(driver, By.CSS_SELECTOR, f"#{ids.grid_person(person)} button")
    _wait(driver).until(lambda d: "选择重点人员" not in d.find_element(By.ID, ids.GRID_FORM_PERSON).text)
    _click(driver, By.XPATH, f"//*[@id='{ids.GRID_FORM_METHOD}']//span[normalize-space()='{method_label}']")
    note = driver.find_element(By.ID, ids.GRID_FORM_NOTE)
    note.clear()
    note.send_keys("门口交谈，一切正常")
    _click(driver, By.ID, ids.GRID_FORM_SUBMIT)


def test_grid_sheet_on_a_tablet_logs_a_contact(leader_browser, live_server, engine, artifacts_dir):
    browser = leader_browser
    grid_id = _leader_grid(engine)
    with engine.connect() as conn:
        last_id = conn.execute(text("SELECT coalesce(max(id), 0) FROM contact_log")).scalar_one()
    set_viewport(browser, 1024, 768)
    try:
        browser.get(f"{live_server.url}/grid/{grid_id}")
        _wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".gm-gp-person-due"))
        person = _wait(browser).until(lambda d: int(
            d.find_element(By.CSS_SELECTOR, ".gm-gp-person-due").get_attribute("id").rsplit("-", 1)[1]))
        with engine.connect() as conn:
            name, phone = conn.execute(text("SELECT name, phone FROM key_person WHERE id = :id"), {"id": person}).one()
        # The grid's own leader sees the name and phone in clear.
        _wait(browser).until(lambda d: name in d.find_element(By.ID, ids.grid_person(person)).text
                             and phone in d.find_element(By.ID, ids.grid_person(person)).text)
        _wait(browser).until(lambda d: _status(d, person) == ("due", "0"))
        assert _no_sideways_scroll(browser)
        # Buildings listed and drawn.
        with engine.connect() as conn:
            buildings = conn.execute(text("SELECT count(*) FROM building WHERE grid_id = :g"), {"g": grid_id}).scalar_one()
        assert len(browser.find_elements(By.CSS_SELECTOR, f"#{ids.GRID_BUILDINGS} tbody tr")) == buildings
        _wait(browser).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, f"#{ids.GRID_MAP} path.gm-gp-building"))
                             == buildings)
        browser.save_screenshot(str(artifacts_dir / "grid-tablet.png"))

        # Two contacts through the form: due (1 of 2), then on time.
        _log_contact(browser, person, "电话")
        _wait(browser).until(lambda d: "gm-gp-msg-ok" in d.find_element(By.ID, ids.GRID_MESSAGE).get_attribute(
            "innerHTML"))
        _wait(browser).until(lambda d: _status(d, person) == ("due", "1"))
        _log_contact(browser, person, "上门")
        _wait(browser).until(lambda d: _status(d, person) == ("on_time", "2"))
        # (looked up inside a wait: Dash may redraw the card between the lookup and the read)
        _wait(browser).until(lambda d: "已按时" in d.find_element(By.ID, ids.grid_person(person)).text)
        _wait(browser).until(lambda d: "已记录" in d.find_element(By.ID, ids.GRID_MESSAGE).text)
        with engine.connect() as conn:
            logged = conn.execute(text(
                "SELECT method, outcome, note, staff_id FROM contact_log WHERE id > :last AND key_person_id = :p"
                " ORDER BY id"), {"last": last_id, "p": person}).all()
        assert [r.method for r in logged] == ["phone", "visit"]
        assert all(r.outcome == "normal" and r.note == "门口交谈，一切正常" and r.staff_id for r in logged)
        browser.save_screenshot(str(artifacts_dir / "grid-tablet-logged.png"))
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM contact_log WHERE id > :last"), {"last": last_id})


def test_grid_sheet_on_a_phone(leader_browser, live_server, engine, artifacts_dir):
    browser = leader_browser
    grid_id = _leader_grid(engine)
    set_viewport(browser, 390, 844)
    browser.get(f"{live_server.url}/grid/{grid_id}")
    _wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".gm-gp-person-due"))
    assert browser.execute_script("return window.innerWidth") == 390
    assert _no_sideways_scroll(browser)
    # One column, the form first; buttons big enough for a finger.
    form = browser.find_element(By.ID, ids.GRID_FORM).rect
    persons = browser.find_element(By.ID, ids.GRID_PERSONS).rect
    assert persons["y"] > form["y"] and abs(persons["x"] - form["x"]) < 2
    assert browser.find_element(By.ID, ids.GRID_FORM_SUBMIT).rect["height"] >= 44
    for button in browser.find_elements(By.CSS_SELECTOR, ".gm-gp-person button")[:5]:
        assert button.rect["height"] >= 40
    browser.save_screenshot(str(artifacts_dir / "grid-phone.png"))


def test_grid_sheet_task_item_take_and_done(leader_browser, live_server, engine, database_url):
    browser = leader_browser
    grid_id = _leader_grid(engine)
    settings = Settings(database_url=database_url)
    now = datetime.now(UTC)
    with Session(engine) as session, session.begin():
        leader = session.execute(text(
            "SELECT s.id FROM staff s JOIN staff_assignment sa ON sa.staff_id = s.id WHERE sa.grid_id = :g"
            " AND s.role = 'grid_leader' ORDER BY s.id LIMIT 1"), {"g": grid_id}).scalar_one()
        building = session.execute(text("SELECT min(id) FROM building WHERE grid_id = :g"), {"g": grid_id}).scalar_one()
        task = tasks.create_task(session, settings, type_code="disinfection",
                                 selection=tasks.Selection.buildings([building]), created_by="test", now=now)
        (item,) = tasks.task_items(session, task.id, now)
        tasks.reassign_item(session, item.id, leader, actor="test", now=now)
    try:
        browser.get(f"{live_server.url}/grid/{grid_id}")
        row = f"{ids.GRID_ITEMS}-{item.id}"
        _wait(browser).until(lambda d: d.find_elements(By.ID, row))
        _wait(browser).until(lambda d: d.find_element(By.ID, row).get_attribute("data-state") == "open")
        _click(browser, By.CSS_SELECTOR, f"#{row} button")  # 领取
        _wait(browser).until(lambda d: d.find_element(By.ID, row).get_attribute("data-state") == "locked")
        _click(browser, By.CSS_SELECTOR, f"#{row} button.gm-gp-btn-go")  # 完成
        _wait(browser).until(lambda d: not d.find_elements(By.ID, row))
        with engine.connect() as conn:
            state, done_by = conn.execute(text("SELECT state, done_by FROM task_item WHERE id = :i"),
                                          {"i": item.id}).one()
        assert (state, done_by) == ("done", leader)
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM task WHERE id = :t"), {"t": task.id})


def test_grid_sheet_for_the_commander_is_masked_and_read_only(browser, live_server, engine):
    _login_as(browser, live_server.url)  # whoever an earlier test left logged in
    grid_id = _leader_grid(engine)
    browser.get(f"{live_server.url}/grid/{grid_id}")
    _wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".gm-gp-person-due"))
    with engine.connect() as conn:
        names = conn.execute(text(
            "SELECT kp.name FROM key_person kp JOIN household h ON h.id = kp.household_id"
            " JOIN building b ON b.id = h.building_id WHERE b.grid_id = :g"), {"g": grid_id}).scalars().all()
    page = browser.find_element(By.ID, ids.GRID_PAGE).text
    assert names and not [n for n in names if len(n) >= 2 and n in page]
    _wait(browser).until(lambda d: "*" in d.find_element(By.CSS_SELECTOR, ".gm-gp-person-due .gm-gp-name").text)
    assert not browser.find_element(By.ID, ids.GRID_FORM_SUBMIT).is_enabled()
    assert "脱敏" in page
    # Another grid's leader may not open this one: a message, never a traceback.
    browser.get(f"{live_server.url}/grid/999999")
    _wait(browser).until(lambda d: "没有这个网格" in d.find_element(By.TAG_NAME, "body").text)
