"""A grid leader's sheet of one grid (issue 5, the tablet page): its key persons with the contact
each is due (004 §8: vulnerable people at least twice a week), logging a contact, the leader's
patch (包片联户) and the open task items of this grid.

Personal data follows gridmap.services.access: names and phones in clear only for the grid leader
of the grid and the community workers of its community; everyone else gets the masked values and
no categories (a category is a health fact). Logging a contact is field work (``work_tasks``)
inside the user's own area.

Users are not linked to staff rows yet: the staff member a user works as is the one
:func:`gridmap.services.tasks.acting_staff` matches; a user who works as nobody of this grid (a
commander) sees the grid leader's patch and items, read-only (:func:`field_staff`). A contact is
recorded under the matched staff member, else under none (the audit trail names the user anyway).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

import gridmap.db.models_coverage  # noqa: F401  (contact_log in the metadata)
from gridmap.config import Settings
from gridmap.domain import access as access_rules
from gridmap.domain import coverage as rules
from gridmap.domain.errors import InvalidInput, NotFound
from gridmap.services import tasks as task_service
from gridmap.services.access import (
    AccessDenied,
    Principal,
    can_see_personal,
    require,
    require_in_area,
    require_write,
)
from gridmap.services.coverage import local_tz
from gridmap.services.tasks import ItemView, get_item

# What a contact found; the form offers these, a service caller may write its own words.
CONTACT_OUTCOMES: tuple[str, ...] = ("normal", "needs_help", "unwell")
MAX_OUTCOME = 200
MAX_NOTE = 2000

# Contact status of a key person.
ON_TIME, DUE, NOT_REQUIRED = "on_time", "due", "not_required"


@dataclass(frozen=True)
class ContactStatus:
    key_person_id: int
    name: str | None
    phone: str | None
    masked: bool
    building_id: int
    building: str
    room: str | None
    categories: list[str]  # empty when masked
    vulnerable: bool
    status: str  # on_time / due / not_required
    contacts_in_window: int
    required: int
    contacts_missing: int
    last_contact: datetime | None

    def as_dict(self) -> dict:
        d = asdict(self)
        d["last_contact"] = self.last_contact.isoformat() if self.last_contact else None
        return d


@dataclass(frozen=True)
class ContactLogged:
    id: int
    key_person_id: int
    grid_id: int
    staff_id: int | None
    contacted_at: datetime
    method: str
    status: ContactStatus


def _grid_of_person(session: Session, key_person_id: int) -> tuple[int, int]:
    row = session.execute(
        text("SELECT b.grid_id, g.community_id FROM key_person kp JOIN household h ON h.id = kp.household_id"
             " JOIN building b ON b.id = h.building_id JOIN grid g ON g.id = b.grid_id WHERE kp.id = :id"),
        {"id": key_person_id},
    ).one_or_none()
    if row is None:
        raise NotFound(f"没有重点人员 {key_person_id} / no such key person", code="unknown_key_person")
    return row.grid_id, row.community_id


def require_grid(session: Session, principal: Principal | None, grid_id: int) -> dict:
    """The grid (id, code, name, community), if it exists and lies in the principal's area."""
    row = session.execute(
        text("SELECT g.id, g.code, g.name, g.community_id, c.name AS community, g.households, g.residents"
             " FROM grid g JOIN community c ON c.id = g.community_id WHERE g.id = :id"),
        {"id": grid_id},
    ).mappings().one_or_none()
    if row is None:
        raise NotFound(f"没有网格 {grid_id} / no grid {grid_id}", code="unknown_grid")
    require(principal, access_rules.VIEW_MAP)
    require_in_area(principal, grid_id=grid_id)
    return dict(row)


def grid_leader_of(session: Session, grid_id: int) -> dict | None:
    """The grid's leader (lowest id among the active ones assigned to it), or None."""
    row = session.execute(
        text("SELECT s.id, s.name, s.role, s.phone, s.community_id FROM staff s"
             " JOIN staff_assignment sa ON sa.staff_id = s.id"
             " WHERE sa.grid_id = :g AND s.role = 'grid_leader' AND s.active ORDER BY s.id LIMIT 1"),
        {"g": grid_id},
    ).mappings().one_or_none()
    return dict(row) if row else None


def _works_as(session: Session, principal: Principal | None, grid_id: int) -> dict | None:
    """The staff member the user works as in the field, when that is someone of this grid's community."""
    if principal is None or principal.read_only or not principal.may(access_rules.WORK_TASKS):
        return None
    if grid_id not in principal.grid_ids:
        return None
    staff = task_service.acting_staff(session, principal)
    if staff is None:
        return None
    community_id = session.execute(text("SELECT community_id FROM grid WHERE id = :g"), {"g": grid_id}).scalar()
    if staff.community_id != community_id:
        return None
    return {"id": staff.id, "name": staff.name, "role": staff.role, "phone": staff.phone,
            "community_id": staff.community_id}


def field_staff(session: Session, principal: Principal | None, grid_id: int) -> tuple[dict | None, bool]:
    """(the staff member whose patch and items the grid page shows, whether the user works as them).

    The user's own staff record when they work in this grid; otherwise the grid's leader, to look at.
    """
    own = _works_as(session, principal, grid_id)
    if own is not None:
        return own, True
    return grid_leader_of(session, grid_id), False


def may_log_contact(principal: Principal | None, grid_id: int) -> bool:
    if principal is None:
        return True
    return (not principal.read_only and principal.may(access_rules.WORK_TASKS) and grid_id in principal.grid_ids)


# --- contact status -------------------------------------------------------------------------------

# {where} is one of the two fixed conditions below (code, never user input).
_STATUS_SQL = """
    SELECT kp.id, kp.name, kp.phone, b.id AS building_id, b.name AS building, h.room, b.grid_id, g.community_id,
           coalesce(array_agg(c.code ORDER BY c.sort_order, c.code) FILTER (WHERE c.id IS NOT NULL), '{}') AS codes,
           coalesce(bool_or(c.vulnerable), false) AS vulnerable,
           (SELECT count(*) FROM contact_log cl
            WHERE cl.key_person_id = kp.id AND cl.contacted_at > :since AND cl.contacted_at <= :now) AS n,
           (SELECT max(cl.contacted_at) FROM contact_log cl
            WHERE cl.key_person_id = kp.id AND cl.contacted_at <= :now) AS last
    FROM key_person kp
    JOIN household h ON h.id = kp.household_id
    JOIN building b ON b.id = h.building_id
    JOIN grid g ON g.id = b.grid_id
    LEFT JOIN key_person_category_link l ON l.key_person_id = kp.id
    LEFT JOIN key_person_category c ON c.id = l.category_id
    WHERE {where}
    GROUP BY kp.id, b.id, h.room, g.community_id
"""


def _status_rows(session: Session, settings: Settings, now: datetime, where: str, params: dict) -> list:
    since, _ = rules.contact_window(now, settings.vulnerable_contact_window_days)
    sql = text(_STATUS_SQL.replace("{where}", where))
    return session.execute(sql, {**params, "since": since, "now": now}).all()


def _status_of(principal: Principal | None, settings: Settings, row) -> ContactStatus:
    required = settings.vulnerable_contacts_per_week
    clear = can_see_personal(principal, grid_id=row.grid_id, community_id=row.community_id)
    n = int(row.n)
    status = NOT_REQUIRED if not row.vulnerable else ON_TIME if rules.contact_on_time(n, required) else DUE
    return ContactStatus(
        key_person_id=row.id,
        name=row.name if clear else access_rules.mask_name(row.name),
        phone=row.phone if clear else access_rules.mask_phone(row.phone),
        masked=not clear, building_id=row.building_id, building=row.building, room=row.room,
        categories=list(row.codes) if clear else [], vulnerable=bool(row.vulnerable), status=status,
        contacts_in_window=n, required=required if row.vulnerable else 0,
        contacts_missing=rules.contacts_missing(n, required) if row.vulnerable else 0,
        last_contact=row.last.astimezone(local_tz(settings)) if row.last else None,
    )


def _due_first(s: ContactStatus):
    order = {DUE: 0, ON_TIME: 1, NOT_REQUIRED: 2}[s.status]
    # Longest without contact first, as in the coverage service's overdue list.
    return (order, -s.contacts_missing, s.last_contact is not None,
            s.last_contact.timestamp() if s.last_contact else 0.0, s.key_person_id)


def grid_contact_status(
    session: Session, principal: Principal | None, settings: Settings, grid_id: int, now: datetime
) -> list[ContactStatus]:
    """Every key person of the grid with the contact they are due: due first, longest waiting first."""
    require_grid(session, principal, grid_id)
    rows = _status_rows(session, settings, now, "b.grid_id = :g", {"g": grid_id})
    return sorted((_status_of(principal, settings, r) for r in rows), key=_due_first)


def contact_status(
    session: Session, principal: Principal | None, settings: Settings, key_person_id: int, now: datetime
) -> ContactStatus:
    grid_id, _ = _grid_of_person(session, key_person_id)
    require(principal, access_rules.VIEW_MAP)
    require_in_area(principal, grid_id=grid_id)
    (row,) = _status_rows(session, settings, now, "kp.id = :id", {"id": key_person_id})
    return _status_of(principal, settings, row)


# --- logging a contact ----------------------------------------------------------------------------


def log_contact(
    session: Session, principal: Principal | None, key_person_id: int, method: str, outcome: str, note: str,
    now: datetime, settings: Settings | None = None,
) -> ContactLogged:
    """Record a contact (visit, phone or WeChat) with a key person of the user's own area, now.

    Refused (AccessDenied) for roles that do no field work, for read-only users and outside the
    user's area; bad input raises InvalidInput with a code and writes nothing.
    """
    from gridmap.config import get_settings

    settings = settings or get_settings()
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    require_write(principal)
    require(principal, access_rules.WORK_TASKS)
    grid_id, _ = _grid_of_person(session, key_person_id)
    if not may_log_contact(principal, grid_id):
        raise AccessDenied(
            f"只能记录本人负责区域内的联系（{principal.area_name}）/ contacts are logged only inside your own area "
            f"({principal.area_name})", code="outside_area",
        )
    method = (method or "").strip()
    if method not in rules.CONTACT_METHODS:
        raise InvalidInput(
            f"请选择联系方式（{'、'.join(rules.CONTACT_METHODS)}）/ choose how you made contact: "
            f"{', '.join(rules.CONTACT_METHODS)}", code="bad_method",
        )
    outcome = (outcome or "").strip()
    if not outcome:
        raise InvalidInput("请选择联系结果 / choose the outcome of the contact", code="outcome_required")
    if len(outcome) > MAX_OUTCOME:
        raise InvalidInput(f"联系结果过长（最多 {MAX_OUTCOME} 字）/ outcome too long (max {MAX_OUTCOME})",
                           code="outcome_too_long")
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise InvalidInput(f"备注过长（最多 {MAX_NOTE} 字）/ note too long (max {MAX_NOTE})", code="note_too_long")
    staff = _works_as(session, principal, grid_id)
    staff_id = staff["id"] if staff else None
    new_id = session.execute(
        text("INSERT INTO contact_log (key_person_id, staff_id, contacted_at, method, outcome, note)"
             " VALUES (:kp, :s, :at, :m, :o, :n) RETURNING id"),
        {"kp": key_person_id, "s": staff_id, "at": now, "m": method, "o": outcome, "n": note or None},
    ).scalar_one()
    return ContactLogged(
        id=new_id, key_person_id=key_person_id, grid_id=grid_id, staff_id=staff_id, contacted_at=now, method=method,
        status=contact_status(session, principal, settings, key_person_id, now),
    )


# --- the leader's patch and open items --------------------------------------------------------------

_ASSIGNMENTS_SQL = text(
    """
    SELECT sa.id,
           CASE WHEN sa.grid_id IS NOT NULL THEN 'grid' WHEN sa.building_id IS NOT NULL THEN 'building'
                ELSE 'household' END AS level,
           coalesce(g.name, b.name, hb.name) AS name,
           h.room,
           coalesce(g.households, b.households, 1) AS households,
           coalesce(g.id, b.grid_id, hb.grid_id) AS grid_id,
           coalesce(b.id, hb.id) AS building_id
    FROM staff_assignment sa
    LEFT JOIN grid g ON g.id = sa.grid_id
    LEFT JOIN building b ON b.id = sa.building_id
    LEFT JOIN household h ON h.id = sa.household_id
    LEFT JOIN building hb ON hb.id = h.building_id
    WHERE sa.staff_id = :s
    ORDER BY 2 DESC, 3, sa.id
    """
)


def staff_assignments(session: Session, staff_id: int) -> list[dict]:
    """What a staff member holds (包片联户): grids, buildings and households, with their households."""
    return [dict(r._mapping) for r in session.execute(_ASSIGNMENTS_SQL, {"s": staff_id})]


_OPEN_ITEMS_SQL = text(
    """
    SELECT i.id FROM task_item i
    JOIN task t ON t.id = i.task_id AND t.status = 'open'
    JOIN building b ON b.id = i.building_id
    WHERE b.grid_id = :g AND i.state IN ('open', 'locked', 'invalidated')
      AND (i.assigned_staff_id = :s OR i.locked_by = :s)
    ORDER BY i.due_at, i.id
    LIMIT :limit
    """
)


def open_items(session: Session, staff_id: int, grid_id: int, now: datetime, limit: int = 50) -> list[ItemView]:
    """The staff member's unfinished task items in the grid (given to them or taken by them), due first."""
    ids = session.execute(_OPEN_ITEMS_SQL, {"g": grid_id, "s": staff_id, "limit": limit}).scalars().all()
    return [get_item(session, item_id, now) for item_id in ids]


def category_names(session: Session, lang: str) -> dict[str, str]:
    """Key-person category names in ``lang`` (the table, not the seed list, is the truth)."""
    column = "name_en" if lang == "en" else "name_zh"
    return dict(session.execute(text(f"SELECT code, {column} FROM key_person_category")).all())
