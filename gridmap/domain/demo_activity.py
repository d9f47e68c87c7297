"""Invented activity for the demo district: contacts with vulnerable people and checkpoint rosters.

Pure and deterministic: the same people, checkpoints, time and seed give the same rows. The demo
district (gridmap.domain.demo) has people and checkpoints but no history; this adds the last two
weeks of contacts (most people contacted two or three times a week, some overdue) and rosters for
the next two days (a few slots short), so the wall and the coverage metrics have something to show.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

import numpy as np

from gridmap.domain.coverage import CONTACT_METHODS, contact_window, duty_slots

_METHOD_WEIGHTS = (0.5, 0.35, 0.15)  # visit, phone, wechat
_OUTCOMES = (
    ("情况正常", 0.8),
    ("身体不适，已告知社区医生", 0.1),
    ("需代购生活物资，已安排志愿者", 0.1),
)


@dataclass(frozen=True)
class ActivitySpec:
    history_days: int = 14
    overdue_share: float = 0.15
    # Contacts happen in the daytime, local time [start, end).
    day_start_hour: int = 8
    day_end_hour: int = 20
    roster_hours: int = 48
    # Per rostered place in a slot: nobody turns up, or the person leaves this many hours early.
    missing_share: float = 0.02
    early_leave_share: float = 0.015
    early_leave_hours: float = 2.0


@dataclass(frozen=True)
class VulnerablePerson:
    id: int
    # Staff who would contact them, in order of preference (linked to the household, then leaders).
    staff_ids: tuple[int, ...]


@dataclass(frozen=True)
class RosterCheckpoint:
    id: int
    community_id: int
    shifts_per_day: int
    staff_per_shift: int


def _daytime_instant(
    rng: np.random.Generator, start: datetime, end: datetime, tz: tzinfo, spec: ActivitySpec
) -> datetime:
    """An instant in ``(start, end]``, in the daytime when the window has any."""
    span = (end - start).total_seconds()
    t = end
    for _ in range(50):
        t = end - timedelta(seconds=float(rng.random()) * span)
        if spec.day_start_hour <= t.astimezone(tz).hour < spec.day_end_hour:
            break
    whole = t.replace(microsecond=0)
    return whole if whole > start else t


def generate_contacts(
    people: Sequence[VulnerablePerson],
    now: datetime,
    tz: tzinfo,
    seed: int,
    *,
    required: int,
    window_days: int,
    spec: ActivitySpec = ActivitySpec(),
) -> list[dict]:
    """Contact rows (key_person_id, staff_id, contacted_at, method, outcome) over ``history_days``.

    Per person and per window of ``window_days`` ending now and before: ``required`` or one more
    contacts; an overdue person (``overdue_share``) has fewer than ``required`` in the latest window.
    """
    rng = np.random.default_rng(seed)
    outcomes, weights = zip(*_OUTCOMES, strict=True)
    rows: list[dict] = []
    windows = max(1, -(-spec.history_days // window_days))
    for person in people:
        overdue = rng.random() < spec.overdue_share
        end = now
        for w in range(windows):
            start, _ = contact_window(end, window_days)
            if w == 0 and overdue:
                n = int(rng.integers(0, required))
            else:
                n = int(rng.integers(max(required, 1), required + 2))
            for _ in range(n):
                staff = person.staff_ids[int(rng.integers(len(person.staff_ids)))] if person.staff_ids else None
                rows.append({
                    "key_person_id": person.id,
                    "staff_id": staff,
                    "contacted_at": _daytime_instant(rng, start, end, tz, spec),
                    "method": CONTACT_METHODS[int(rng.choice(len(CONTACT_METHODS), p=_METHOD_WEIGHTS))],
                    "outcome": outcomes[int(rng.choice(len(outcomes), p=weights))],
                })
            end = start
    rows.sort(key=lambda r: (r["contacted_at"], r["key_person_id"]))
    return rows


def generate_shifts(
    checkpoints: Sequence[RosterCheckpoint],
    pools: Mapping[int, Sequence[Sequence[int]]],
    now: datetime,
    tz: tzinfo,
    seed: int,
    *,
    duty_hours_per_day: int,
    spec: ActivitySpec = ActivitySpec(),
) -> list[dict]:
    """Shift rows (checkpoint_id, staff_id, starts_at, ends_at) for every slot of the next
    ``roster_hours``.

    ``pools`` gives, per community, tiers of staff tried in order (its own staff, then help from
    elsewhere), each taken in turn. Nobody works two slots in a row or two places at once; when
    every tier runs dry a slot stays short, and a few places are left empty or end early on purpose.
    """
    rng = np.random.default_rng(seed)
    busy_until: dict[int, datetime] = {}
    turn: dict[tuple[int, int], int] = {}
    rows: list[dict] = []
    plan = [
        (slot, ck)
        for ck in checkpoints
        for slot in duty_slots(now, tz, shifts_per_day=ck.shifts_per_day,
                               duty_hours_per_day=duty_hours_per_day, horizon_hours=spec.roster_hours)
    ]
    plan.sort(key=lambda p: (p[0].start, p[1].id))
    for slot, ck in plan:
        rest = slot.end - slot.start  # a slot off between two slots on
        for _place in range(ck.staff_per_shift):
            if rng.random() < spec.missing_share:
                continue
            staff = _next_free(pools.get(ck.community_id, ()), ck.community_id, turn, busy_until, slot.start - rest)
            if staff is None:
                continue
            busy_until[staff] = slot.end
            ends = slot.end
            if rng.random() < spec.early_leave_share:
                ends = slot.end - timedelta(hours=spec.early_leave_hours)
            rows.append({"checkpoint_id": ck.id, "staff_id": staff, "starts_at": slot.start, "ends_at": ends})
    return rows


def _next_free(
    tiers: Sequence[Sequence[int]],
    community_id: int,
    turn: dict[tuple[int, int], int],
    busy_until: dict[int, datetime],
    free_by: datetime,
) -> int | None:
    """The next staff member in turn, tier by tier, whose last shift ended by ``free_by``."""
    for t, pool in enumerate(tiers):
        for _ in range(len(pool)):
            k = turn.get((community_id, t), 0)
            turn[(community_id, t)] = (k + 1) % len(pool)
            last = busy_until.get(pool[k])
            if last is None or last <= free_by:
                return pool[k]
    return None
