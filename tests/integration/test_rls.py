"""The same rules in PostgreSQL: row-level security and column privileges, under real roles.

Every principal of the security suite gets a role of its own in its app role's group (created
inside the test's transaction, so nothing is left in the cluster), mapped to its area through
``app_user.db_role``; the test then ``SET ROLE``s to it and counts what a direct SQL connection
reads. One more test logs in over TCP as a login role made by ``create_user(sql_role=...)``.
"""

from __future__ import annotations

import os
from collections import Counter
from uuid import uuid4

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from gridmap.domain import access as rules
from gridmap.services import auth
from tests.integration.test_access import _grids_of, _places, _principals, write_summary

COUNTS: Counter = Counter()


@pytest.fixture(scope="module", autouse=True)
def _summary():
    yield
    write_summary("test_rls", COUNTS)
    print(f"\nsecurity suite (SQL): {dict(COUNTS)}")


@pytest.fixture
def conn(engine):
    """A connection in a transaction rolled back at the end: the roles made in it vanish with it."""
    connection = engine.connect()
    outer = connection.begin()
    try:
        yield connection
    finally:
        outer.rollback()
        connection.close()


def _scalar(conn, sql: str, **params):
    return conn.execute(text(sql), params).scalar_one()


def _denied(conn, sql: str) -> bool:
    """Whether the current role is refused ``sql`` (in a savepoint, so the transaction goes on)."""
    try:
        with conn.begin_nested():
            conn.execute(text(sql))
    except DBAPIError as exc:
        if isinstance(exc.orig, psycopg.errors.InsufficientPrivilege):
            return True
        raise
    return False


def _map_roles(conn, principals) -> dict[str, str]:
    """A role per principal, in its group, mapped to its area; returns username → role name."""
    tag = uuid4().hex[:8]
    roles = {}
    for n, p in enumerate(principals):
        role = f"gmt_{tag}_{n}"
        conn.execute(text(f'CREATE ROLE "{role}" NOLOGIN IN ROLE "{rules.SQL_GROUP_ROLES[p.role]}"'))
        if p.user_id > 0:
            conn.execute(text("UPDATE app_user SET db_role = :r WHERE id = :id"), {"r": role, "id": p.user_id})
        else:
            conn.execute(text(
                "INSERT INTO app_user (username, display_name, password_hash, role, area_level, area_id, db_role) "
                "VALUES (:u, '', 'x', :role, :l, :a, :r)"),
                {"u": f"{p.username}_{tag}", "role": p.role, "l": p.area_level, "a": p.area_id, "r": role})
        roles[p.username] = role
    return roles


_PERSONS_BY_GRID = """
SELECT b.grid_id, count(DISTINCT kp.id) AS persons, count(l.key_person_id) AS links
FROM key_person kp JOIN household h ON h.id = kp.household_id JOIN building b ON b.id = h.building_id
LEFT JOIN key_person_category_link l ON l.key_person_id = kp.id
GROUP BY b.grid_id
"""


def _personal_grids(conn, p) -> set[int]:
    if p.role == "grid_leader" and p.area_level == "grid":
        return {p.area_id}
    if p.role == "community_worker" and p.area_level == "community":
        return {pl["grid"] for pl in _places(conn) if pl["community"] == p.area_id}
    return set()


def test_row_level_security_by_role_and_area(conn):
    session = Session(bind=conn)
    principals = _principals(session)
    truth = {r.grid_id: r for r in conn.execute(text(_PERSONS_BY_GRID))}
    households = dict(conn.execute(text(
        "SELECT b.grid_id, count(*) FROM household h JOIN building b ON b.id = h.building_id GROUP BY 1")).all())
    has_contacts = _scalar(conn, "SELECT to_regclass('contact_log') IS NOT NULL")
    contacts = dict(conn.execute(text(
        "SELECT b.grid_id, count(*) FROM contact_log c JOIN key_person kp ON kp.id = c.key_person_id "
        "JOIN household h ON h.id = kp.household_id JOIN building b ON b.id = h.building_id GROUP BY 1")).all()
    ) if has_contacts else {}
    grids_total = _scalar(conn, "SELECT count(*) FROM grid")
    roles = _map_roles(conn, principals)
    for p in principals:
        area = _grids_of(conn, p)
        personal = _personal_grids(conn, p)
        conn.execute(text(f'SET LOCAL ROLE "{roles[p.username]}"'))
        label = f"{p.role}@{p.area_level}{p.area_id}"
        # key persons and their categories: only where the role sees personal data
        assert _scalar(conn, "SELECT count(*) FROM key_person") == sum(
            truth[g].persons for g in personal if g in truth), label
        assert _scalar(conn, "SELECT count(*) FROM key_person_category_link") == sum(
            truth[g].links for g in personal if g in truth), label
        if has_contacts:
            assert _scalar(conn, "SELECT count(*) FROM contact_log") == sum(contacts.get(g, 0) for g in personal)
            COUNTS["sql_cases"] += 1
        # households: the rows of the area; names and phones only for the roles that see personal data
        assert _scalar(conn, "SELECT count(*) FROM household") == sum(households.get(g, 0) for g in area), label
        assert _denied(conn, "SELECT head_name FROM household LIMIT 1") is (p.role not in rules.PERSONAL_SCOPE)
        assert _denied(conn, "SELECT phone FROM household LIMIT 1") is (p.role not in rules.PERSONAL_SCOPE)
        # commanders see the key persons of their area masked, through the view
        assert _scalar(conn, "SELECT count(*) FROM key_person_masked") == sum(
            truth[g].persons for g in area if g in truth), label
        assert _scalar(conn, "SELECT count(*) FROM key_person_masked WHERE in_clear") == sum(
            truth[g].persons for g in personal if g in truth), label
        # the map is for everyone; users, sessions and the audit trail are not
        assert _scalar(conn, "SELECT count(*) FROM grid") == grids_total
        for table in ("app_user", "user_session", "audit_log"):
            assert _denied(conn, f"SELECT count(*) FROM {table}"), (label, table)
        # and nobody writes through SQL
        assert _denied(conn, "UPDATE key_person SET note = 'x'"), label
        assert _denied(conn, "DELETE FROM household"), label
        assert _denied(conn, "INSERT INTO staff (community_id, name, role, active) VALUES (1, 'x', 'volunteer', true)")
        conn.execute(text("RESET ROLE"))
        COUNTS["sql_cases"] += 14
    COUNTS["sql_principals"] += len(principals)


def test_masked_view_uses_the_same_masks_as_the_app(conn):
    session = Session(bind=conn)
    commander = next(p for p in _principals(session) if p.username == "commander")
    role = _map_roles(conn, [commander])["commander"]
    real = {r.id: r for r in conn.execute(text("SELECT id, name, phone, id_number FROM key_person"))}
    conn.execute(text(f'SET LOCAL ROLE "{role}"'))
    rows = conn.execute(text("SELECT id, name, phone, id_number, in_clear FROM key_person_masked")).all()
    conn.execute(text("RESET ROLE"))
    assert rows and not any(r.in_clear for r in rows)
    for r in rows:
        assert r.name == rules.mask_name(real[r.id].name)
        assert r.phone == rules.mask_phone(real[r.id].phone)
        assert r.id_number == rules.mask_id_number(real[r.id].id_number)
    COUNTS["sql_rows_checked"] += len(rows)
    COUNTS["sql_cases"] += 1


def test_the_app_itself_is_not_restricted(conn):
    # The app connects as the tables' owner (or a superuser): RLS is ENABLEd, not FORCEd.
    assert _scalar(conn, "SELECT count(*) FROM key_person") > 0
    forced = conn.execute(text(
        "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
        "WHERE relname IN ('key_person', 'key_person_category_link', 'household')")).all()
    assert {r.relname for r in forced if r.relrowsecurity and not r.relforcerowsecurity} == {
        "key_person", "key_person_category_link", "household"}
    COUNTS["sql_cases"] += 1


def test_a_real_sql_login_sees_only_its_grid(engine, database_url, settings):
    """``gridmap user add --sql-role``: a login role of its own, over TCP, under row-level security."""
    username = f"rls_{os.getpid()}_{uuid4().hex[:6]}"
    sql_role = rules.default_sql_role(username)
    password = uuid4().hex
    with Session(engine) as s:
        grid = s.execute(text("SELECT min(id) FROM grid")).scalar_one()
        expected = s.execute(text(
            "SELECT count(*) FROM key_person kp JOIN household h ON h.id = kp.household_id "
            "JOIN building b ON b.id = h.building_id WHERE b.grid_id = :g"), {"g": grid}).scalar_one()
        user = auth.create_user(s, settings, username=username, password=password, role="grid_leader",
                                area_level="grid", area_id=grid, sql_role=sql_role, actor="test")
        s.commit()
    assert user.db_role == sql_role
    try:
        url = make_url(database_url)
        with psycopg.connect(host=url.host, port=url.port or 5432, dbname=url.database, user=sql_role,
                             password=password, connect_timeout=5) as direct:
            assert direct.execute("SELECT current_user").fetchone()[0] == sql_role
            assert direct.execute("SELECT count(*) FROM key_person").fetchone()[0] == expected > 0
            grids = direct.execute(
                "SELECT DISTINCT b.grid_id FROM key_person kp JOIN household h ON h.id = kp.household_id "
                "JOIN building b ON b.id = h.building_id").fetchall()
            assert grids == [(grid,)]
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                direct.execute("SELECT * FROM audit_log LIMIT 1")
        COUNTS["sql_cases"] += 4
    finally:
        with Session(engine) as s:
            s.execute(text("DELETE FROM app_user WHERE username = :u"), {"u": username})
            s.execute(text(f'DROP ROLE IF EXISTS "{sql_role}"'))
            s.commit()
