"""Coverage and staffing of a grid, from counts: the rules of issue 5.

Pure: the counts, rosters and contact times come from PostGIS (gridmap.services.coverage); every
number that turns them into a status is a setting, passed in.

* a grid leader walks ``households_per_grid_min``–``max`` households (DOMAIN.md 'The geography');
* a sealed or controlled area needs one delivery volunteer per ``households_per_delivery_volunteer``
  households (000: volunteers deliver to every door);
* a checkpoint is staffed around the clock (001, 003): the duty day is cut into equal shift slots
  from local midnight, and a slot is covered when enough distinct staff are rostered for all of it;
* vulnerable people are contacted at least twice in a rolling week (004 §8);
* home observation lasts 14 days from its start (003);
* volunteers may be moved to a short grid from a neighbouring grid that has more than it needs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

import numpy as np

CONTACT_METHODS: tuple[str, ...] = ("visit", "phone", "wechat")
# Area classes (risk_class.scheme = 'area') whose households get door-to-door delivery.
DELIVERY_AREA_CLASSES: tuple[str, ...] = ("sealed", "controlled")
# Said next to every distance figure: it is a straight line on the ellipsoid, not a walking route.
DISTANCE_MEASURE = "straight-line"

# Status words, stable for programs (the web colours by them).
LEADER_OK, LEADER_OVER, LEADER_UNDER, NO_LEADER = "ok", "over", "under", "no_leader"
DELIVERY_OK, DELIVERY_SHORT, NOT_CONTROLLED = "ok", "short", "not_controlled"
DUTY_OK, DUTY_GAPS, NO_CHECKPOINTS = "ok", "gaps", "no_checkpoints"


def share(part: int, whole: int) -> float | None:
    """``part / whole`` rounded for display; None when there is nothing to divide."""
    return round(part / whole, 4) if whole else None


# -- grid leaders --------------------------------------------------------------------------------


def households_per_leader(households: int, leaders: int) -> float | None:
    return round(households / leaders, 1) if leaders else None


def leader_status(households: int, leaders: int, minimum: int, maximum: int) -> str:
    """'no_leader', 'over' (each leader walks more than ``maximum`` households), 'under', or 'ok'."""
    if leaders <= 0:
        return NO_LEADER
    per_leader = households / leaders
    if per_leader > maximum:
        return LEADER_OVER
    if per_leader < minimum:
        return LEADER_UNDER
    return LEADER_OK


# -- delivery volunteers in sealed and controlled areas ------------------------------------------


def delivery_volunteers_needed(households_inside: int, households_per_volunteer: int) -> int:
    return math.ceil(households_inside / households_per_volunteer) if households_inside > 0 else 0


def volunteers_per_100(volunteers: int, households: int) -> float | None:
    return round(100.0 * volunteers / households, 2) if households else None


def delivery_status(households_inside: int, volunteers: int, households_per_volunteer: int) -> str:
    if households_inside <= 0:
        return NOT_CONTROLLED
    needed = delivery_volunteers_needed(households_inside, households_per_volunteer)
    return DELIVERY_SHORT if volunteers < needed else DELIVERY_OK


def spare_volunteers(volunteers: int, needed: int, kept: int = 0) -> int:
    """Volunteers a grid can lend: more than it needs, and more than it always keeps."""
    return max(volunteers - max(needed, kept), 0)


# -- checkpoint shifts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    start: datetime
    end: datetime


def duty_slots(
    now: datetime,
    tz: tzinfo,
    *,
    shifts_per_day: int,
    duty_hours_per_day: int,
    horizon_hours: int,
) -> list[Slot]:
    """The shift slots that overlap ``[now, now + horizon)``.

    A duty day is ``duty_hours_per_day`` hours from local midnight cut into ``shifts_per_day``
    equal slots (24 h and 3 shifts: 00–08, 08–16, 16–24 local time). The slot under way counts,
    whole: somebody must be on duty for all of it.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if shifts_per_day < 1 or not 0 < duty_hours_per_day <= 24 or horizon_hours < 0:
        raise ValueError("shifts per day, duty hours (1–24) and horizon must be positive")
    length = timedelta(hours=duty_hours_per_day) / shifts_per_day
    until = now + timedelta(hours=horizon_hours)
    day = now.astimezone(tz).date() - timedelta(days=1)
    last_day = until.astimezone(tz).date()
    slots: list[Slot] = []
    while day <= last_day:
        midnight = datetime.combine(day, time(0), tzinfo=tz)
        for k in range(shifts_per_day):
            start = midnight + k * length
            end = start + length
            if end > now and start < until:
                slots.append(Slot(start, end))
        day += timedelta(days=1)
    return slots


def covering_staff(slot: Slot, shifts: Iterable[tuple[int, datetime, datetime]]) -> set[int]:
    """Staff whose rostered shifts, joined end to end, cover all of ``slot``.

    ``shifts`` are (staff_id, starts_at, ends_at); one person on 08–12 and 12–16 covers 08–16,
    one person who leaves at 15:00 does not.
    """
    by_staff: dict[int, list[tuple[datetime, datetime]]] = {}
    for staff_id, start, end in shifts:
        if end > slot.start and start < slot.end:
            by_staff.setdefault(staff_id, []).append((start, end))
    covered: set[int] = set()
    for staff_id, intervals in by_staff.items():
        reached = slot.start
        for start, end in sorted(intervals):
            if start > reached:
                break
            reached = max(reached, end)
            if reached >= slot.end:
                covered.add(staff_id)
                break
    return covered


def covering_staff_counts(
    slot_group: np.ndarray,
    slot_start: np.ndarray,
    slot_end: np.ndarray,
    shift_group: np.ndarray,
    shift_staff: np.ndarray,
    shift_start: np.ndarray,
    shift_end: np.ndarray,
) -> np.ndarray:
    """``len(covering_staff(slot, shifts of the slot's group))`` for many slots at once.

    Slot ``i`` belongs to group ``slot_group[i]`` (a checkpoint) and runs from ``slot_start[i]`` to
    ``slot_end[i]``; shift ``j`` is staff ``shift_staff[j]`` at group ``shift_group[j]`` from
    ``shift_start[j]`` to ``shift_end[j]``. Times are integers on one clock (microseconds since the
    epoch, say). A city has ~30,000 slots and ~50,000 shifts a day: one call to
    :func:`covering_staff` per slot took ~0.4 s, these array operations a few milliseconds.

    The same rule as :func:`covering_staff`: a staff member's shifts at a group, sorted by start,
    are joined into islands wherever one starts no later than the ones before it reach (end to end
    counts as joined); the staff member covers a slot when one island holds all of it. A staff
    member's islands neither overlap nor touch, so at most one of them holds a slot, and counting
    the islands that hold a slot counts distinct staff.
    """
    slot_group, slot_start, slot_end = (np.asarray(a, dtype=np.int64) for a in (slot_group, slot_start, slot_end))
    counts = np.zeros(len(slot_group), dtype=np.int64)
    if not len(slot_group) or not len(shift_group):
        return counts
    # Only what lies inside the slots' span can cover a slot: clipping keeps the numbers small
    # (below) and changes no answer.
    lo, hi = int(slot_start.min()), int(slot_end.max())
    s = np.clip(np.asarray(shift_start, dtype=np.int64), lo, hi) - lo
    e = np.clip(np.asarray(shift_end, dtype=np.int64), lo, hi) - lo
    g, st = np.asarray(shift_group, dtype=np.int64), np.asarray(shift_staff, dtype=np.int64)
    order = np.lexsort((s, st, g))
    g, st, s, e = g[order], st[order], s[order], e[order]
    n = len(g)
    first_of_run = np.ones(n, dtype=bool)  # first shift of a (group, staff)
    first_of_run[1:] = (g[1:] != g[:-1]) | (st[1:] != st[:-1])
    run = np.cumsum(first_of_run) - 1
    # How far each run has reached so far: a running maximum that starts again with every run,
    # by lifting run k by k * span so that no run sees the ends of those before it.
    span = hi - lo + 1
    if int(run[-1]) * span + span >= np.iinfo(np.int64).max:
        raise ValueError("too many shifts over too long a span for one call")
    reached = np.maximum.accumulate(run * span + e) - run * span
    starts_island = first_of_run.copy()
    starts_island[1:] |= s[1:] > reached[:-1]
    heads = np.flatnonzero(starts_island)
    tails = np.r_[heads[1:] - 1, n - 1]
    i_group, i_start, i_end = g[heads], s[heads], reached[tails]
    # Every island against every slot of its group.
    by_group = np.argsort(slot_group, kind="stable")
    groups, first = np.unique(slot_group[by_group], return_index=True)
    per_group = np.diff(np.r_[first, len(by_group)])
    at = np.minimum(np.searchsorted(groups, i_group), len(groups) - 1)
    has_slots = groups[at] == i_group
    at, i_start, i_end = at[has_slots], i_start[has_slots], i_end[has_slots]
    k = per_group[at]
    pos = np.repeat(first[at], k) + (np.arange(k.sum()) - np.repeat(np.cumsum(k) - k, k))
    slot = by_group[pos]
    holds = (np.repeat(i_start, k) <= slot_start[slot] - lo) & (np.repeat(i_end, k) >= slot_end[slot] - lo)
    return np.bincount(slot[holds], minlength=len(slot_group))


# -- contacts with vulnerable people -------------------------------------------------------------


def contact_window(now: datetime, days: int) -> tuple[datetime, datetime]:
    """The rolling window ``(now - days, now]`` in which contacts are counted."""
    return now - timedelta(days=days), now


def contacts_missing(contacts_in_window: int, required: int) -> int:
    """How many more contacts the window needs; 0 means contacted on time."""
    return max(required - contacts_in_window, 0)


def contact_on_time(contacts_in_window: int, required: int) -> bool:
    return contacts_missing(contacts_in_window, required) == 0


# -- home observation ----------------------------------------------------------------------------


def observation_days_left(start: date, today: date, days: int) -> int | None:
    """Days of observation left, counting today; None when not (or no longer) under observation.

    Day one is the start date, so observation started today has ``days`` left and ends after its
    ``days``-th day.
    """
    if start > today:
        return None
    left = (start + timedelta(days=days) - today).days
    return left if left > 0 else None


# -- moving volunteers between neighbouring grids ------------------------------------------------


@dataclass(frozen=True)
class Move:
    from_grid: int
    to_grid: int
    volunteers: int


def propose_moves(
    short: Mapping[int, int],
    spare: Mapping[int, int],
    neighbours: Mapping[int, Iterable[int]],
) -> list[Move]:
    """Volunteers to lend from neighbours with spare ones to grids that are short.

    Greedy and deterministic: the grid short of most goes first (ties by id), and takes first from
    the neighbour with most spare (ties by id), until it has enough or its neighbours have none.
    """
    left = {g: n for g, n in spare.items() if n > 0}
    moves: list[Move] = []
    for grid in sorted((g for g, n in short.items() if n > 0), key=lambda g: (-short[g], g)):
        need = short[grid]
        donors = sorted((d for d in set(neighbours.get(grid, ())) if left.get(d, 0) > 0 and d != grid),
                        key=lambda d: (-left[d], d))
        for donor in donors:
            if need <= 0:
                break
            n = min(need, left[donor])
            moves.append(Move(donor, grid, n))
            left[donor] -= n
            need -= n
    return moves
