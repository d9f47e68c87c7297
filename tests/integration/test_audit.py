"""The audit trail: every write with who, when, what row, before and after; append-only; browsed by
auditors with personal values masked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import g
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.config import Settings
from gridmap.services import access, audit, auth
from gridmap.services.access import AccessDenied
from gridmap.services.importing import import_layer


def _principal(session, username: str):
    return access.load_principal(session, auth.get_user(session, username).id)


def _entries(session, *, table: str, row_id: int | None = None, since_id: int = 0) -> list[dict]:
    sql = "SELECT * FROM audit_log WHERE table_name = :t AND id > :since"
    params = {"t": table, "since": since_id}
    if row_id is not None:
        sql += " AND row_id = :r"
        params["r"] = row_id
    return [dict(r) for r in session.execute(text(sql + " ORDER BY id"), params).mappings()]


def _last_id(session) -> int:
    return session.execute(text("SELECT coalesce(max(id), 0) FROM audit_log")).scalar_one()


def test_an_edit_is_logged_with_its_user_and_only_what_changed(session):
    leader = _principal(session, "gridleader")
    person = access.list_key_persons(session, leader)[0]
    start = _last_id(session)
    access.update_key_person(session, leader, person["id"], person["version"], {"phone": "13900001111"})
    [entry] = _entries(session, table="key_person", row_id=person["id"], since_id=start)
    assert entry["action"] == "UPDATE" and entry["actor"] == "gridleader" and entry["actor_role"] == "grid_leader"
    assert entry["before"] == {"phone": person["phone"], "version": person["version"]}
    assert entry["after"] == {"phone": "13900001111", "version": person["version"] + 1}
    assert entry["db_user"] and entry["at"] is not None and entry["txid"] > 0


def test_insert_delete_and_truncate_are_logged(session):
    audit.set_actor(session, "tester", "district_commander")
    start = _last_id(session)
    new_id = session.execute(text(
        "INSERT INTO service_point (kind, name, capacity, geom) "
        "SELECT 'testing_point', '临时检测点', 100, ST_PointOnSurface(geom) FROM grid ORDER BY id LIMIT 1 RETURNING id"
    )).scalar_one()
    session.execute(text("DELETE FROM service_point WHERE id = :id"), {"id": new_id})
    inserted, deleted = _entries(session, table="service_point", row_id=new_id, since_id=start)
    assert (inserted["action"], inserted["actor"], inserted["before"]) == ("INSERT", "tester", None)
    assert inserted["after"]["name"] == "临时检测点" and inserted["after"]["geom"]["type"] == "Point"
    assert (deleted["action"], deleted["after"]) == ("DELETE", None)
    assert deleted["before"]["capacity"] == 100
    with session.begin_nested() as savepoint:
        mark = _last_id(session)
        session.execute(text("TRUNCATE duty_shift"))
        [truncated] = _entries(session, table="duty_shift", since_id=mark)
        assert truncated["action"] == "TRUNCATE" and truncated["actor"] == "tester"
        savepoint.rollback()


def test_a_write_outside_the_app_names_the_database_role(session):
    start = _last_id(session)
    session.execute(text("UPDATE staff SET skills = 'psychological' WHERE id = (SELECT min(id) FROM staff)"))
    [entry] = _entries(session, table="staff", since_id=start)
    assert entry["actor"].startswith("db:") and entry["actor_role"] is None


def test_every_main_table_is_audited(session):
    tables = set(session.execute(text(
        "SELECT DISTINCT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "WHERE t.tgname LIKE '%\\_audit\\_insert'")).scalars())
    assert {"controlled_area", "key_person", "household", "staff", "staff_assignment", "risk_assignment",
            "checkpoint", "service_point", "app_user"} <= tables
    for optional in ("task", "task_item", "daily_report", "contact_log", "duty_shift"):
        if session.execute(text("SELECT to_regclass(:t)"), {"t": optional}).scalar():
            assert optional in tables


def test_audit_log_is_append_only(session):
    assert session.execute(text("SELECT count(*) FROM audit_log")).scalar_one() > 0
    # No UPDATE, DELETE or TRUNCATE privilege for PUBLIC nor for the owner; the triggers refuse them anyway.
    granted = set(session.execute(text(
        "SELECT a.privilege_type FROM pg_class c, aclexplode(c.relacl) a "
        "WHERE c.relname = 'audit_log' AND (a.grantee = 0 OR a.grantee = c.relowner)")).scalars())
    assert not granted & {"UPDATE", "DELETE", "TRUNCATE"}
    triggers = set(session.execute(text(
        "SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_log'::regclass AND NOT tgisinternal")).scalars())
    assert triggers == {"audit_log_no_update", "audit_log_no_truncate"}


def test_the_demo_load_is_one_bulk_entry(session):
    bulk = session.execute(text(
        "SELECT actor, detail FROM audit_log WHERE action = 'BULK_LOAD' ORDER BY id LIMIT 1")).mappings().one()
    households = session.execute(text("SELECT count(*) FROM household")).scalar_one()
    assert bulk["actor"] == "demo" and bulk["detail"]["household"] == households
    logged = session.execute(text(
        "SELECT count(*) FROM audit_log WHERE table_name = 'household' AND action = 'INSERT'")).scalar_one()
    assert logged < households  # the initial load was not logged row by row


def test_an_import_is_logged_row_by_row_with_its_user(session, settings, tmp_path):
    community = session.execute(text("SELECT code FROM community ORDER BY id LIMIT 1")).scalar_one()
    path = tmp_path / "staff.csv"
    path.write_text("name,role,community_code,phone\n赵一,volunteer,{c},13800000001\n钱二,volunteer,{c},\n"
                    .replace("{c}", community), encoding="utf-8")
    audit.set_actor(session, "community", "community_worker")
    start = _last_id(session)
    report = import_layer(session, "staff", path, settings=settings)
    entries = _entries(session, table="staff", since_id=start)
    assert report.rows_written == 2 == len(entries)
    assert {e["after"]["name"] for e in entries} == {"赵一", "钱二"}
    assert {(e["action"], e["actor"]) for e in entries} == {("INSERT", "community")}


def test_web_requests_name_their_user_in_every_transaction(engine, database_url):
    """A page's write, made in a request of a logged-in user, is attributed without the page saying so."""
    from gridmap.web import create_app

    app = create_app(Settings(database_url=database_url))
    connection = engine.connect()
    outer = connection.begin()
    try:
        with Session(bind=connection, join_transaction_mode="create_savepoint") as probe:
            principal = _principal(probe, "community")
        with app.server.test_request_context("/"):
            g.gridmap_principal = principal
            with Session(bind=connection, join_transaction_mode="create_savepoint") as s:
                start = _last_id(s)
                s.execute(text("UPDATE staff SET skills = 'medical' WHERE id = (SELECT min(id) FROM staff)"))
                [entry] = _entries(s, table="staff", since_id=start)
        assert (entry["actor"], entry["actor_role"]) == ("community", "community_worker")
    finally:
        outer.rollback()
        connection.close()


def test_logins_failures_and_logouts_are_logged(session, settings):
    now = datetime.now(UTC)
    start = _last_id(session)
    with pytest.raises(auth.LoginFailed):
        auth.authenticate(session, settings, "commander", "not-the-password", now=now)
    user = auth.authenticate(session, settings, "commander", "demo-commander", now=now)
    token = auth.start_session(session, settings, user, now=now, remote_addr="10.0.0.7")
    auth.end_session(session, token, now=now)
    rows = _entries(session, table="app_user", since_id=start)
    actions = [(r["action"], r["actor"]) for r in rows if r["action"] in audit.EVENTS]
    assert actions == [("LOGIN_FAILED", "commander"), ("LOGIN", "commander"), ("LOGOUT", "commander")]
    assert rows[-2]["detail"]["remote_addr"] == "10.0.0.7" or any(
        r["detail"] and r["detail"].get("remote_addr") == "10.0.0.7" for r in rows)


def test_auditors_search_with_personal_values_masked(session):
    auditor, commander = _principal(session, "auditor"), _principal(session, "commander")
    leader = _principal(session, "gridleader")
    person = access.list_key_persons(session, leader)[0]
    access.update_key_person(session, leader, person["id"], person["version"],
                             {"phone": "13912345678", "name": "李<b>四</b>"})
    page = audit.search(session, auditor, audit.AuditFilter(table_name="key_person", action="UPDATE",
                                                            row_id=person["id"]))
    assert page.total == 1
    entry = page.rows[0]
    assert entry["after"]["phone"] == "139****5678" and entry["after"]["name"] == "李" + "*" * 8
    assert "13912345678" not in entry["summary"] and "139****5678" in entry["summary"]
    # Filters are values, not SQL.
    assert audit.search(session, auditor, audit.AuditFilter(actor="%' OR 1=1 --")).total == 0
    assert audit.search(session, auditor, audit.AuditFilter(actor="gridl")).total >= 1
    day = datetime.now(UTC) - timedelta(days=1)
    assert audit.search(session, auditor, audit.AuditFilter(since=day, actor="gridleader")).total >= 1
    assert audit.search(session, auditor, audit.AuditFilter(until=day - timedelta(days=3650))).total == 0
    # The operator at the shell sees them in clear; a commander may not browse the trail at all.
    assert audit.search(session, None, audit.AuditFilter(row_id=person["id"], table_name="key_person",
                                                         action="UPDATE")).rows[0]["after"]["phone"] == "13912345678"
    with pytest.raises(AccessDenied):
        audit.search(session, commander)
