"""Tasks given out on the map and closed in the field (DOMAIN.md 'Tasking'; issue 6).

A commander selects buildings on the map (a drawn area, a controlled area, a grid, a list of
buildings or of key persons); the task is split into items, one per building or household as its
type says, and each item is proposed to the staff member who already holds that patch (包片联户),
else to the nearest active staff member of the community. Field staff take an item (a lock that
runs out after ``settings.task_lock_minutes``, HOT Tasking Manager's pattern), finish it as done or
failed, and a community worker validates it. Every action is a row in ``task_history``.

Concurrency: every item action first locks the item's row (``SELECT ... FOR UPDATE``) and then
applies the pure rule from gridmap.domain.tasks, so of two staff taking the same item at the same
moment the second waits for the first's transaction and then sees the item taken.

Access (issue 6): every write takes a keyword-only ``principal`` (services.access). ``None`` is the
operator at the shell and the tests of the rules: no check. With a principal, giving out, closing,
reassigning and generating contact rounds need ``manage_tasks`` over every grid they touch; field
actions need ``work_tasks`` on an item inside the principal's area, acting as a staff member of
it; validating needs a validator role (``settings.task_validator_roles``). Reads given a principal
return only what lies inside their area.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime

import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.config import Settings
from gridmap.domain import access as access_rules
from gridmap.domain import tasks as rules
from gridmap.domain.errors import InvalidInput, NotFound
from gridmap.domain.reports import zone
from gridmap.domain.tasks import (
    BadTransition,
    ItemLocked,
    NotLockHolder,
    NotValidator,
    Selection,
    TaskClosed,
    TaskConflict,
    TaskError,
)
from gridmap.services.access import AccessDenied, Principal, require, require_in_area, require_write
from gridmap.services.areas import get_version
from gridmap.services.impact import check_inside_district, compute_impact, to_ewkb

CONTACT_ROUND = "contact_round"
# compute_impact wants an area class; for picking buildings only its "share inside" rule matters.
_SELECTION_AREA_CLASS = "precaution"


# --- plain results ------------------------------------------------------------------------------
@dataclass(frozen=True)
class TaskType:
    id: int
    code: str
    name_zh: str
    name_en: str
    item_level: str
    default_due_hours: int
    assignee_order: tuple[str, ...]
    recurring: dict | None


@dataclass(frozen=True)
class TaskSummary:
    id: int
    type_code: str
    type_name_zh: str
    type_name_en: str
    item_level: str
    title: str
    created_by: str
    created_at: datetime
    due_at: datetime
    status: str
    version: int
    selection: dict
    counts: dict[str, int]
    items: int
    overdue: int

    def as_dict(self) -> dict:
        d = asdict(self)
        for k in ("created_at", "due_at"):
            d[k] = d[k].isoformat()
        return d


@dataclass(frozen=True)
class ItemView:
    """One item as the map and the field app show it (effective state: a run-out lock is open)."""

    id: int
    task_id: int
    task_title: str
    type_code: str
    state: str
    effective_state: str
    building_id: int
    building_name: str
    household_id: int | None
    household_room: str | None
    key_person_id: int | None
    community_id: int
    assigned_staff_id: int | None
    assigned_name: str | None
    assigned_phone: str | None
    assignment_source: str | None
    locked_by: int | None
    locked_by_name: str | None
    locked_until: datetime | None
    due_at: datetime
    overdue: bool
    note: str | None
    done_by: int | None
    done_at: datetime | None
    version: int
    lon: float
    lat: float
    compound_name: str | None = None  # building names repeat from compound to compound (1栋, 2栋 ...)

    def as_dict(self) -> dict:
        d = asdict(self)
        for k in ("locked_until", "due_at", "done_at"):
            d[k] = d[k].isoformat() if d[k] else None
        return d


# --- reading ------------------------------------------------------------------------------------
def _type_from_row(row) -> TaskType:
    return TaskType(
        id=row.id, code=row.code, name_zh=row.name_zh, name_en=row.name_en, item_level=row.item_level,
        default_due_hours=row.default_due_hours,
        assignee_order=rules.check_assignee_order(row.assignee_order), recurring=row.recurring,
    )


def list_task_types(session: Session) -> list[TaskType]:
    rows = session.execute(text("SELECT * FROM task_type WHERE active ORDER BY sort_order, id")).all()
    return [_type_from_row(r) for r in rows]


def get_task_type(session: Session, code: str) -> TaskType:
    row = session.execute(text("SELECT * FROM task_type WHERE code = :c AND active"), {"c": code}).one_or_none()
    if row is None:
        known = ", ".join(t.code for t in list_task_types(session))
        raise NotFound(f"未知任务类型 / unknown task type {code!r}; one of {known}", code="unknown_task_type")
    return _type_from_row(row)


def grid_id_by_code(session: Session, code: str) -> int:
    grid_id = session.execute(text("SELECT id FROM grid WHERE code = :c"), {"c": code}).scalar()
    if grid_id is None:
        raise NotFound(f"没有网格 {code} / no grid with code {code!r}", code="unknown_grid")
    return grid_id


_ITEM_SELECT = """
    SELECT i.id, i.task_id, t.title AS task_title, tt.code AS type_code, i.state,
           CASE WHEN i.state = 'locked' AND i.locked_until <= :now THEN 'open' ELSE i.state END AS effective_state,
           i.building_id, b.name AS building_name, i.household_id, h.room AS household_room, i.key_person_id,
           g.community_id, i.assigned_staff_id, a.name AS assigned_name, a.phone AS assigned_phone,
           i.assignment_source, i.locked_by, lk.name AS locked_by_name, i.locked_until, i.due_at,
           (i.due_at < :now AND i.state IN ('open', 'locked', 'invalidated')) AS overdue,
           i.note, i.done_by, i.done_at, i.version, ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat,
           cp.name AS compound_name
    FROM task_item i
    JOIN task t ON t.id = i.task_id
    JOIN task_type tt ON tt.id = t.task_type_id
    JOIN building b ON b.id = i.building_id
    JOIN grid g ON g.id = b.grid_id
    LEFT JOIN compound cp ON cp.id = b.compound_id
    LEFT JOIN household h ON h.id = i.household_id
    LEFT JOIN staff a ON a.id = i.assigned_staff_id
    LEFT JOIN staff lk ON lk.id = i.locked_by
"""


def _grid_scope(principal: Principal | None, column: str = "b.grid_id") -> tuple[str, dict]:
    """A WHERE fragment keeping rows whose grid lies inside the principal's area (all for None)."""
    if principal is None:
        return "true", {}
    return f"{column} = ANY(:scope_grids)", {"scope_grids": sorted(principal.grid_ids)}


def get_item(session: Session, item_id: int, now: datetime, *, principal: Principal | None = None) -> ItemView:
    row = session.execute(text(_ITEM_SELECT + " WHERE i.id = :id"), {"id": item_id, "now": now}).one_or_none()
    if row is None:
        raise NotFound(f"没有任务条目 {item_id} / no task item {item_id}", code="unknown_item")
    if principal is not None:
        require_in_area(principal, grid_id=_item_grid(session, item_id))
    return ItemView(**row._mapping)


def task_items(
    session: Session, task_id: int, now: datetime, *, principal: Principal | None = None
) -> list[ItemView]:
    """Every item of a task, with the point to draw it at and the names to show (with a principal:
    the items inside their area)."""
    _task_row(session, task_id)
    scope, params = _grid_scope(principal)
    rows = session.execute(text(_ITEM_SELECT + f" WHERE i.task_id = :t AND {scope} ORDER BY i.due_at, i.id"),
                           {"t": task_id, "now": now, **params}).all()
    return [ItemView(**r._mapping) for r in rows]


def overdue_items(session: Session, now: datetime, *, principal: Principal | None = None) -> list[ItemView]:
    """Items of open tasks past their due time and not yet done (open, taken or sent back)."""
    scope, params = _grid_scope(principal)
    rows = session.execute(
        text(_ITEM_SELECT + " WHERE t.status = 'open' AND i.due_at < :now"
             f" AND i.state IN ('open', 'locked', 'invalidated') AND {scope} ORDER BY i.due_at, i.id"),
        {"now": now, **params},
    ).all()
    return [ItemView(**r._mapping) for r in rows]


_COUNTS_SQL = """
    SELECT i.task_id,
           CASE WHEN i.state = 'locked' AND i.locked_until <= :now THEN 'open' ELSE i.state END AS state,
           count(*) AS n,
           count(*) FILTER (WHERE i.due_at < :now AND i.state IN ('open', 'locked', 'invalidated')) AS overdue
    FROM task_item i WHERE i.task_id = ANY(:ids) GROUP BY 1, 2
"""


def _summaries(session: Session, rows: Sequence, now: datetime) -> list[TaskSummary]:
    ids = [r.id for r in rows]
    counts: dict[int, dict[str, int]] = {i: rules.count_by_state(()) for i in ids}
    overdue: dict[int, int] = defaultdict(int)
    if ids:
        for task_id, state, n, late in session.execute(text(_COUNTS_SQL), {"ids": ids, "now": now}):
            counts[task_id][state] += n
            overdue[task_id] += late
    return [
        TaskSummary(
            id=r.id, type_code=r.type_code, type_name_zh=r.type_name_zh, type_name_en=r.type_name_en,
            item_level=r.item_level, title=r.title, created_by=r.created_by, created_at=r.created_at,
            due_at=r.due_at, status=r.status, version=r.version, selection=r.selection, counts=counts[r.id],
            items=sum(counts[r.id].values()), overdue=overdue[r.id],
        )
        for r in rows
    ]


_TASK_SELECT = """
    SELECT t.id, tt.code AS type_code, tt.name_zh AS type_name_zh, tt.name_en AS type_name_en, tt.item_level,
           t.title, t.created_by, t.created_at, t.due_at, t.status, t.version, t.selection
    FROM task t JOIN task_type tt ON tt.id = t.task_type_id
"""


# A task is inside a principal's area when one of its items is (a district-wide door-knock shows in
# every community it reaches).
_TASK_IN_SCOPE = ("EXISTS (SELECT 1 FROM task_item si JOIN building sb ON sb.id = si.building_id"
                  " WHERE si.task_id = t.id AND sb.grid_id = ANY(:scope_grids))")


def _task_row(session: Session, task_id: int, principal: Principal | None = None):
    row = session.execute(text(_TASK_SELECT + " WHERE t.id = :id"), {"id": task_id}).one_or_none()
    if row is None:
        raise NotFound(f"没有任务 {task_id} / no task {task_id}", code="unknown_task")
    if principal is not None and not session.execute(
        text(f"SELECT {_TASK_IN_SCOPE} FROM task t WHERE t.id = :id"),
        {"id": task_id, "scope_grids": sorted(principal.grid_ids)},
    ).scalar():
        raise AccessDenied(f"任务 {task_id} 不在你负责的区域（{principal.area_name}）内 / task {task_id} is "
                           f"outside your area ({principal.area_name})")
    return row


def get_task(session: Session, task_id: int, now: datetime, *, principal: Principal | None = None) -> TaskSummary:
    return _summaries(session, [_task_row(session, task_id, principal)], now)[0]


def list_tasks(
    session: Session, now: datetime, *, include_closed: bool = False, principal: Principal | None = None
) -> list[TaskSummary]:
    """Tasks by due time; with a principal, those reaching into their area (progress of the whole task)."""
    scope, params = "true", {}
    if principal is not None:
        scope, params = _TASK_IN_SCOPE, {"scope_grids": sorted(principal.grid_ids)}
    rows = session.execute(
        text(_TASK_SELECT + f" WHERE (:all OR t.status = 'open') AND {scope} ORDER BY t.due_at, t.id"),
        {"all": include_closed, **params},
    ).all()
    return _summaries(session, rows, now)


def task_progress(session: Session, task_id: int, now: datetime | None = None) -> dict[str, int]:
    """Items by state (every state present, zeros included). With ``now``, run-out locks count as open."""
    _task_row(session, task_id)
    rows = session.execute(
        text(
            "SELECT CASE WHEN state = 'locked' AND CAST(:now AS timestamptz) IS NOT NULL"
            " AND locked_until <= CAST(:now AS timestamptz) THEN 'open' ELSE state END, count(*)"
            " FROM task_item WHERE task_id = :t GROUP BY 1"
        ),
        {"t": task_id, "now": now},
    ).all()
    counts = rules.count_by_state(())
    for state, n in rows:
        counts[state] += n
    return counts


def task_history(session: Session, task_id: int, *, principal: Principal | None = None) -> list[dict]:
    _task_row(session, task_id, principal)
    rows = session.execute(
        text("SELECT id, task_item_id, action, actor, actor_staff_id, at, details FROM task_history"
             " WHERE task_id = :t ORDER BY at, id"),
        {"t": task_id},
    ).all()
    return [{**r._mapping, "at": r.at.isoformat()} for r in rows]


# --- access (issue 6) ---------------------------------------------------------------------------
def _item_grid(session: Session, item_id: int) -> int:
    grid_id = session.execute(
        text("SELECT b.grid_id FROM task_item i JOIN building b ON b.id = i.building_id WHERE i.id = :i"),
        {"i": item_id},
    ).scalar()
    if grid_id is None:
        raise NotFound(f"没有任务条目 {item_id} / no task item {item_id}", code="unknown_item")
    return grid_id


def _require_manager(principal: Principal | None) -> None:
    if principal is None:
        return
    require_write(principal)
    require(principal, access_rules.MANAGE_TASKS)


def _require_over_buildings(session: Session, principal: Principal | None, building_ids: Iterable[int]) -> None:
    """Every building lies in a grid of the principal's area (a task may not reach beyond it)."""
    if principal is None:
        return
    grids = set(session.execute(text("SELECT DISTINCT grid_id FROM building WHERE id = ANY(:ids)"),
                                {"ids": sorted(set(building_ids))}).scalars())
    outside = grids - principal.grid_ids
    if outside:
        raise AccessDenied(
            f"所选范围超出你负责的区域（{principal.area_name}），涉及 {len(outside)} 个网格 / the selection reaches "
            f"{len(outside)} grid(s) outside your area ({principal.area_name})"
        )


def _require_over_task(session: Session, principal: Principal | None, task_id: int) -> None:
    if principal is None:
        return
    _task_row(session, task_id, principal)
    buildings = session.execute(text("SELECT DISTINCT building_id FROM task_item WHERE task_id = :t"),
                                {"t": task_id}).scalars()
    _require_over_buildings(session, principal, buildings)


def _require_staff_in_area(session: Session, principal: Principal | None, staff_id: int) -> None:
    """The staff member acted as (or given an item) works in a community of the principal's area."""
    if principal is None:
        return
    community_id = session.execute(text("SELECT community_id FROM staff WHERE id = :s"), {"s": staff_id}).scalar()
    if community_id is not None and community_id not in principal.community_ids:
        raise AccessDenied(
            f"该工作人员不在你负责的区域（{principal.area_name}）/ that staff member works outside your area "
            f"({principal.area_name})"
        )


def _require_field_work(session: Session, principal: Principal | None, item_id: int, staff_id: int) -> None:
    if principal is None:
        return
    require_write(principal)
    require(principal, access_rules.WORK_TASKS)
    require_in_area(principal, grid_id=_item_grid(session, item_id))
    _require_staff_in_area(session, principal, staff_id)


# --- creating -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Target:
    building_id: int
    household_id: int | None = None
    key_person_id: int | None = None


def _buildings_in_area(session: Session, area, settings: Settings) -> list[int]:
    check_inside_district(session, area)
    return compute_impact(session, area, _SELECTION_AREA_CLASS, settings, with_building_ids=True).building_ids


def _check_all_found(wanted: Iterable[int], found: Iterable[int], what: str) -> None:
    missing = sorted(set(wanted) - set(found))
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise NotFound(f"没有这些{what} / unknown {what} ids: {shown}", code="unknown_ids")


def _resolve(session: Session, selection: Selection, settings: Settings) -> tuple[list[int], list, bytes | None, dict]:
    """(building ids, key-person rows, task geometry as EWKB, selection JSON) for a selection."""
    data = selection.as_json()
    if selection.kind == "drawn_area":
        return _buildings_in_area(session, selection.area, settings), [], to_ewkb(selection.area), data
    if selection.kind == "controlled_area":
        version = get_version(session, selection.area_key)
        if version.ended_at is not None:
            raise TaskError(f"区域 {selection.area_key} 已解除 / area {selection.area_key} has been lifted",
                            code="area_ended")
        area = rules.as_multipolygon(shapely.geometry.shape(version.geometry))
        data["version"] = version.version
        return _buildings_in_area(session, area, settings), [], to_ewkb(area), data
    if selection.kind == "grid":
        grid = session.execute(text("SELECT id, code, ST_AsEWKB(geom) AS wkb FROM grid WHERE id = :g"),
                               {"g": selection.grid_id}).one_or_none()
        if grid is None:
            raise NotFound(f"没有网格 {selection.grid_id} / no grid {selection.grid_id}", code="unknown_grid")
        ids = session.execute(text("SELECT id FROM building WHERE grid_id = :g ORDER BY id"), {"g": grid.id}).scalars()
        data["grid_code"] = grid.code
        return list(ids), [], bytes(grid.wkb), data
    if selection.kind == "buildings":
        found = session.execute(text("SELECT id FROM building WHERE id = ANY(:ids)"),
                                {"ids": list(selection.ids)}).scalars().all()
        _check_all_found(selection.ids, found, "楼栋 / building")
        return list(selection.ids), [], None, data
    if selection.kind == "key_persons":
        persons = session.execute(
            text("SELECT kp.id, kp.household_id, h.building_id FROM key_person kp"
                 " JOIN household h ON h.id = kp.household_id WHERE kp.id = ANY(:ids) ORDER BY kp.id"),
            {"ids": list(selection.ids)},
        ).all()
        _check_all_found(selection.ids, [p.id for p in persons], "重点人员 / key person")
        return [], persons, None, data
    raise InvalidInput(f"未知选择方式 / unknown selection kind {selection.kind!r}", code="bad_selection")


def _targets(session: Session, level: str, building_ids: list[int], persons: list) -> list[_Target]:
    """Split into items: one per building or per household (for key persons: their households)."""
    if persons:
        if level == "building":
            return [_Target(b) for b in dict.fromkeys(p.building_id for p in persons)]
        by_household: dict[tuple[int, int], list[int]] = defaultdict(list)
        for p in persons:
            by_household[(p.building_id, p.household_id)].append(p.id)
        # An item is about a person only when exactly one selected person lives there.
        return [_Target(b, h, ids[0] if len(ids) == 1 else None) for (b, h), ids in by_household.items()]
    if level == "building":
        return [_Target(b) for b in building_ids]
    rows = session.execute(
        text("SELECT building_id, id FROM household WHERE building_id = ANY(:ids) ORDER BY building_id, id"),
        {"ids": building_ids},
    ).all()
    return [_Target(b, h) for b, h in rows]


_CANDIDATES_SQL = text(
    """
    WITH t AS (SELECT * FROM unnest(CAST(:b AS integer[]), CAST(:h AS integer[])) WITH ORDINALITY
               AS t(building_id, household_id, n))
    SELECT t.n,
      (SELECT min(s.id) FROM staff_assignment sa JOIN staff s ON s.id = sa.staff_id
       WHERE sa.household_id = t.household_id AND s.role = 'volunteer' AND s.active) AS volunteer,
      (SELECT min(s.id) FROM staff_assignment sa JOIN staff s ON s.id = sa.staff_id
       WHERE sa.building_id = t.building_id AND s.role = 'building_leader' AND s.active) AS building_leader,
      (SELECT min(s.id) FROM building b JOIN staff_assignment sa ON sa.grid_id = b.grid_id
       JOIN staff s ON s.id = sa.staff_id
       WHERE b.id = t.building_id AND s.role = 'grid_leader' AND s.active) AS grid_leader
    FROM t ORDER BY t.n
    """
)

# Nearest on geography (metres), among active staff of the item's community who have a location.
_NEAREST_SQL = text(
    """
    WITH t AS (SELECT * FROM unnest(CAST(:b AS integer[]), CAST(:h AS integer[])) WITH ORDINALITY
               AS t(building_id, household_id, n))
    SELECT t.n, near.id
    FROM t JOIN building b ON b.id = t.building_id JOIN grid g ON g.id = b.grid_id
    LEFT JOIN household h ON h.id = t.household_id
    CROSS JOIN LATERAL (
      SELECT s.id FROM staff s
      WHERE s.community_id = g.community_id AND s.active AND s.geom IS NOT NULL
      ORDER BY s.geom::geography <-> coalesce(h.geom, ST_PointOnSurface(b.geom))::geography, s.id
      LIMIT 1) near
    ORDER BY t.n
    """
)


def propose_assignees(
    session: Session, targets: Sequence[_Target], order: Sequence[str]
) -> list[tuple[int | None, str | None]]:
    """For each target, (staff id, source): the patch holder in the type's order, else the nearest."""
    if not targets:
        return []
    params = {"b": [t.building_id for t in targets], "h": [t.household_id for t in targets]}
    found: list[dict[str, int | None]] = [
        {"volunteer": r.volunteer, "building_leader": r.building_leader, "grid_leader": r.grid_leader}
        for r in session.execute(_CANDIDATES_SQL, params)
    ]
    picks = [rules.pick_assignee(order, c) for c in found]
    lacking = [i for i, (staff, _) in enumerate(picks) if staff is None]
    if "nearest" in order and lacking:
        sub = {"b": [params["b"][i] for i in lacking], "h": [params["h"][i] for i in lacking]}
        for n, staff_id in session.execute(_NEAREST_SQL, sub):
            found[lacking[n - 1]]["nearest"] = staff_id
        picks = [rules.pick_assignee(order, c) for c in found]
    return picks


_INSERT_ITEMS_SQL = text(
    """
    INSERT INTO task_item (task_id, building_id, household_id, key_person_id, assigned_staff_id, assignment_source,
                           state, due_at, version, geom)
    SELECT :task, t.b, t.h, t.k, t.s, t.src, 'open', t.due, 1, coalesce(h.geom, ST_PointOnSurface(bd.geom))
    FROM unnest(CAST(:b AS integer[]), CAST(:h AS integer[]), CAST(:k AS integer[]), CAST(:s AS integer[]),
                CAST(:src AS text[]), CAST(:due AS timestamptz[])) AS t(b, h, k, s, src, due)
    JOIN building bd ON bd.id = t.b
    LEFT JOIN household h ON h.id = t.h
    ON CONFLICT (task_id, key_person_id, due_at) WHERE key_person_id IS NOT NULL DO NOTHING
    RETURNING id
    """
)


def _insert_items(
    session: Session, task_id: int, targets: Sequence[_Target], dues: Sequence[datetime], order: Sequence[str]
) -> int:
    picks = propose_assignees(session, targets, order)
    result = session.execute(
        _INSERT_ITEMS_SQL,
        {
            "task": task_id,
            "b": [t.building_id for t in targets],
            "h": [t.household_id for t in targets],
            "k": [t.key_person_id for t in targets],
            "s": [p[0] for p in picks],
            "src": [p[1] for p in picks],
            "due": list(dues),
        },
    )
    return len(result.all())


def _history(
    session: Session, task_id: int, item_id: int | None, action: str, actor: str, actor_staff_id: int | None,
    at: datetime, details: dict | None = None,
) -> None:
    session.execute(
        text("INSERT INTO task_history (task_id, task_item_id, action, actor, actor_staff_id, at, details)"
             " VALUES (:t, :i, :a, :actor, :sid, :at, CAST(:d AS jsonb))"),
        {"t": task_id, "i": item_id, "a": action, "actor": actor[:64], "sid": actor_staff_id, "at": at,
         "d": json.dumps(details, ensure_ascii=False, default=str) if details is not None else None},
    )


def _default_title(ttype: TaskType, data: dict) -> str:
    where = {
        "drawn_area": lambda: "手绘区域",
        "controlled_area": lambda: f"管控区域 #{data.get('area_key')}",
        "grid": lambda: f"网格 {data.get('grid_code')}",
        "buildings": lambda: f"{len(data.get('building_ids', []))} 栋楼",
        "key_persons": lambda: f"{len(data.get('key_person_ids', []))} 名重点人员",
    }.get(data["kind"], lambda: data["kind"])()
    return f"{ttype.name_zh} · {where}"


def create_task(
    session: Session,
    settings: Settings,
    *,
    type_code: str,
    selection: Selection,
    created_by: str,
    now: datetime,
    title: str | None = None,
    due_at: datetime | None = None,
    principal: Principal | None = None,
) -> TaskSummary:
    """Create a task from what was selected on the map, split into items with proposed assignees."""
    _require_manager(principal)
    if not created_by.strip():
        raise InvalidInput("须填写任务发布人 / who gives out the task?", code="author_required")
    ttype = get_task_type(session, type_code)
    due = due_at or rules.default_due(now, ttype.default_due_hours)
    if due <= now:
        raise InvalidInput("完成时限须晚于现在 / the due time must be in the future", code="due_in_past")
    building_ids, persons, geom, data = _resolve(session, selection, settings)
    targets = _targets(session, ttype.item_level, building_ids, persons)
    rules.check_item_count(len(targets), settings.task_max_items)
    _require_over_buildings(session, principal, (t.building_id for t in targets))
    task_id = session.execute(
        text("INSERT INTO task (task_type_id, title, created_by, created_at, due_at, selection, status, version, geom)"
             " VALUES (:type, :title, :by, :now, :due, CAST(:sel AS jsonb), 'open', 1,"
             " CASE WHEN CAST(:wkb AS bytea) IS NULL THEN NULL ELSE ST_Multi(ST_GeomFromEWKB(:wkb)) END)"
             " RETURNING id"),
        {"type": ttype.id, "title": (title or _default_title(ttype, data))[:200], "by": created_by[:64], "now": now,
         "due": due, "sel": json.dumps(data, ensure_ascii=False), "wkb": geom},
    ).scalar_one()
    n = _insert_items(session, task_id, targets, [due] * len(targets), ttype.assignee_order)
    _history(session, task_id, None, "created", created_by, None, now,
             {"type": ttype.code, "items": n, "selection": data, "due_at": due.isoformat()})
    return get_task(session, task_id, now)


def close_task(
    session: Session, task_id: int, *, base_version: int, actor: str, now: datetime,
    principal: Principal | None = None,
) -> TaskSummary:
    """Close a task from the version the user saw; refused when someone changed it meanwhile."""
    _require_manager(principal)
    _require_over_task(session, principal, task_id)
    row = session.execute(
        text("UPDATE task SET status = 'closed', closed_at = :now, version = version + 1"
             " WHERE id = :id AND version = :v AND status = 'open' RETURNING id"),
        {"id": task_id, "v": base_version, "now": now},
    ).one_or_none()
    if row is None:
        current = get_task(session, task_id, now)
        if current.status == "closed":
            raise TaskClosed(f"任务 {task_id} 已关闭 / task {task_id} is already closed")
        raise TaskConflict(
            f"任务已被他人修改（当前第 {current.version} 版，你看到的是第 {base_version} 版）/ the task changed "
            f"since you opened it (version {current.version}, you saw {base_version})",
            current.as_dict(),
        )
    _history(session, task_id, None, "closed", actor, None, now)
    return get_task(session, task_id, now)


# --- field work ---------------------------------------------------------------------------------
def _staff(session: Session, staff_id: int):
    row = session.execute(text("SELECT id, name, role, phone, community_id, active FROM staff WHERE id = :s"),
                          {"s": staff_id}).one_or_none()
    if row is None:
        raise NotFound(f"没有工作人员 {staff_id} / no staff member {staff_id}", code="unknown_staff")
    if not row.active:
        raise TaskError(f"{row.name} 当前不在岗 / {row.name} is not active", code="inactive_staff")
    return row


@dataclass(frozen=True)
class _LockedItem:
    id: int
    task_id: int
    state: str
    locked_by: int | None
    locked_until: datetime | None
    version: int
    assigned_staff_id: int | None
    task_status: str
    community_id: int
    holder_name: str | None


def _lock_item(session: Session, item_id: int) -> _LockedItem:
    """The item's row, locked for this transaction; the task's row shared (no close meanwhile).

    A second caller waits here until the first commits and then reads the item as it left it. The
    holder's name is read after the lock on purpose: a row joined in the locking query would come
    from the snapshot taken before the wait (PostgreSQL re-reads only the locked rows).
    """
    row = session.execute(
        text("SELECT i.id, i.task_id, i.state, i.locked_by, i.locked_until, i.version, i.assigned_staff_id,"
             " t.status AS task_status, g.community_id"
             " FROM task_item i JOIN task t ON t.id = i.task_id JOIN building b ON b.id = i.building_id"
             " JOIN grid g ON g.id = b.grid_id"
             " WHERE i.id = :id FOR UPDATE OF i FOR SHARE OF t"),
        {"id": item_id},
    ).one_or_none()
    if row is None:
        raise NotFound(f"没有任务条目 {item_id} / no task item {item_id}", code="unknown_item")
    if row.task_status != "open":
        raise TaskClosed(f"任务 {row.task_id} 已关闭 / task {row.task_id} is closed")
    holder = None
    if row.locked_by is not None:
        holder = session.execute(text("SELECT name FROM staff WHERE id = :s"), {"s": row.locked_by}).scalar()
    return _LockedItem(**row._mapping, holder_name=holder)


def take_item(
    session: Session, item_id: int, staff: int, now: datetime, settings: Settings, *,
    principal: Principal | None = None,
) -> ItemView:
    """Lock the item to ``staff`` for ``settings.task_lock_minutes``; ItemLocked when someone holds it."""
    _require_field_work(session, principal, item_id, staff)
    who = _staff(session, staff)
    item = _lock_item(session, item_id)
    if not rules.can_take(item.state, item.locked_by, item.locked_until, who.id, now):
        if item.state == rules.LOCKED:
            local = item.locked_until.astimezone(zone(settings.timezone))
            holder = item.holder_name or "他人"
            raise ItemLocked(
                f"该条目已由 {holder} 领取，锁定至 {local:%m-%d %H:%M} / taken by {holder} until {local:%m-%d %H:%M}",
                holder_id=item.locked_by, holder_name=item.holder_name, locked_until=item.locked_until,
            )
        rules.next_state("take", item.state)  # raises BadTransition with the state named
    until = rules.lock_until(now, settings.task_lock_minutes)
    session.execute(
        text("UPDATE task_item SET state = 'locked', locked_by = :s, locked_until = :until, version = version + 1"
             " WHERE id = :id"),
        {"id": item_id, "s": who.id, "until": until},
    )
    details: dict = {"locked_until": until.isoformat()}
    if item.state == rules.LOCKED and item.locked_by not in (None, who.id):
        details["expired_lock_of"] = item.locked_by  # the previous holder's lock had run out
    elif item.state == rules.LOCKED:
        details["extended"] = True
    _history(session, item.task_id, item_id, "locked", who.name, who.id, now, details)
    return get_item(session, item_id, now)


def _require_holder(item, who) -> None:
    if item.state != rules.LOCKED:
        return  # next_state names the real problem
    if item.locked_by != who.id:
        holder = item.holder_name or "他人"
        raise NotLockHolder(f"该条目由 {holder} 领取，只有领取人可以提交 / only {holder}, who took the item, can do this")


def release_item(
    session: Session, item_id: int, staff: int, now: datetime, *, principal: Principal | None = None
) -> ItemView:
    """Give an item back (退回) before finishing it; only its holder can."""
    _require_field_work(session, principal, item_id, staff)
    who = _staff(session, staff)
    item = _lock_item(session, item_id)
    _require_holder(item, who)
    rules.next_state("release", item.state)
    session.execute(
        text("UPDATE task_item SET state = 'open', locked_by = NULL, locked_until = NULL, version = version + 1"
             " WHERE id = :id"),
        {"id": item_id},
    )
    _history(session, item.task_id, item_id, "released", who.name, who.id, now)
    return get_item(session, item_id, now)


def finish_item(
    session: Session, item_id: int, staff: int, *, outcome: str, note: str = "", now: datetime,
    principal: Principal | None = None,
) -> ItemView:
    """Close an item in the field as done or failed (failed needs a note); only by the lock holder.

    A holder whose lock ran out may still finish while nobody else has taken the item: staff in a
    stairwell without signal should not lose their work to a clock.
    """
    _require_field_work(session, principal, item_id, staff)
    who = _staff(session, staff)
    item = _lock_item(session, item_id)
    _require_holder(item, who)
    new_state = rules.next_state("finish", item.state, outcome=outcome)
    rules.check_finish_note(outcome, note)
    session.execute(
        text("UPDATE task_item SET state = :st, done_by = :s, done_at = :now, note = :note, locked_by = NULL,"
             " locked_until = NULL, version = version + 1 WHERE id = :id"),
        {"id": item_id, "st": new_state, "s": who.id, "now": now, "note": note.strip() or None},
    )
    _history(session, item.task_id, item_id, new_state, who.name, who.id, now, {"note": note.strip()} if note else None)
    if new_state == rules.DONE:
        _log_round_contacts(session, item_id, item.task_id, who, note.strip(), now)
    return get_item(session, item_id, now)


# A contact-round item done is a visit (联系走访) to each key person of the item.
CONTACT_ROUND_METHOD = "visit"
CONTACTS_LOGGED = "contacts_logged"  # the task_history action that says the item's contacts are in contact_log

# The key persons a contact-round item is about: its own person; else the persons of its household
# (of its building for a building item), only those the task selected when it was given out by person.
_ITEM_PERSONS_SQL = text(
    """
    SELECT kp.id FROM task_item i JOIN task t ON t.id = i.task_id
    JOIN key_person kp ON CASE WHEN i.key_person_id IS NOT NULL THEN kp.id = i.key_person_id
                               WHEN i.household_id IS NOT NULL THEN kp.household_id = i.household_id
                               ELSE kp.household_id IN (SELECT h.id FROM household h WHERE h.building_id = i.building_id)
                          END
    WHERE i.id = :i
      AND (i.key_person_id IS NOT NULL OR t.selection->>'kind' <> 'key_persons'
           OR t.selection->'key_person_ids' @> to_jsonb(kp.id))
    ORDER BY kp.id
    """
)


def _log_round_contacts(session: Session, item_id: int, task_id: int, who, note: str, now: datetime) -> None:
    """A contact-round item marked done records its contacts in ``contact_log`` (004 §8: the
    twice-a-week rule counts them): one per key person of the item, by who did it, at the done time,
    with their note; in the caller's transaction, and once per item (a history row says it was done:
    an item sent back and done again is not counted twice). The item's row is locked by the caller."""
    type_code = session.execute(
        text("SELECT tt.code FROM task t JOIN task_type tt ON tt.id = t.task_type_id WHERE t.id = :t"), {"t": task_id}
    ).scalar_one()
    if type_code != CONTACT_ROUND:
        return
    if session.execute(text("SELECT EXISTS (SELECT 1 FROM task_history WHERE task_item_id = :i AND action = :a)"),
                       {"i": item_id, "a": CONTACTS_LOGGED}).scalar():
        return
    persons = session.execute(_ITEM_PERSONS_SQL, {"i": item_id}).scalars().all()
    logged = session.execute(
        text("INSERT INTO contact_log (key_person_id, staff_id, contacted_at, method, outcome, note)"
             " SELECT p, :s, :at, :m, 'done', :n FROM unnest(CAST(:persons AS integer[])) AS p RETURNING id"),
        {"persons": list(persons), "s": who.id, "at": now, "m": CONTACT_ROUND_METHOD, "n": note or None},
    ).scalars().all()
    _history(session, task_id, item_id, CONTACTS_LOGGED, who.name, who.id, now,
             {"key_person_ids": list(persons), "contact_log_ids": list(logged)})


def validate_item(
    session: Session, item_id: int, staff: int, *, valid: bool, note: str = "", now: datetime, settings: Settings,
    principal: Principal | None = None,
) -> ItemView:
    """A community worker of the item's community accepts (validated) or sends back (invalidated)."""
    if principal is not None:
        _require_field_work(session, principal, item_id, staff)
        if principal.role not in settings.task_validator_roles:
            name_zh, name_en = access_rules.ROLES.get(principal.role, (principal.role, principal.role))
            raise AccessDenied(f"{name_zh}不能验收：须由社区工作者验收 / a {name_en.lower()} cannot validate: "
                               "a community worker must")
    who = _staff(session, staff)
    item = _lock_item(session, item_id)
    if who.role not in settings.task_validator_roles or who.community_id != item.community_id:
        raise NotValidator(
            f"{who.name} 不能验收：须由本社区的社区工作者验收 / {who.name} cannot validate: a community worker "
            "of the item's community must",
        )
    new_state = rules.next_state("validate", item.state, valid=valid)
    if not valid and not note.strip():
        raise InvalidInput("退回须说明原因 / sending an item back needs a note", code="note_required")
    session.execute(
        text("UPDATE task_item SET state = :st, validated_by = :s, validated_at = :now, version = version + 1"
             " WHERE id = :id"),
        {"id": item_id, "st": new_state, "s": who.id, "now": now},
    )
    _history(session, item.task_id, item_id, new_state, who.name, who.id, now,
             {"note": note.strip(), "was": item.state} if note.strip() else {"was": item.state})
    return get_item(session, item_id, now)


def reassign_item(
    session: Session, item_id: int, staff: int, *, actor: str, now: datetime, base_version: int | None = None,
    principal: Principal | None = None,
) -> ItemView:
    """Give the item to another staff member by hand; with ``base_version``, refused if it changed since."""
    if principal is not None:
        _require_manager(principal)
        require_in_area(principal, grid_id=_item_grid(session, item_id))
        _require_staff_in_area(session, principal, staff)
    to = _staff(session, staff)
    item = _lock_item(session, item_id)
    if base_version is not None and item.version != base_version:
        current = get_item(session, item_id, now)
        raise TaskConflict(
            f"条目已被他人修改（当前第 {item.version} 版）/ the item changed since you opened it "
            f"(version {item.version}, you saw {base_version})",
            current.as_dict(),
        )
    if rules.effective_state(item.state, item.locked_until, now) not in rules.UNFINISHED_STATES:
        raise BadTransition("已完成的条目不能改派 / a finished item cannot be reassigned")
    session.execute(
        text("UPDATE task_item SET assigned_staff_id = :s, assignment_source = 'manual', version = version + 1"
             " WHERE id = :id"),
        {"id": item_id, "s": to.id},
    )
    _history(session, item.task_id, item_id, "reassigned", actor, None, now,
             {"from": item.assigned_staff_id, "to": to.id, "to_name": to.name})
    return get_item(session, item_id, now)


# --- recurring contact rounds (004 §8) ----------------------------------------------------------
@dataclass(frozen=True)
class ContactRounds:
    week_start: date
    due_days: list[date]
    persons: int
    tasks_created: int
    items_created: int
    task_ids: list[int]

    def as_dict(self) -> dict:
        d = asdict(self)
        d["week_start"] = self.week_start.isoformat()
        d["due_days"] = [x.isoformat() for x in self.due_days]
        return d


_VULNERABLE_SQL = text(
    """
    SELECT DISTINCT kp.id, kp.household_id, h.building_id, g.community_id, cm.name AS community_name
    FROM key_person kp
    JOIN key_person_category_link l ON l.key_person_id = kp.id
    JOIN key_person_category c ON c.id = l.category_id AND c.vulnerable
    JOIN household h ON h.id = kp.household_id
    JOIN building b ON b.id = h.building_id
    JOIN grid g ON g.id = b.grid_id
    JOIN community cm ON cm.id = g.community_id
    ORDER BY g.community_id, kp.id
    """
)


def generate_contact_rounds(
    session: Session, settings: Settings, now: datetime, week_start: date, *, principal: Principal | None = None
) -> ContactRounds:
    """Contact-round items so each vulnerable person is visited ``vulnerable_contacts_per_week`` times.

    One task per community and week (its ``recurrence_key``); the due days are spread over the week
    (twice: Wednesday and Sunday, local time). Running it again for the same week adds only what is
    missing (a person who became vulnerable since), so it is safe to run every day. With a
    principal, only the communities of their area.
    """
    _require_manager(principal)
    ttype = get_task_type(session, CONTACT_ROUND)
    tz = zone(settings.timezone)
    monday = rules.week_start_of(week_start)
    days = rules.contact_due_days(monday, settings.vulnerable_contacts_per_week)
    dues = [rules.end_of_local_day(d, tz) for d in days]
    by_community: dict[int, list] = defaultdict(list)
    for p in session.execute(_VULNERABLE_SQL):
        if principal is None or p.community_id in principal.community_ids:
            by_community[p.community_id].append(p)

    tasks_created = items_created = 0
    task_ids: list[int] = []
    actor = "系统（每周联系）/ system"
    for community_id, persons in by_community.items():
        key = rules.recurrence_key(ttype.code, monday, community_id)
        selection = {"kind": "contact_round", "week_start": monday.isoformat(), "community_id": community_id,
                     "per_week": len(days)}
        new_id = session.execute(
            text("INSERT INTO task (task_type_id, title, created_by, created_at, due_at, selection, recurrence_key,"
                 " status, version) VALUES (:type, :title, :by, :now, :due, CAST(:sel AS jsonb), :key, 'open', 1)"
                 " ON CONFLICT (recurrence_key) DO NOTHING RETURNING id"),
            {"type": ttype.id, "title": f"{ttype.name_zh} · {persons[0].community_name} · {monday:%m月%d日}起一周",
             "by": actor, "now": now, "due": dues[-1], "sel": json.dumps(selection), "key": key},
        ).scalar()
        if new_id is None:
            task_id, status = session.execute(text("SELECT id, status FROM task WHERE recurrence_key = :k"),
                                              {"k": key}).one()
            if status != "open":
                continue
        else:
            task_id = new_id
            tasks_created += 1
        have = {(k, d) for k, d in session.execute(
            text("SELECT key_person_id, due_at FROM task_item WHERE task_id = :t AND key_person_id IS NOT NULL"),
            {"t": task_id})}
        wanted = [(p, due) for p in persons for due in dues if (p.id, due) not in have]
        n = 0
        if wanted:
            targets = [_Target(p.building_id, p.household_id, p.id) for p, _ in wanted]
            n = _insert_items(session, task_id, targets, [due for _, due in wanted], ttype.assignee_order)
        items_created += n
        task_ids.append(task_id)
        if new_id is not None:
            _history(session, task_id, None, "created", actor, None, now, {"items": n, "selection": selection})
        elif n:
            _history(session, task_id, None, "items_added", actor, None, now, {"items": n})
    return ContactRounds(
        week_start=monday, due_days=days, persons=sum(len(p) for p in by_community.values()),
        tasks_created=tasks_created, items_created=items_created, task_ids=task_ids,
    )


# --- what the tasking screens ask (issue 6) -----------------------------------------------------
@dataclass(frozen=True)
class ProposedAssignee:
    staff_id: int
    name: str
    role: str
    phone: str | None
    source: str  # where the proposal comes from: volunteer / building_leader / grid_leader / nearest
    items: int


@dataclass(frozen=True)
class TaskPreview:
    """What creating the task would make: the same selection, split and assignment as create_task."""

    type_code: str
    item_level: str
    items: int
    buildings: int
    households: int
    grids: int
    assignees: list[ProposedAssignee]
    unassigned: int
    default_title: str

    def as_dict(self) -> dict:
        return asdict(self)


def preview_task(
    session: Session, settings: Settings, *, type_code: str, selection: Selection,
    principal: Principal | None = None,
) -> TaskPreview:
    """The number of items a selection makes and who would get them, before anything is written.

    Refused like create_task: an empty or too large selection, one reaching outside the area.
    """
    _require_manager(principal)
    ttype = get_task_type(session, type_code)
    building_ids, persons, _geom, data = _resolve(session, selection, settings)
    targets = _targets(session, ttype.item_level, building_ids, persons)
    rules.check_item_count(len(targets), settings.task_max_items)
    buildings = sorted({t.building_id for t in targets})
    _require_over_buildings(session, principal, buildings)
    picks = propose_assignees(session, targets, ttype.assignee_order)
    per_staff: dict[int, tuple[str, int]] = {}
    for staff_id, source in picks:
        if staff_id is not None:
            _src, n = per_staff.get(staff_id, (source, 0))
            per_staff[staff_id] = (_src or "", n + 1)
    staff_rows = {r.id: r for r in session.execute(
        text("SELECT id, name, role, phone FROM staff WHERE id = ANY(:ids)"), {"ids": list(per_staff)})}
    assignees = sorted(
        (ProposedAssignee(sid, staff_rows[sid].name, staff_rows[sid].role, staff_rows[sid].phone, src, n)
         for sid, (src, n) in per_staff.items() if sid in staff_rows),
        key=lambda a: (-a.items, a.name, a.staff_id),
    )
    counts = session.execute(
        text("SELECT count(DISTINCT grid_id) AS grids, coalesce(sum(households), 0) AS households"
             " FROM building WHERE id = ANY(:ids)"),
        {"ids": buildings},
    ).one()
    households = (len({t.household_id for t in targets if t.household_id is not None})
                  if ttype.item_level == "household" else int(counts.households))
    return TaskPreview(
        type_code=ttype.code, item_level=ttype.item_level, items=len(targets), buildings=len(buildings),
        households=households, grids=int(counts.grids), assignees=assignees,
        unassigned=sum(1 for staff_id, _ in picks if staff_id is None), default_title=_default_title(ttype, data),
    )


@dataclass(frozen=True)
class StaffMember:
    id: int
    name: str
    role: str
    phone: str | None
    community_id: int
    how: str = ""  # how a logged-in user was matched to this staff member (acting_staff)

    def as_dict(self) -> dict:
        return asdict(self)


def staff_choices(session: Session, community_id: int) -> list[StaffMember]:
    """Active staff of a community, to give an item to by hand (grid leaders and workers first)."""
    rows = session.execute(
        text("SELECT id, name, role, phone, community_id FROM staff WHERE community_id = :c AND active"
             " ORDER BY CASE role WHEN 'grid_leader' THEN 0 WHEN 'community_worker' THEN 1"
             " WHEN 'building_leader' THEN 2 WHEN 'volunteer' THEN 3 ELSE 4 END, name, id"),
        {"c": community_id},
    ).all()
    return [StaffMember(**r._mapping) for r in rows]


# The staff role a user of each app role works as in the field.
_FIELD_STAFF_ROLE = {"grid_leader": "grid_leader", "community_worker": "community_worker", "volunteer": "volunteer"}


def acting_staff(session: Session, principal: Principal | None) -> StaffMember | None:
    """The staff member a logged-in user works as in the field, or None.

    ``app_user`` has no link to ``staff`` (yet). Until it has, a user is matched: the active staff
    member of their role inside their area whose name is the user's display name, else the first
    such member by id: for a grid leader, the grid leader assigned to their grid; for a community
    worker, a community worker of their community; for a volunteer, a volunteer who holds a household
    of their grid (or community). Setting a user's display name to a staff member's name links them.
    """
    if principal is None:
        return None
    staff_role = _FIELD_STAFF_ROLE.get(principal.role)
    if staff_role is None:
        return None
    if staff_role == "grid_leader":
        where = ("EXISTS (SELECT 1 FROM staff_assignment sa WHERE sa.staff_id = s.id"
                 " AND sa.grid_id = ANY(:grids))")
    elif staff_role == "volunteer":
        where = ("EXISTS (SELECT 1 FROM staff_assignment sa JOIN household h ON h.id = sa.household_id"
                 " JOIN building b ON b.id = h.building_id WHERE sa.staff_id = s.id AND b.grid_id = ANY(:grids))")
    else:
        where = "s.community_id = ANY(:communities)"
    row = session.execute(
        text("SELECT s.id, s.name, s.role, s.phone, s.community_id,"
             " CASE WHEN s.name = :display THEN 'name' ELSE 'area' END AS how"
             f" FROM staff s WHERE s.active AND s.role = :role AND {where}"
             " ORDER BY (s.name = :display) DESC, s.id LIMIT 1"),
        {"role": staff_role, "display": principal.display_name or "", "grids": sorted(principal.grid_ids),
         "communities": sorted(principal.community_ids)},
    ).one_or_none()
    return StaffMember(**row._mapping) if row else None


FIELD_SCOPES: tuple[str, ...] = ("todo", "mine", "finished")


def field_items(
    session: Session, principal: Principal | None, now: datetime, *, staff_id: int | None = None,
    scope: str = "todo", limit: int = 200,
) -> tuple[list[ItemView], int]:
    """Items of open tasks inside the principal's area for the field screen, by due time: (items, total).

    ``todo``: still to do (open, taken, sent back); ``mine``: assigned to or taken by ``staff_id``,
    unfinished; ``finished``: done, failed or validated.
    """
    if scope not in FIELD_SCOPES:
        raise InvalidInput(f"未知筛选 / unknown filter {scope!r}", code="bad_scope")
    where, params = _grid_scope(principal)
    unfinished = "i.state IN ('open', 'locked', 'invalidated')"
    if scope == "todo":
        where += f" AND {unfinished}"
    elif scope == "mine":
        where += f" AND {unfinished} AND (i.assigned_staff_id = :me OR (i.locked_by = :me AND i.locked_until > :now))"
    else:
        where += " AND i.state IN ('done', 'failed', 'validated')"
    params.update({"me": staff_id, "now": now, "limit": limit})
    base = (" FROM task_item i JOIN task t ON t.id = i.task_id JOIN building b ON b.id = i.building_id"
            f" WHERE t.status = 'open' AND {where}")
    total = session.execute(text("SELECT count(*)" + base), params).scalar_one()
    order = "i.done_at DESC NULLS LAST, i.id" if scope == "finished" else "i.due_at, i.id"
    rows = session.execute(
        text(_ITEM_SELECT + f" WHERE t.status = 'open' AND {where} ORDER BY {order} LIMIT :limit"), params
    ).all()
    return [ItemView(**r._mapping) for r in rows], int(total)


@dataclass(frozen=True)
class GridChoice:
    id: int
    code: str
    name: str
    community_id: int
    community_name: str
    buildings: int
    households: int
    key_persons: int


def grid_choice(session: Session, grid_id: int, *, principal: Principal | None = None) -> GridChoice:
    """A grid picked on the map, with what a task over it would reach."""
    require_in_area(principal, grid_id=grid_id)
    row = session.execute(
        text("SELECT g.id, g.code, g.name, g.community_id, c.name AS community_name,"
             " (SELECT count(*) FROM building b WHERE b.grid_id = g.id) AS buildings, g.households,"
             " (SELECT count(*) FROM key_person kp JOIN household h ON h.id = kp.household_id"
             "  JOIN building b ON b.id = h.building_id WHERE b.grid_id = g.id) AS key_persons"
             " FROM grid g JOIN community c ON c.id = g.community_id WHERE g.id = :g"),
        {"g": grid_id},
    ).one_or_none()
    if row is None:
        raise NotFound(f"没有网格 {grid_id} / no grid {grid_id}", code="unknown_grid")
    return GridChoice(**row._mapping)


def area_bounds(session: Session, *, grid_ids: Iterable[int] | None = None) -> list[list[float]] | None:
    """[[south, west], [north, east]] around the given grids (all grids for None); None when none."""
    ids = None if grid_ids is None else sorted(set(grid_ids))
    row = session.execute(
        text("SELECT ST_YMin(e), ST_XMin(e), ST_YMax(e), ST_XMax(e) FROM (SELECT ST_Extent(geom) AS e FROM grid"
             " WHERE CAST(:ids AS integer[]) IS NULL OR id = ANY(CAST(:ids AS integer[]))) x"),
        {"ids": ids},
    ).one()
    if row[0] is None:
        return None
    return [[row[0], row[1]], [row[2], row[3]]]
