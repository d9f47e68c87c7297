"""Who may see and do what: roles, the area each is bound to, personal data and its masking.

Pure rules, no database: the services (gridmap.services.access) apply them to rows, and the
migration 0007 states the same rules once more in PostgreSQL (row-level security), so that a direct
SQL connection under a user's role obeys them too.

DOMAIN.md 'Key populations': key persons' names, phones, ID numbers and health facts are shown
only to those whose work needs them: the grid leader of their grid and the community workers of
their community. Everyone above sees counts and masked values (138****1234); a commander who must
call someone "reveals" the value explicitly, and the reveal is written to the audit trail.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# --- roles and areas -------------------------------------------------------------------------------

# Ordered from the command room down; names are (zh, en).
ROLES: dict[str, tuple[str, str]] = {
    "district_commander": ("区指挥部", "District commander"),
    "subdistrict_staff": ("街道工作人员", "Sub-district staff"),
    "community_worker": ("社区工作者", "Community worker"),
    "grid_leader": ("网格员", "Grid leader"),
    "volunteer": ("志愿者", "Volunteer"),
    "auditor": ("审计员", "Auditor"),
}

# district → subdistrict → community → grid (DOMAIN.md 'The geography').
AREA_LEVELS: tuple[str, ...] = ("district", "subdistrict", "community", "grid")

# The levels a user of each role may be bound to.
ROLE_LEVELS: dict[str, tuple[str, ...]] = {
    "district_commander": ("district",),
    "subdistrict_staff": ("subdistrict",),
    "community_worker": ("community",),
    "grid_leader": ("grid",),
    "volunteer": ("grid", "community"),
    "auditor": ("district", "subdistrict", "community", "grid"),
}

# The PostgreSQL group role of each app role (migration 0007 creates them). A user who may log in
# to SQL gets a login role of their own, member of their role's group.
SQL_GROUP_ROLES: dict[str, str] = {role: f"gridmap_{role}" for role in ROLES}
# Every group above is a member of this one: read access to the non-personal tables.
SQL_BASE_ROLE = "gridmap_sql"

# --- what each role may do ------------------------------------------------------------------------

# Actions a principal may take (checked by the services and the web pages).
VIEW_MAP = "view_map"  # the command map and counts, inside the bound area
VIEW_PERSONAL = "view_personal"  # names, phones, ID numbers, health facts (where personal scope holds)
EDIT_KEY_PERSON = "edit_key_person"
EDIT_AREA = "edit_area"  # controlled areas and risk classes
MANAGE_TASKS = "manage_tasks"  # give out tasks on the map
WORK_TASKS = "work_tasks"  # take and finish task items in the field
FILE_REPORT = "file_report"  # daily and zero reports
EXPORT = "export"
REVEAL = "reveal"  # see one masked value in clear, logged
VIEW_AUDIT = "view_audit"
MANAGE_USERS = "manage_users"

ACTIONS: tuple[str, ...] = (
    VIEW_MAP, VIEW_PERSONAL, EDIT_KEY_PERSON, EDIT_AREA, MANAGE_TASKS, WORK_TASKS, FILE_REPORT, EXPORT,
    REVEAL, VIEW_AUDIT, MANAGE_USERS,
)

PERMISSIONS: dict[str, frozenset[str]] = {
    "district_commander": frozenset(
        {VIEW_MAP, EDIT_AREA, MANAGE_TASKS, EXPORT, REVEAL, MANAGE_USERS}
    ),
    "subdistrict_staff": frozenset({VIEW_MAP, EDIT_AREA, MANAGE_TASKS, EXPORT, REVEAL}),
    "community_worker": frozenset(
        {VIEW_MAP, VIEW_PERSONAL, EDIT_KEY_PERSON, MANAGE_TASKS, WORK_TASKS, FILE_REPORT, EXPORT}
    ),
    "grid_leader": frozenset({VIEW_MAP, VIEW_PERSONAL, EDIT_KEY_PERSON, WORK_TASKS, FILE_REPORT, EXPORT}),
    "volunteer": frozenset({VIEW_MAP, WORK_TASKS}),
    # Read-only: sees what a commander sees (masked), and the audit trail. Never writes.
    "auditor": frozenset({VIEW_MAP, EXPORT, VIEW_AUDIT}),
}

# Roles that never write anything (the services refuse every write for them).
READ_ONLY_ROLES: frozenset[str] = frozenset({"auditor"})

# Which role sees personal data at which level of the area it is bound to.
PERSONAL_SCOPE: dict[str, str] = {"grid_leader": "grid", "community_worker": "community"}


def may(role: str, action: str) -> bool:
    """Whether ``role`` may take ``action`` at all (the area is checked separately)."""
    return action in PERMISSIONS.get(role, frozenset())


def level_allowed(role: str, level: str) -> bool:
    return level in ROLE_LEVELS.get(role, ())


def sees_personal_in(role: str, *, in_personal_area: bool) -> bool:
    """Personal data in clear: only the roles whose work needs it, only inside their own area."""
    return role in PERSONAL_SCOPE and in_personal_area


# --- personal columns ------------------------------------------------------------------------------

# The columns of each table that hold personal data, and how each is masked. 'hide' means the value
# is not shown at all (health facts: a masked diagnosis is still a diagnosis).
PERSONAL_COLUMNS: dict[str, dict[str, str]] = {
    "key_person": {
        "name": "name",
        "phone": "phone",
        "id_number": "id_number",
        "note": "hide",
        "observation_start": "hide",
        "categories": "hide",
    },
    "household": {"head_name": "name", "phone": "phone"},
    "staff": {"phone": "phone"},
}

# Tables that are not exported but whose rows the audit trail holds.
AUDIT_ONLY_PERSONAL: dict[str, dict[str, str]] = {
    "contact_log": {"outcome": "hide", "note": "hide"},
}

# Staff phones are duty contacts (DOMAIN.md 'Staff': visible duty contacts): seen by every role in
# the area except these.
STAFF_CONTACT_HIDDEN_ROLES: frozenset[str] = frozenset({"auditor"})

# --- masking -----------------------------------------------------------------------------------------

_DIGITS = re.compile(r"\D")


def mask_phone(value: str | None) -> str | None:
    """13812341234 → 138****1234; short numbers keep only their last two digits."""
    if value is None or value == "":
        return value
    s = str(value).strip()
    if len(s) >= 11:
        return s[:3] + "*" * (len(s) - 7) + s[-4:]
    if len(s) > 4:
        return "*" * (len(s) - 2) + s[-2:]
    return "*" * len(s)


def mask_id_number(value: str | None) -> str | None:
    """500103199001011234 → 5001**********1234 (the region and the check digits only)."""
    if value is None or value == "":
        return value
    s = str(value).strip()
    if len(s) > 8:
        return s[:4] + "*" * (len(s) - 8) + s[-4:]
    return "*" * len(s)


def mask_name(value: str | None) -> str | None:
    """张三丰 → 张**; a Latin name keeps its first letter (J***)."""
    if value is None or value == "":
        return value
    s = str(value).strip()
    return s[:1] + "*" * max(len(s) - 1, 1)


MASKS = {"phone": mask_phone, "id_number": mask_id_number, "name": mask_name, "hide": lambda _v: None}


def mask_value(kind: str, value):
    return MASKS[kind](value)


def mask_row(table: str, row: dict, columns: Iterable[str] | None = None) -> dict:
    """A copy of ``row`` with the personal columns of ``table`` masked (those of ``columns`` only)."""
    rules = PERSONAL_COLUMNS.get(table, {})
    wanted = set(rules) if columns is None else set(columns) & set(rules)
    return {k: (mask_value(rules[k], v) if k in wanted else v) for k, v in row.items()}


def mask_json_fields(table: str, values: dict | None) -> dict | None:
    """A stored row of ``table`` (an audit entry's before / after) with its personal fields masked;
    a hidden field shows as '***' so that the reader still sees it changed."""
    if values is None:
        return None
    rules = {**PERSONAL_COLUMNS.get(table, {}), **AUDIT_ONLY_PERSONAL.get(table, {})}
    return {
        k: v if k not in rules or v is None else ("***" if rules[k] == "hide" else mask_value(rules[k], v))
        for k, v in values.items()
    }


# --- validating what users type ----------------------------------------------------------------------

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{2,63}$")
# A PostgreSQL login role made for a user: lower case, safe to quote, never a reserved prefix.
SQL_ROLE_RE = re.compile(r"^[a-z][a-z0-9_]{2,62}$")
PHONE_RE = re.compile(r"^\+?[0-9][0-9\- ]{2,30}$")
# Mainland resident ID: 17 digits and a check digit or X (15-digit old cards too).
ID_NUMBER_RE = re.compile(r"^([0-9]{17}[0-9Xx]|[0-9]{15})$")


def valid_username(value: str) -> bool:
    return bool(USERNAME_RE.match(value or ""))


def valid_sql_role(value: str) -> bool:
    return bool(SQL_ROLE_RE.match(value or "")) and not value.startswith(("pg_", "gridmap_"))


def valid_phone(value: str) -> bool:
    return bool(PHONE_RE.match(value or ""))


def valid_id_number(value: str) -> bool:
    return bool(ID_NUMBER_RE.match(value or ""))


def default_sql_role(username: str) -> str:
    """The PostgreSQL login role made for ``username`` by ``gridmap user add --sql-role``."""
    return "gm_" + re.sub(r"[^a-z0-9_]", "_", username.lower())[:59]
