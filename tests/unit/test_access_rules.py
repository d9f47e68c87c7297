"""The access rules without a database: roles, masks, personal scope, and a grep for SQL built from
user values."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from gridmap.domain import access as rules
from gridmap.services.access import (
    AccessDenied,
    Principal,
    can_see_personal,
    in_area,
    require,
    require_write,
    scope_filter_sql,
)

PACKAGE = Path(__file__).resolve().parents[2] / "gridmap"


# --- masks ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("13812341234", "138****1234"),
        ("+8613812341234", "+86*******1234"),
        ("023-6388", "******88"),
        ("110", "***"),
        ("", ""),
        (None, None),
    ],
)
def test_mask_phone(value, expected):
    assert rules.mask_phone(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("500103199001011234", "5001**********1234"),
        ("50010319900101123X", "5001**********123X"),
        ("500103900101123", "5001*******1123"),
        ("1234", "****"),
        (None, None),
    ],
)
def test_mask_id_number(value, expected):
    assert rules.mask_id_number(value) == expected


def test_mask_name_keeps_only_the_first_character():
    assert rules.mask_name("张三丰") == "张**"
    assert rules.mask_name("李四") == "李*"
    assert rules.mask_name("王") == "王*"
    assert rules.mask_name("<script>alert(1)</script>") == "<" + "*" * 24


def test_mask_row_hides_health_facts_and_masks_identity():
    row = {"id": 1, "name": "张三", "phone": "13812341234", "id_number": "500103199001011234",
           "note": "高血压", "observation_start": "2022-11-20", "categories": ["chronic_patient"], "birth_year": 1950}
    masked = rules.mask_row("key_person", row)
    assert masked == {"id": 1, "name": "张*", "phone": "138****1234", "id_number": "5001**********1234",
                      "note": None, "observation_start": None, "categories": None, "birth_year": 1950}
    assert row["name"] == "张三"  # a copy, not the row itself


def test_audit_masking_knows_each_table():
    assert rules.mask_json_fields("key_person", {"name": "张三", "note": "x", "version": 2}) == {
        "name": "张*", "note": "***", "version": 2}
    # A community's name is no one's personal data.
    assert rules.mask_json_fields("community", {"name": "解放碑社区"}) == {"name": "解放碑社区"}
    assert rules.mask_json_fields("household", {"head_name": "王五", "phone": "13900001111", "room": "101"}) == {
        "head_name": "王*", "phone": "139****1111", "room": "101"}
    assert rules.mask_json_fields("staff", None) is None


# --- roles ---------------------------------------------------------------------------------------------


def test_every_role_has_permissions_levels_and_a_group_role():
    assert set(rules.PERMISSIONS) == set(rules.ROLES) == set(rules.ROLE_LEVELS) == set(rules.SQL_GROUP_ROLES)
    for perms in rules.PERMISSIONS.values():
        assert perms <= set(rules.ACTIONS)


WRITE_ACTIONS = {rules.EDIT_KEY_PERSON, rules.EDIT_AREA, rules.MANAGE_TASKS, rules.WORK_TASKS, rules.FILE_REPORT,
                 rules.MANAGE_USERS}


def test_the_auditor_is_read_only_and_alone_sees_the_audit_trail():
    assert not rules.PERMISSIONS["auditor"] & WRITE_ACTIONS
    assert [r for r in rules.ROLES if rules.may(r, rules.VIEW_AUDIT)] == ["auditor"]


def test_personal_data_is_for_grid_leaders_and_community_workers_only():
    assert {r for r in rules.ROLES if rules.may(r, rules.VIEW_PERSONAL)} == {"grid_leader", "community_worker"}
    assert {r for r in rules.ROLES if rules.may(r, rules.EDIT_KEY_PERSON)} == {"grid_leader", "community_worker"}
    # Those above see masked values and may reveal one, logged.
    assert {r for r in rules.ROLES if rules.may(r, rules.REVEAL)} == {"district_commander", "subdistrict_staff"}


@pytest.mark.parametrize(("role", "level", "ok"), [
    ("grid_leader", "grid", True), ("grid_leader", "community", False), ("community_worker", "community", True),
    ("community_worker", "grid", False), ("district_commander", "district", True),
    ("district_commander", "grid", False), ("volunteer", "community", True), ("auditor", "subdistrict", True),
    ("nobody", "grid", False),
])
def test_levels_a_role_binds_to(role, level, ok):
    assert rules.level_allowed(role, level) is ok


@pytest.mark.parametrize(("name", "ok"), [
    ("commander", True), ("zhang.wei-2", True), ("ab", False), ("a b", False), ("x' OR '1'='1", False),
    ("<script>", False), ("张伟", False), ("a" * 65, False),
])
def test_usernames(name, ok):
    assert rules.valid_username(name) is ok


@pytest.mark.parametrize(("name", "ok"), [
    ("gm_zhang", True), ("gridmap_grid_leader", False), ("pg_read_all_data", False), ("Gm", False),
    ('x"; DROP ROLE postgres; --', False), ("gm_" + "a" * 60, True), ("gm_" + "a" * 61, False),
])
def test_sql_role_names(name, ok):
    assert rules.valid_sql_role(name) is ok


def test_default_sql_role_is_valid():
    assert rules.default_sql_role("Zhang.Wei-2") == "gm_zhang_wei_2"
    assert rules.valid_sql_role(rules.default_sql_role("Zhang.Wei-2"))


# --- principals, without a database ---------------------------------------------------------------------


def _p(role: str, level: str, area: int, grids: set[int], communities: set[int]) -> Principal:
    return Principal(user_id=1, username="u", role=role, area_level=level, area_id=area,
                     grid_ids=frozenset(grids), community_ids=frozenset(communities))


LEADER = _p("grid_leader", "grid", 11, {11}, {1})
WORKER = _p("community_worker", "community", 1, {11, 12}, {1})
COMMANDER = _p("district_commander", "district", 1, {11, 12, 21}, {1, 2})
AUDITOR = _p("auditor", "district", 1, {11, 12, 21}, {1, 2})
VOLUNTEER = _p("volunteer", "grid", 11, {11}, {1})


@pytest.mark.parametrize(("principal", "grid", "community", "expected"), [
    (LEADER, 11, 1, True), (LEADER, 12, 1, False), (WORKER, 12, 1, True), (WORKER, 21, 2, False),
    (COMMANDER, 11, 1, False), (AUDITOR, 11, 1, False), (VOLUNTEER, 11, 1, False), (None, 21, 2, True),
])
def test_can_see_personal(principal, grid, community, expected):
    assert can_see_personal(principal, grid_id=grid, community_id=community) is expected


def test_area_checks_use_the_most_precise_place():
    assert in_area(LEADER, grid_id=11) and not in_area(LEADER, grid_id=12)
    assert in_area(WORKER, community_id=1) and not in_area(WORKER, community_id=2)
    assert not in_area(LEADER)  # nowhere given: not inside


def test_require_and_require_write():
    require(COMMANDER, rules.EDIT_AREA)
    with pytest.raises(AccessDenied) as err:
        require(VOLUNTEER, rules.EXPORT)
    assert err.value.code == "access_denied" and "volunteer" in err.value.message
    with pytest.raises(AccessDenied):
        require_write(AUDITOR)
    require_write(None)  # the operator at the shell


def test_scope_filter_binds_the_ids():
    sql, params = scope_filter_sql(LEADER, grid_column="b.grid_id")
    assert sql == "b.grid_id = ANY(:scope_grids)" and params == {"scope_grids": [11]}
    sql, params = scope_filter_sql(WORKER, community_column="c.id", prefix="w")
    assert sql == "c.id = ANY(:w_communities)" and params == {"w_communities": [1]}
    assert scope_filter_sql(None, grid_column="x") == ("true", {})


# --- every query parameterised -----------------------------------------------------------------------------

_SQL_WORDS = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|FROM|WHERE|CREATE|ALTER|DROP|GRANT|REVOKE|TRUNCATE|COPY|JOIN)\b")

# The names an f-string of SQL may interpolate, by convention across the package, and what they hold.
# None of them ever holds a value a user typed: values travel as bound parameters (:name).
SAFE_NAMES = {
    # table / column / role names taken from fixed lists in code (LAYER_MODELS, LOAD_ORDER, the
    # migrations' tuples, pg_tables), quoted where they come from the catalogue
    "table", "tables", "layer", "cols", "columns", "column", "name", "key", "fk", "parent", "child", "quoted",
    "role", "level", "event", "func", "refs", "fn", "privilege", "target", "args", "dropped", "group",
    # a language suffix checked against LANGUAGES ('zh' / 'en')
    "lang",
    # SQL fragments built in code from fixed pieces (their values are bound parameters)
    "where", "clause", "condition", "scope", "ctes", "select", "assignments", "using", "inherited", "verb",
    # an ORDER BY picked from fixed strings; trigger DDL bodies from a migration's own table
    "order", "body",
    # numbers from code
    "PRECISION", "SRID",
}


def _is_safe(expr: ast.expr) -> bool:
    if isinstance(expr, ast.Name):
        return expr.id in SAFE_NAMES or expr.id.lstrip("_").isupper()
    if isinstance(expr, ast.Attribute):  # spec.table, parent.table, rules.SQL_BASE_ROLE
        return expr.attr in SAFE_NAMES or expr.attr.lstrip("_").isupper()
    if isinstance(expr, ast.Call):
        func = expr.func
        # CONSTANT.format(...), ", ".join(names), name.lower(): formatting of the safe things above
        if isinstance(func, ast.Attribute) and func.attr in ("format", "join", "lower", "upper"):
            return (_is_safe(func.value) or isinstance(func.value, ast.Constant)) and all(
                _is_safe(a) or isinstance(a, ast.Constant) for a in expr.args
            ) and all(_is_safe(k.value) or isinstance(k.value, ast.Constant | ast.JoinedStr) for k in expr.keywords)
        return False
    if isinstance(expr, ast.IfExp):
        return _is_safe(expr.body) and (_is_safe(expr.orelse) or isinstance(expr.orelse, ast.Constant))
    if isinstance(expr, ast.BinOp):
        return all(_is_safe(x) or isinstance(x, ast.Constant) for x in (expr.left, expr.right))
    return False


def test_no_sql_is_built_from_user_values():
    """Every f-string that reads as SQL interpolates only names from fixed lists or code fragments.

    Values — anything a user typed or a file held — go in as bound parameters (``:name``). A new
    interpolation fails here until it is one of the documented kinds in SAFE_NAMES.
    """
    offenders = []
    checked = 0
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.JoinedStr):
                continue
            constant = "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
            if not _SQL_WORDS.search(constant):
                continue
            for value in node.values:
                if isinstance(value, ast.FormattedValue):
                    checked += 1
                    if not _is_safe(value.value):
                        offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {{{ast.unparse(value.value)}}}")
    assert checked > 20  # the scan found the SQL
    assert not offenders, "SQL f-strings interpolating something that may hold user input:\n" + "\n".join(offenders)


def test_the_scan_catches_an_interpolated_value():
    bad = ast.parse('text(f"SELECT * FROM staff WHERE name = \'{user_name}\'")').body[0].value.args[0]
    assert not all(_is_safe(v.value) for v in bad.values if isinstance(v, ast.FormattedValue))
