"""Access control in the services: who is asking (a Principal), what they may see, and key persons
read, revealed and edited through those rules.

A :class:`Principal` is a user with their role and the area they are bound to, with the ids of
every subdistrict, community and grid inside it resolved once when the principal is loaded, so the
checks below need no database. The same rules stand a second time in PostgreSQL (row-level
security, migration 0007) for users who connect to the database directly.

``principal=None`` in a service means the operator at the shell (``gridmap ...``), who holds the
database credentials anyway; every web request has a principal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.domain import access as rules
from gridmap.domain.errors import GridmapError, InvalidInput, NotFound


class AccessDenied(GridmapError):
    code = "access_denied"


class KeyPersonConflict(GridmapError):
    """Someone saved this key person since the version the user started from."""

    code = "stale_edit"

    def __init__(self, message: str, current: dict, change: dict | None):
        super().__init__(message)
        self.current = current
        self.change = change


@dataclass(frozen=True)
class Principal:
    user_id: int
    username: str
    role: str
    area_level: str
    area_id: int
    display_name: str = ""
    area_name: str = ""
    district_ids: frozenset[int] = field(default_factory=frozenset)
    subdistrict_ids: frozenset[int] = field(default_factory=frozenset)
    community_ids: frozenset[int] = field(default_factory=frozenset)
    grid_ids: frozenset[int] = field(default_factory=frozenset)

    @property
    def actor(self) -> str:
        """How the audit trail names this user."""
        return self.username

    @property
    def read_only(self) -> bool:
        return self.role in rules.READ_ONLY_ROLES

    def may(self, action: str) -> bool:
        return rules.may(self.role, action)

    def as_dict(self) -> dict:
        return {
            "user_id": self.user_id, "username": self.username, "display_name": self.display_name,
            "role": self.role, "area_level": self.area_level, "area_id": self.area_id, "area_name": self.area_name,
        }


# --- loading a principal -------------------------------------------------------------------------

# Every grid under an area of any level, with its community, subdistrict and district.
_AREA_GRIDS_SQL = """
SELECT g.id AS grid_id, c.id AS community_id, s.id AS subdistrict_id, s.district_id
FROM grid g JOIN community c ON c.id = g.community_id JOIN subdistrict s ON s.id = c.subdistrict_id
WHERE CASE CAST(:level AS text)
        WHEN 'grid' THEN g.id = :area
        WHEN 'community' THEN c.id = :area
        WHEN 'subdistrict' THEN s.id = :area
        WHEN 'district' THEN s.district_id = :area
        ELSE false END
"""

_AREA_NAME_SQL = """
SELECT CASE CAST(:level AS text)
         WHEN 'grid' THEN (SELECT name FROM grid WHERE id = :area)
         WHEN 'community' THEN (SELECT name FROM community WHERE id = :area)
         WHEN 'subdistrict' THEN (SELECT name FROM subdistrict WHERE id = :area)
         WHEN 'district' THEN (SELECT name FROM district WHERE id = :area)
       END
"""


def area_name(session: Session, level: str, area_id: int) -> str | None:
    return session.execute(text(_AREA_NAME_SQL), {"level": level, "area": area_id}).scalar()


def make_principal(
    session: Session, *, user_id: int, username: str, role: str, area_level: str, area_id: int, display_name: str = ""
) -> Principal:
    """A principal with the ids of everything inside its area resolved."""
    rows = session.execute(text(_AREA_GRIDS_SQL), {"level": area_level, "area": area_id}).all()
    return Principal(
        user_id=user_id, username=username, role=role, area_level=area_level, area_id=area_id,
        display_name=display_name, area_name=area_name(session, area_level, area_id) or "",
        district_ids=frozenset(r.district_id for r in rows) | ({area_id} if area_level == "district" else set()),
        subdistrict_ids=frozenset(r.subdistrict_id for r in rows)
        | ({area_id} if area_level == "subdistrict" else set()),
        community_ids=frozenset(r.community_id for r in rows) | ({area_id} if area_level == "community" else set()),
        grid_ids=frozenset(r.grid_id for r in rows),
    )


def load_principal(session: Session, user_id: int) -> Principal | None:
    """The principal of an active user, or None."""
    row = session.execute(
        text("SELECT id, username, display_name, role, area_level, area_id FROM app_user WHERE id = :id AND active"),
        {"id": user_id},
    ).one_or_none()
    if row is None:
        return None
    return make_principal(
        session, user_id=row.id, username=row.username, role=row.role, area_level=row.area_level,
        area_id=row.area_id, display_name=row.display_name,
    )


# --- checks ---------------------------------------------------------------------------------------


def require(principal: Principal | None, action: str) -> None:
    """Refuse when ``principal`` may not take ``action`` at all."""
    if principal is None:
        return
    if not principal.may(action):
        name_zh, name_en = rules.ROLES.get(principal.role, (principal.role, principal.role))
        raise AccessDenied(f"{name_zh}无权执行此操作 / a {name_en.lower()} may not do this ({action})")


def require_write(principal: Principal | None) -> None:
    if principal is not None and principal.read_only:
        raise AccessDenied("审计员只读，不能修改数据 / an auditor is read-only and changes nothing")


def in_area(principal: Principal | None, *, grid_id: int | None = None, community_id: int | None = None,
            subdistrict_id: int | None = None) -> bool:
    """Whether the place (the most precise id given) lies inside the principal's area."""
    if principal is None:
        return True
    if grid_id is not None:
        return grid_id in principal.grid_ids
    if community_id is not None:
        return community_id in principal.community_ids
    if subdistrict_id is not None:
        return subdistrict_id in principal.subdistrict_ids
    return False


def require_in_area(principal: Principal | None, **where: int | None) -> None:
    if not in_area(principal, **where):
        raise AccessDenied(
            f"不在你负责的区域（{principal.area_name}）内 / outside your area ({principal.area_name})"
        )


def can_see_personal(principal: Principal | None, *, grid_id: int | None = None,
                     community_id: int | None = None) -> bool:
    """Names, phones, ID numbers and health facts in clear: the grid leader of the grid, the
    community workers of the community; nobody above (they see counts and masked values)."""
    if principal is None:
        return True
    if principal.role not in rules.PERSONAL_SCOPE or not principal.may(rules.VIEW_PERSONAL):
        return False
    if principal.area_level != rules.PERSONAL_SCOPE[principal.role]:
        return False  # bound above their level (the SQL policies say the same)
    return rules.sees_personal_in(principal.role, in_personal_area=in_area(
        principal, grid_id=grid_id, community_id=community_id))


def scope_filter_sql(
    principal: Principal | None, *, grid_column: str | None = None, community_column: str | None = None,
    prefix: str = "scope",
) -> tuple[str, dict]:
    """A WHERE fragment (and its parameters) keeping rows inside the principal's area.

    ``grid_column`` / ``community_column`` name a column of the caller's query (code, never user
    input); the ids travel as a bound array parameter.
    """
    if principal is None:
        return "true", {}
    if grid_column:
        return f"{grid_column} = ANY(:{prefix}_grids)", {f"{prefix}_grids": sorted(principal.grid_ids)}
    if community_column:
        return f"{community_column} = ANY(:{prefix}_communities)", {
            f"{prefix}_communities": sorted(principal.community_ids)
        }
    raise ValueError("scope_filter_sql needs a grid or community column")


# --- key persons ----------------------------------------------------------------------------------

_KEY_PERSON_SQL = """
SELECT kp.id, kp.household_id, kp.name, kp.gender, kp.birth_year, kp.phone, kp.id_number, kp.note,
       kp.observation_start, kp.version, h.room, h.unit, b.id AS building_id, b.name AS building,
       g.id AS grid_id, g.community_id,
       (SELECT coalesce(string_agg(c.code, ',' ORDER BY c.sort_order, c.code), '')
        FROM key_person_category_link l JOIN key_person_category c ON c.id = l.category_id
        WHERE l.key_person_id = kp.id) AS categories
FROM key_person kp
JOIN household h ON h.id = kp.household_id
JOIN building b ON b.id = h.building_id
JOIN grid g ON g.id = b.grid_id
"""

# What a user may change on a key person, and how each value is checked.
EDITABLE_KEY_PERSON_FIELDS = ("name", "gender", "birth_year", "phone", "id_number", "note", "observation_start")


def _present(principal: Principal | None, row: Mapping[str, Any]) -> dict:
    d = dict(row)
    d["categories"] = [c for c in (d.get("categories") or "").split(",") if c]
    if isinstance(d.get("observation_start"), date):
        d["observation_start"] = d["observation_start"].isoformat()
    clear = can_see_personal(principal, grid_id=d["grid_id"], community_id=d["community_id"])
    d["masked"] = not clear
    return d if clear else rules.mask_row("key_person", d)


def _key_person_row(session: Session, person_id: int, *, lock: bool = False):
    sql = _KEY_PERSON_SQL + " WHERE kp.id = :id" + (" FOR UPDATE OF kp" if lock else "")
    row = session.execute(text(sql), {"id": person_id}).mappings().one_or_none()
    if row is None:
        raise NotFound(f"没有重点人员 {person_id} / no such key person")
    return row


def get_key_person(session: Session, principal: Principal | None, person_id: int) -> dict:
    """One key person: in clear where the principal may see them, else masked; outside the area, refused."""
    require(principal, rules.VIEW_MAP)
    row = _key_person_row(session, person_id)
    require_in_area(principal, grid_id=row["grid_id"])
    return _present(principal, row)


def list_key_persons(
    session: Session, principal: Principal | None, *, grid_id: int | None = None, community_id: int | None = None,
    limit: int = 10_000,
) -> list[dict]:
    """The key persons inside the principal's area (and the grid / community asked for)."""
    require(principal, rules.VIEW_MAP)
    where, params = scope_filter_sql(principal, grid_column="g.id")
    sql = _KEY_PERSON_SQL + f" WHERE {where}"
    if grid_id is not None:
        sql += " AND g.id = :grid_id"
        params["grid_id"] = grid_id
    if community_id is not None:
        sql += " AND g.community_id = :community_id"
        params["community_id"] = community_id
    sql += " ORDER BY kp.id LIMIT :limit"
    params["limit"] = limit
    return [_present(principal, r) for r in session.execute(text(sql), params).mappings().all()]


def reveal_key_person(session: Session, principal: Principal, person_id: int, field_name: str, reason: str) -> Any:
    """One masked value in clear, for a commander who must act on it; the reveal is audited."""
    from gridmap.services import audit

    require(principal, rules.REVEAL)
    if field_name not in rules.PERSONAL_COLUMNS["key_person"]:
        raise InvalidInput(f"不能查看该字段 / {field_name!r} is not a personal field", code="bad_field")
    if not (reason or "").strip():
        raise InvalidInput("查看个人信息必须填写理由 / a reveal needs a reason", code="reason_required")
    row = _key_person_row(session, person_id)
    require_in_area(principal, grid_id=row["grid_id"])
    audit.record(
        session, principal, "REVEAL", "key_person", person_id, detail={"field": field_name, "reason": reason.strip()}
    )
    value = row[field_name]
    return value.isoformat() if isinstance(value, date) else value


def _checked_changes(changes: Mapping[str, Any]) -> dict:
    unknown = sorted(set(changes) - set(EDITABLE_KEY_PERSON_FIELDS))
    if unknown:
        raise InvalidInput(f"不能修改的字段 / fields that cannot be changed: {', '.join(unknown)}", code="bad_field")
    out: dict[str, Any] = {}
    for key, value in changes.items():
        if isinstance(value, str):
            value = value.strip()
        if key == "name":
            if not value or len(value) > 64:
                raise InvalidInput("姓名不能为空且不超过64字 / a name is 1 to 64 characters", code="bad_name")
        elif key == "gender":
            if value not in (None, "", "M", "F"):
                raise InvalidInput("性别应为 M 或 F / gender is M or F", code="bad_gender")
            value = value or None
        elif key == "birth_year":
            try:
                value = None if value in (None, "") else int(value)
            except (TypeError, ValueError) as exc:
                raise InvalidInput("出生年份应为整数 / birth year must be a number", code="bad_birth_year") from exc
            if value is not None and not 1900 <= value <= 2100:
                raise InvalidInput("出生年份超出范围 / birth year out of range", code="bad_birth_year")
        elif key == "phone":
            if value and not rules.valid_phone(value):
                raise InvalidInput("电话号码格式不对 / not a phone number", code="bad_phone")
            value = value or None
        elif key == "id_number":
            if value and not rules.valid_id_number(value):
                raise InvalidInput("身份证号格式不对 / not an ID number (18 characters)", code="bad_id_number")
            value = value.upper() if value else None
        elif key == "note":
            if value and len(value) > 2000:
                raise InvalidInput("备注过长 / the note is too long", code="bad_note")
            value = value or None
        elif key == "observation_start":
            if value in (None, ""):
                value = None
            elif not isinstance(value, date):
                try:
                    value = date.fromisoformat(str(value))
                except ValueError as exc:
                    raise InvalidInput("日期格式应为 YYYY-MM-DD / a date is YYYY-MM-DD", code="bad_date") from exc
        out[key] = value
    return out


def _describe_change(change: dict | None) -> str:
    if not change:
        return ""
    fields = sorted(k for k in (change.get("after") or {}) if k not in ("version",))
    return f"{change['actor']} @ {change['at']:%Y-%m-%d %H:%M}: {', '.join(fields) or '-'}"


def update_key_person(
    session: Session, principal: Principal | None, person_id: int, base_version: int, changes: Mapping[str, Any]
) -> dict:
    """Save ``changes`` to a key person edited from ``base_version``.

    Refused (:class:`KeyPersonConflict`, nothing written) when someone saved the person since: the
    message names who changed what and when, so the user can redo their edit on the newer version.
    The version test is in the UPDATE's WHERE clause, so it holds between concurrent transactions
    too (the second waits for the first's row lock, then finds the version moved on).
    """
    from gridmap.services import audit

    require_write(principal)
    require(principal, rules.EDIT_KEY_PERSON)
    row = _key_person_row(session, person_id)
    require_in_area(principal, grid_id=row["grid_id"])
    if not can_see_personal(principal, grid_id=row["grid_id"], community_id=row["community_id"]):
        raise AccessDenied("只有本网格网格员和本社区工作者可以修改 / only the grid's leader or the community's workers may edit")
    values = _checked_changes(changes)
    if principal is not None:
        audit.set_actor(session, principal)
    if not values:
        return _present(principal, row)
    assignments = ", ".join(f"{k} = :{k}" for k in values)  # keys checked against EDITABLE_KEY_PERSON_FIELDS
    updated = session.execute(
        text(f"UPDATE key_person SET {assignments}, version = version + 1 WHERE id = :id AND version = :base "
             "RETURNING version"),
        {**values, "id": person_id, "base": base_version},
    ).scalar()
    if updated is None:
        current = _present(principal, _key_person_row(session, person_id))
        change = audit.latest_change(session, "key_person", person_id)
        raise KeyPersonConflict(
            f"该人员信息已被修改（当前第 {current['version']} 版，你编辑的是第 {base_version} 版）；你的修改未保存，"
            f"请在最新版本上重做。/ This person was changed since you opened version {base_version} "
            f"(now version {current['version']}); your change was not saved. {_describe_change(change)}",
            current,
            change,
        )
    return _present(principal, _key_person_row(session, person_id))


# --- tables leaving the app (exports) -------------------------------------------------------------


def _locations(session: Session, layer: str, frame) -> tuple[list, list] | None:
    """(grid ids, community ids) of each row of ``frame`` (None where a row has no such place), or None
    when rows of ``layer`` have no place below the district."""
    cols = set(frame.columns)

    def lookup(sql: str, keys) -> dict:
        ids = sorted({int(k) for k in keys if k is not None and k == k})
        if not ids:
            return {}
        return {r[0]: (r[1], r[2]) for r in session.execute(text(sql), {"ids": ids}).all()}

    if layer == "key_person":
        found = lookup("SELECT h.id, b.grid_id, g.community_id FROM household h JOIN building b ON b.id = h.building_id "
                       "JOIN grid g ON g.id = b.grid_id WHERE h.id = ANY(:ids)", frame["household_id"])
        keys = frame["household_id"]
    elif "building_id" in cols and "grid_id" not in cols:
        found = lookup("SELECT b.id, b.grid_id, g.community_id FROM building b JOIN grid g ON g.id = b.grid_id "
                       "WHERE b.id = ANY(:ids)", frame["building_id"])
        keys = frame["building_id"]
    elif "grid_id" in cols:
        found = lookup("SELECT g.id, g.id, g.community_id FROM grid g WHERE g.id = ANY(:ids)", frame["grid_id"])
        keys = frame["grid_id"]
    elif layer == "grid":
        found = lookup("SELECT g.id, g.id, g.community_id FROM grid g WHERE g.id = ANY(:ids)", frame["id"])
        keys = frame["id"]
    elif layer == "community":
        return [None] * len(frame), list(frame["id"])
    elif "community_id" in cols:
        return [None] * len(frame), list(frame["community_id"])
    elif layer == "gate":
        found = lookup("SELECT p.id, NULL, p.community_id FROM compound p WHERE p.id = ANY(:ids)", frame["compound_id"])
        keys = frame["compound_id"]
    else:
        return None
    places = [found.get(int(k)) if k is not None and k == k else None for k in keys]
    return [p[0] if p else None for p in places], [p[1] if p else None for p in places]


def restrict_frame(session: Session, principal: Principal | None, layer: str, frame):
    """The rows of ``frame`` (a table of ``layer``) inside the principal's area, with personal
    columns masked where the principal may not see them in clear."""
    if principal is None or len(frame) == 0:
        return frame
    if layer == "district":
        return frame[frame["id"].isin(principal.district_ids)].copy()
    if layer == "subdistrict":
        return frame[frame["id"].isin(principal.subdistrict_ids)].copy()
    places = _locations(session, layer, frame)
    if places is None:  # reference tables, controlled areas: not tied to a place below the district
        return frame
    grids, communities = places
    personal_table = layer in ("key_person", "household")

    def inside(grid_id, community_id) -> bool:
        if grid_id is not None:
            return grid_id in principal.grid_ids
        if community_id is not None:
            return community_id in principal.community_ids
        return not personal_table  # a personal row we cannot place is not shown

    keep = [inside(g, c) for g, c in zip(grids, communities, strict=True)]
    frame = frame[keep].copy()
    grids = [g for g, k in zip(grids, keep, strict=True) if k]
    communities = [c for c, k in zip(communities, keep, strict=True) if k]
    personal = rules.PERSONAL_COLUMNS.get(layer)
    if not personal:
        return frame
    if layer == "staff":
        clear = [principal.role not in rules.STAFF_CONTACT_HIDDEN_ROLES] * len(frame)
    else:
        clear = [can_see_personal(principal, grid_id=g, community_id=c) for g, c in zip(grids, communities, strict=True)]
    import pandas

    for column, kind in personal.items():
        if column in frame.columns:
            # Missing values come out of pandas as NaN: a mask of 'nan' would be '***'.
            frame[column] = [v if ok else rules.mask_value(kind, None if pandas.isna(v) else v)
                             for v, ok in zip(list(frame[column]), clear, strict=True)]
    return frame
