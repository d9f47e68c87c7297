"""Tasks given out on the map and closed in the field: the rules, without a database.

A task (敲门行动, 健康爱心包, 封控楼栋物资配送, ...) is split into items, one per building or per
household. An item moves through a small state machine, as in HOT Tasking Manager:

    open ──take──▶ locked ──finish──▶ done / failed ──validate──▶ validated / invalidated
      ▲              │                                                        │
      └──release─────┘        invalidated ──take──▶ locked (done again) ◀─────┘

A lock is held for a number of minutes (a setting); when it has run out the item counts as open
again and anyone may take it, without anybody having to release it. Time is always passed in, so
expiry is tested by giving a later ``now``, never by sleeping.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo

from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from gridmap.domain.errors import GridmapError, InvalidInput

# --- states -------------------------------------------------------------------------------------
OPEN, LOCKED, DONE, FAILED, VALIDATED, INVALIDATED = (
    "open", "locked", "done", "failed", "validated", "invalidated",
)
ITEM_STATES: tuple[str, ...] = (OPEN, LOCKED, DONE, FAILED, VALIDATED, INVALIDATED)
# States in which the field work is still to be done (an item in them can be overdue).
UNFINISHED_STATES: frozenset[str] = frozenset({OPEN, LOCKED, INVALIDATED})
TASK_STATUSES: tuple[str, ...] = ("open", "closed")
ITEM_LEVELS: tuple[str, ...] = ("building", "household")

# action -> (states it may start from, state it leads to; None = depends on the outcome)
TRANSITIONS: dict[str, tuple[frozenset[str], str | None]] = {
    "take": (frozenset({OPEN, INVALIDATED}), LOCKED),
    "release": (frozenset({LOCKED}), OPEN),
    "finish": (frozenset({LOCKED}), None),
    "validate": (frozenset({DONE, FAILED}), None),
}
FINISH_OUTCOMES: tuple[str, ...] = (DONE, FAILED)

STATE_NAMES: dict[str, tuple[str, str]] = {
    OPEN: ("待领取", "open"),
    LOCKED: ("进行中", "taken"),
    DONE: ("已完成", "done"),
    FAILED: ("未完成", "failed"),
    VALIDATED: ("已验收", "validated"),
    INVALIDATED: ("退回重做", "sent back"),
}

# Where a proposed assignee comes from (包片联户), tried in the order a task type lists them.
ASSIGNEE_SOURCES: tuple[str, ...] = ("volunteer", "building_leader", "grid_leader", "nearest")
DEFAULT_ASSIGNEE_ORDER: dict[str, tuple[str, ...]] = {
    "building": ("building_leader", "grid_leader", "nearest"),
    "household": ("volunteer", "building_leader", "grid_leader", "nearest"),
}


# --- errors -------------------------------------------------------------------------------------
class TaskError(GridmapError):
    code = "task_error"


class ItemLocked(TaskError):
    """Another staff member holds the item and the lock has not run out."""

    code = "item_locked"

    def __init__(self, message: str, *, holder_id: int | None, holder_name: str | None, locked_until: datetime):
        super().__init__(message)
        self.holder_id = holder_id
        self.holder_name = holder_name
        self.locked_until = locked_until


class NotLockHolder(TaskError):
    code = "not_lock_holder"


class BadTransition(TaskError):
    code = "bad_transition"


class TaskClosed(TaskError):
    code = "task_closed"


class NotValidator(TaskError):
    code = "not_validator"


class TaskConflict(TaskError):
    """Someone changed the task or item since the version the user started from."""

    code = "task_conflict"

    def __init__(self, message: str, current: dict):
        super().__init__(message)
        self.current = current


# --- state machine ------------------------------------------------------------------------------
def lock_expired(locked_until: datetime | None, now: datetime) -> bool:
    """A lock has run out at ``locked_until`` itself (the holder had until then, not after)."""
    return locked_until is None or now >= locked_until


def effective_state(state: str, locked_until: datetime | None, now: datetime) -> str:
    """The state a user should see: a lock that has run out counts as open."""
    if state == LOCKED and lock_expired(locked_until, now):
        return OPEN
    return state


def lock_until(now: datetime, lock_minutes: int) -> datetime:
    if lock_minutes <= 0:
        raise InvalidInput(f"锁定时长必须为正 / lock minutes must be positive, not {lock_minutes}", code="bad_setting")
    return now + timedelta(minutes=lock_minutes)


def can_take(state: str, locked_by: int | None, locked_until: datetime | None, staff_id: int, now: datetime) -> bool:
    """Open, sent back, a lock that ran out, or the taker's own lock (taking again extends it)."""
    if state in TRANSITIONS["take"][0]:
        return True
    return state == LOCKED and (lock_expired(locked_until, now) or locked_by == staff_id)


def next_state(action: str, state: str, *, outcome: str | None = None, valid: bool | None = None) -> str:
    """The state after ``action`` from ``state``; BadTransition when the action is not allowed."""
    if action not in TRANSITIONS:
        raise BadTransition(f"未知操作 / unknown action {action!r}")
    allowed, target = TRANSITIONS[action]
    if state not in allowed:
        zh, en = STATE_NAMES.get(state, (state, state))
        raise BadTransition(
            f"当前状态“{zh}”下不能{_ACTION_ZH[action]} / cannot {action} an item that is {en}",
        )
    if action == "finish":
        if outcome not in FINISH_OUTCOMES:
            raise InvalidInput(f"结果须为 done 或 failed / outcome must be done or failed, not {outcome!r}",
                               code="bad_outcome")
        return outcome
    if action == "validate":
        if valid is None:
            raise InvalidInput("须说明验收是否通过 / say whether the item is valid", code="bad_outcome")
        return VALIDATED if valid else INVALIDATED
    assert target is not None
    return target


_ACTION_ZH = {"take": "领取", "release": "退回", "finish": "完成", "validate": "验收"}


def check_finish_note(outcome: str, note: str) -> None:
    """A failed item (nobody home, refused) must say why, or the validator cannot judge it."""
    if outcome == FAILED and not note.strip():
        raise InvalidInput("未完成须填写原因 / a failed item needs a note saying why", code="note_required")


def is_overdue(state: str, locked_until: datetime | None, due_at: datetime | None, now: datetime) -> bool:
    return due_at is not None and now > due_at and effective_state(state, locked_until, now) in UNFINISHED_STATES


def count_by_state(states: Iterable[str]) -> dict[str, int]:
    """Counts for every state (zeros included), so a progress bar needs no special cases."""
    counts = dict.fromkeys(ITEM_STATES, 0)
    for s in states:
        counts[s] = counts.get(s, 0) + 1
    return counts


def share_finished(counts: Mapping[str, int]) -> float:
    total = sum(counts.values())
    finished = sum(n for s, n in counts.items() if s not in UNFINISHED_STATES)
    return finished / total if total else 0.0


# --- assignment (包片联户) -------------------------------------------------------------------------
def check_assignee_order(order: Sequence[str]) -> tuple[str, ...]:
    unknown = [s for s in order if s not in ASSIGNEE_SOURCES]
    if unknown or not order:
        raise InvalidInput(
            f"分派顺序无效 / assignee order {list(order)!r}: each one of {', '.join(ASSIGNEE_SOURCES)}",
            code="bad_assignee_order",
        )
    return tuple(order)


def pick_assignee(order: Sequence[str], candidates: Mapping[str, int | None]) -> tuple[int | None, str | None]:
    """The first candidate in ``order`` that exists: (staff id, where it came from)."""
    for source in order:
        staff_id = candidates.get(source)
        if staff_id is not None:
            return staff_id, source
    return None, None


# --- selection ----------------------------------------------------------------------------------
SELECTION_KINDS: tuple[str, ...] = ("drawn_area", "controlled_area", "grid", "buildings", "key_persons")


@dataclass(frozen=True)
class Selection:
    """What a commander picked on the map; ``as_json`` is stored with the task."""

    kind: str
    area: BaseGeometry | None = None
    area_key: int | None = None
    grid_id: int | None = None
    ids: tuple[int, ...] = field(default_factory=tuple)

    @classmethod
    def drawn_area(cls, area: BaseGeometry) -> Selection:
        return cls("drawn_area", area=as_multipolygon(area))

    @classmethod
    def controlled_area(cls, area_key: int) -> Selection:
        return cls("controlled_area", area_key=int(area_key))

    @classmethod
    def grid(cls, grid_id: int) -> Selection:
        return cls("grid", grid_id=int(grid_id))

    @classmethod
    def buildings(cls, ids: Iterable[int]) -> Selection:
        return cls("buildings", ids=_unique_ids(ids, "楼栋 / building"))

    @classmethod
    def key_persons(cls, ids: Iterable[int]) -> Selection:
        return cls("key_persons", ids=_unique_ids(ids, "重点人员 / key person"))

    def as_json(self) -> dict:
        data: dict = {"kind": self.kind}
        if self.kind == "controlled_area":
            data["area_key"] = self.area_key
        elif self.kind == "grid":
            data["grid_id"] = self.grid_id
        elif self.kind == "buildings":
            data["building_ids"] = list(self.ids)
        elif self.kind == "key_persons":
            data["key_person_ids"] = list(self.ids)
        return data


def _unique_ids(ids: Iterable[int], what: str) -> tuple[int, ...]:
    try:
        out = tuple(dict.fromkeys(int(i) for i in ids))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{what} 编号须为整数 / ids must be integers", code="bad_selection") from exc
    if not out:
        raise InvalidInput(f"未选择任何{what} / nothing selected", code="empty_selection")
    return out


def as_multipolygon(geom: BaseGeometry) -> MultiPolygon:
    if isinstance(geom, Polygon):
        geom = MultiPolygon([geom])
    if not isinstance(geom, MultiPolygon):
        raise InvalidInput("区域必须是多边形 / an area must be a polygon", code="not_polygon")
    if geom.is_empty or not geom.is_valid:
        raise InvalidInput("区域无效（为空或自相交）/ the area is empty or self-intersecting", code="invalid_geometry")
    return geom


def check_item_count(n: int, max_items: int) -> None:
    if n == 0:
        raise InvalidInput("所选范围内没有楼栋或住户 / the selection holds no building or household",
                           code="empty_selection")
    if n > max_items:
        raise InvalidInput(
            f"任务条目过多 / {n} items exceed the limit of {max_items}; 请缩小范围 / select a smaller area",
            code="too_many_items",
        )


def default_due(created_at: datetime, due_hours: int) -> datetime:
    return created_at + timedelta(hours=due_hours)


# --- recurring contact rounds (004 §8: 每周联系不少于2次) -----------------------------------------
def week_start_of(day: date) -> date:
    """The Monday of the week ``day`` falls in."""
    return day - timedelta(days=day.weekday())


def contact_due_days(week_start: date, per_week: int) -> list[date]:
    """``per_week`` days spread evenly over the week, each the last day of its share of it.

    Twice a week gives Wednesday and Sunday; three times Tuesday, Thursday, Sunday; seven every day.
    """
    if not 1 <= per_week <= 7:
        raise InvalidInput(f"每周联系次数须在 1–7 之间 / contacts per week must be 1–7, not {per_week}",
                           code="bad_setting")
    monday = week_start_of(week_start)
    return [monday + timedelta(days=(7 * (k + 1)) // per_week - 1) for k in range(per_week)]


def end_of_local_day(day: date, tz: tzinfo) -> datetime:
    """The last second of the local day: 'by Wednesday' is due at Wednesday 23:59:59 and shows as Wednesday."""
    return datetime.combine(day, time(23, 59, 59), tzinfo=tz)


def recurrence_key(type_code: str, week_start: date, community_id: int) -> str:
    return f"{type_code}:{week_start_of(week_start).isoformat()}:{community_id}"
