"""The pure rules of coverage and staffing per grid (issue 5), and the demo activity generator."""

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from gridmap.config import Settings
from gridmap.domain import coverage as rules
from gridmap.domain.demo_activity import (
    ActivitySpec,
    RosterCheckpoint,
    VulnerablePerson,
    generate_contacts,
    generate_shifts,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2022, 11, 25, 9, 0, tzinfo=UTC)  # 17:00 in Shanghai


def local(day: int, hour: int) -> datetime:
    return datetime(2022, 11, day, hour, tzinfo=SHANGHAI)


def test_settings_carry_the_policy_numbers():
    s = Settings(_env_file=None)
    assert (s.households_per_grid_min, s.households_per_grid_max) == (300, 500)
    assert (s.vulnerable_contacts_per_week, s.vulnerable_contact_window_days) == (2, 7)
    assert s.home_observation_days == 14
    assert set(s.home_observation_categories) == {"home_isolation", "risk_area_arrival"}
    assert (s.duty_hours_per_day, s.checkpoint_shifts_per_day, s.checkpoint_roster_horizon_hours) == (24, 3, 24)
    assert s.households_per_delivery_volunteer == 30
    assert s.service_walk_distance_m == 1000.0
    assert s.coverage_service_kinds == ("testing_point", "supply_point", "vaccination_point")
    assert s.timezone == "Asia/Shanghai"
    assert s.volunteers_kept_per_grid == 0
    assert Settings(_env_file=None, vulnerable_contacts_per_week=3).vulnerable_contacts_per_week == 3


@pytest.mark.parametrize(
    ("households", "leaders", "status"),
    [(400, 0, "no_leader"), (501, 1, "over"), (500, 1, "ok"), (300, 1, "ok"), (299, 1, "under"),
     (900, 2, "ok"), (1002, 2, "over"), (0, 1, "under")],
)
def test_leader_status_against_300_to_500(households, leaders, status):
    assert rules.leader_status(households, leaders, 300, 500) == status


def test_households_per_leader():
    assert rules.households_per_leader(900, 2) == 450.0
    assert rules.households_per_leader(900, 0) is None


def test_delivery_volunteers_one_per_30_households():
    assert rules.delivery_volunteers_needed(0, 30) == 0
    assert rules.delivery_volunteers_needed(30, 30) == 1
    assert rules.delivery_volunteers_needed(31, 30) == 2
    assert rules.delivery_status(0, 0, 30) == "not_controlled"
    assert rules.delivery_status(61, 2, 30) == "short"
    assert rules.delivery_status(61, 3, 30) == "ok"
    assert rules.volunteers_per_100(3, 61) == pytest.approx(4.92)
    assert rules.volunteers_per_100(3, 0) is None


def test_spare_volunteers():
    assert rules.spare_volunteers(10, 0) == 10
    assert rules.spare_volunteers(10, 4) == 6
    assert rules.spare_volunteers(3, 5) == 0
    assert rules.spare_volunteers(10, 0, kept=2) == 8
    assert rules.spare_volunteers(10, 4, kept=2) == 6


def test_three_shifts_from_local_midnight_over_the_next_24_hours():
    slots = rules.duty_slots(NOW, SHANGHAI, shifts_per_day=3, duty_hours_per_day=24, horizon_hours=24)
    # 17:00 local: the 16–24 slot under way, then the three of the next day (the last starts 16:00 < 17:00).
    assert [(s.start, s.end) for s in slots] == [
        (local(25, 16), local(26, 0)),
        (local(26, 0), local(26, 8)),
        (local(26, 8), local(26, 16)),
        (local(26, 16), local(27, 0)),
    ]


def test_slots_at_a_boundary_and_with_shorter_duty_days():
    at_boundary = local(25, 16).astimezone(UTC)
    slots = rules.duty_slots(at_boundary, SHANGHAI, shifts_per_day=3, duty_hours_per_day=24, horizon_hours=24)
    assert [s.start for s in slots] == [local(25, 16), local(26, 0), local(26, 8)]
    day_only = rules.duty_slots(NOW, SHANGHAI, shifts_per_day=2, duty_hours_per_day=12, horizon_hours=24)
    # 00–06 and 06–12 each day: at 17:00 the next are tomorrow's two.
    assert [(s.start, s.end) for s in day_only] == [(local(26, 0), local(26, 6)), (local(26, 6), local(26, 12))]
    with pytest.raises(ValueError):
        rules.duty_slots(NOW.replace(tzinfo=None), SHANGHAI, shifts_per_day=3, duty_hours_per_day=24, horizon_hours=24)


def test_a_slot_is_covered_by_whole_shifts_joined_end_to_end():
    slot = rules.Slot(local(26, 8), local(26, 16))
    shifts = [
        (1, local(26, 8), local(26, 16)),  # whole slot
        (2, local(26, 8), local(26, 12)), (2, local(26, 12), local(26, 16)),  # two halves
        (3, local(26, 8), local(26, 15)),  # leaves an hour early
        (4, local(26, 7), local(26, 10)), (4, local(26, 11), local(26, 17)),  # an hour's hole
        (5, local(26, 0), local(27, 0)),  # a long day
        (6, local(26, 16), local(27, 0)),  # the next slot
    ]
    assert rules.covering_staff(slot, shifts) == {1, 2, 5}
    assert rules.covering_staff(slot, []) == set()


def test_contacts_are_counted_in_a_rolling_week():
    since, until = rules.contact_window(NOW, 7)
    assert (since, until) == (NOW - timedelta(days=7), NOW)
    assert rules.contacts_missing(0, 2) == 2
    assert rules.contacts_missing(1, 2) == 1
    assert rules.contact_on_time(2, 2) and rules.contact_on_time(3, 2)
    assert not rules.contact_on_time(1, 2)


def test_home_observation_days_left():
    today = date(2022, 11, 25)
    assert rules.observation_days_left(today, today, 14) == 14
    assert rules.observation_days_left(today - timedelta(days=13), today, 14) == 1
    assert rules.observation_days_left(today - timedelta(days=14), today, 14) is None
    assert rules.observation_days_left(today + timedelta(days=1), today, 14) is None


def test_moves_go_from_neighbours_with_spare_to_the_shortest_grid_first():
    short = {1: 5, 2: 3}
    spare = {10: 4, 11: 2, 12: 9, 13: 1}
    neighbours = {1: [10, 11, 13], 2: [10, 12]}
    moves = rules.propose_moves(short, spare, neighbours)
    # Grid 1 (short of 5) first: 4 from 10 (most spare), then 1 from 11 (2 spare beats 13's 1).
    # Grid 2: 10 has nothing left; 3 from 12.
    assert moves == [rules.Move(10, 1, 4), rules.Move(11, 1, 1), rules.Move(12, 2, 3)]


def test_moves_never_come_from_grids_that_are_not_neighbours_or_have_none():
    assert rules.propose_moves({1: 2}, {5: 10}, {1: [6]}) == []
    assert rules.propose_moves({1: 2}, {6: 0}, {1: [6]}) == []
    assert rules.propose_moves({1: 0}, {6: 3}, {1: [6]}) == []
    # Not enough around: what there is, and the rest stays short.
    assert rules.propose_moves({1: 9}, {6: 3}, {1: [6]}) == [rules.Move(6, 1, 3)]


def test_demo_contacts_are_deterministic_and_mostly_on_time():
    people = [VulnerablePerson(i, (100 + i % 3,)) for i in range(1, 401)]
    a = generate_contacts(people, NOW, SHANGHAI, 5, required=2, window_days=7)
    assert a == generate_contacts(people, NOW, SHANGHAI, 5, required=2, window_days=7)
    assert a != generate_contacts(people, NOW, SHANGHAI, 6, required=2, window_days=7)
    since = NOW - timedelta(days=7)
    assert all(NOW - timedelta(days=14) < r["contacted_at"] <= NOW for r in a)
    assert {r["method"] for r in a} <= set(rules.CONTACT_METHODS)
    recent = Counter(r["key_person_id"] for r in a if r["contacted_at"] > since)
    overdue = sum(1 for p in people if recent[p.id] < 2)
    assert 0.08 < overdue / len(people) < 0.25
    assert max(recent.values()) <= 3


def test_demo_rosters_leave_nobody_on_two_places_or_two_slots_in_a_row():
    checkpoints = [RosterCheckpoint(i, 1, 3, 2) for i in range(1, 5)]
    pools = {1: (list(range(100, 112)), list(range(200, 230)))}
    spec = ActivitySpec(missing_share=0.0, early_leave_share=0.0)
    rows = generate_shifts(checkpoints, pools, NOW, SHANGHAI, 3, duty_hours_per_day=24, spec=spec)
    assert rows == generate_shifts(checkpoints, pools, NOW, SHANGHAI, 3, duty_hours_per_day=24, spec=spec)
    slots = rules.duty_slots(NOW, SHANGHAI, shifts_per_day=3, duty_hours_per_day=24, horizon_hours=48)
    assert len(rows) == len(checkpoints) * len(slots) * 2  # enough staff: every place filled
    by_staff: dict[int, list] = {}
    for r in rows:
        by_staff.setdefault(r["staff_id"], []).append((r["starts_at"], r["ends_at"]))
    for shifts in by_staff.values():
        shifts.sort()
        for (_, end), (start, _) in pairwise(shifts):
            assert start >= end + timedelta(hours=8)
    # With gaps switched on, some places stay empty or end early.
    gappy = generate_shifts(checkpoints, pools, NOW, SHANGHAI, 3, duty_hours_per_day=24,
                            spec=ActivitySpec(missing_share=0.2, early_leave_share=0.2))
    assert len(gappy) < len(rows)
    assert any(r["ends_at"] - r["starts_at"] < timedelta(hours=8) for r in gappy)


def test_covering_staff_counts_agree_with_covering_staff_slot_by_slot():
    import random

    import numpy as np

    rng = random.Random(8)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def us(t):
        return (t - t0) // timedelta(microseconds=1)

    for _ in range(200):
        slots, shifts = [], []
        for ck in range(rng.randint(0, 5)):
            for _k in range(rng.randint(0, 4)):
                start = t0 + timedelta(hours=rng.randint(0, 20))
                slots.append((ck, rules.Slot(start, start + timedelta(hours=rng.choice([1, 4, 8])))))
            for _j in range(rng.randint(0, 15)):  # overlapping, touching, gapped, before and after
                start = t0 + timedelta(hours=rng.randint(-3, 26), minutes=rng.choice([0, 0, 30]))
                shifts.append((ck, rng.randint(1, 4), start, start + timedelta(hours=rng.randint(1, 6))))
        expected = [len(rules.covering_staff(slot, [(st, a, b) for c, st, a, b in shifts if c == ck]))
                    for ck, slot in slots]
        got = rules.covering_staff_counts(
            np.array([c for c, _ in slots]), np.array([us(x.start) for _, x in slots]),
            np.array([us(x.end) for _, x in slots]),
            np.array([x[0] for x in shifts]), np.array([x[1] for x in shifts]),
            np.array([us(x[2]) for x in shifts]), np.array([us(x[3]) for x in shifts]))
        assert got.tolist() == expected
