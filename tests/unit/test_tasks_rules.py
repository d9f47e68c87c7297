"""Task rules without a database: item state machine, lock expiry, assignment order, selections,
contact-round days."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import shapely
from shapely.geometry import LineString, Polygon

from gridmap.config import Settings
from gridmap.domain import tasks as rules
from gridmap.domain.errors import InvalidInput
from gridmap.domain.tasks import BadTransition, Selection

NOW = datetime(2022, 11, 25, 9, 0, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_lock_setting_defaults_to_two_hours_like_the_tasking_manager():
    assert Settings.model_fields["task_lock_minutes"].default == 120
    assert rules.lock_until(NOW, 120) == NOW + timedelta(hours=2)
    with pytest.raises(InvalidInput):
        rules.lock_until(NOW, 0)


def test_a_lock_runs_out_exactly_at_its_end():
    until = NOW + timedelta(minutes=120)
    assert not rules.lock_expired(until, until - timedelta(seconds=1))
    assert rules.lock_expired(until, until)
    assert rules.effective_state("locked", until, until - timedelta(seconds=1)) == "locked"
    assert rules.effective_state("locked", until, until) == "open"
    assert rules.effective_state("done", until, until + timedelta(days=1)) == "done"


@pytest.mark.parametrize(
    ("state", "locked_by", "minutes_left", "taker", "ok"),
    [
        ("open", None, None, 1, True),
        ("invalidated", None, None, 1, True),
        ("locked", 2, 30, 1, False),  # someone else holds it
        ("locked", 2, 0, 1, True),  # their lock has run out
        ("locked", 1, 30, 1, True),  # taking again extends one's own lock
        ("done", None, None, 1, False),
        ("failed", None, None, 1, False),
        ("validated", None, None, 1, False),
    ],
)
def test_who_can_take_an_item(state, locked_by, minutes_left, taker, ok):
    until = NOW + timedelta(minutes=minutes_left) if minutes_left is not None else None
    assert rules.can_take(state, locked_by, until, taker, NOW) is ok


def test_state_machine_transitions():
    assert rules.next_state("take", "open") == "locked"
    assert rules.next_state("take", "invalidated") == "locked"
    assert rules.next_state("release", "locked") == "open"
    assert rules.next_state("finish", "locked", outcome="done") == "done"
    assert rules.next_state("finish", "locked", outcome="failed") == "failed"
    assert rules.next_state("validate", "done", valid=True) == "validated"
    assert rules.next_state("validate", "failed", valid=False) == "invalidated"
    for action, state in [("finish", "open"), ("validate", "locked"), ("take", "validated"), ("release", "done")]:
        with pytest.raises(BadTransition) as exc:
            rules.next_state(action, state, outcome="done", valid=True)
        assert exc.value.code == "bad_transition"
    with pytest.raises(InvalidInput) as exc:
        rules.next_state("finish", "locked", outcome="maybe")
    assert exc.value.code == "bad_outcome"


def test_a_failed_item_needs_a_note():
    rules.check_finish_note("done", "")
    with pytest.raises(InvalidInput) as exc:
        rules.check_finish_note("failed", "  ")
    assert exc.value.code == "note_required"
    rules.check_finish_note("failed", "无人在家")


def test_overdue_only_while_unfinished():
    due = NOW - timedelta(minutes=1)
    assert rules.is_overdue("open", None, due, NOW)
    assert rules.is_overdue("locked", NOW + timedelta(hours=1), due, NOW)
    assert rules.is_overdue("invalidated", None, due, NOW)
    assert not rules.is_overdue("done", None, due, NOW)
    assert not rules.is_overdue("open", None, NOW, NOW)  # due now is not yet late


def test_counts_include_every_state():
    counts = rules.count_by_state(["open", "open", "done"])
    assert counts == {"open": 2, "locked": 0, "done": 1, "failed": 0, "validated": 0, "invalidated": 0}
    assert rules.share_finished(counts) == pytest.approx(1 / 3)
    assert rules.share_finished(rules.count_by_state([])) == 0.0


def test_assignee_is_the_first_patch_holder_in_the_types_order():
    order = ("volunteer", "building_leader", "grid_leader", "nearest")
    assert rules.pick_assignee(order, {"volunteer": None, "building_leader": 7, "grid_leader": 3}) == (7, "building_leader")
    assert rules.pick_assignee(order, {"volunteer": 5, "building_leader": 7}) == (5, "volunteer")
    assert rules.pick_assignee(order, {"nearest": 9}) == (9, "nearest")
    assert rules.pick_assignee(order, {}) == (None, None)
    assert rules.pick_assignee(("grid_leader",), {"volunteer": 5, "grid_leader": 3}) == (3, "grid_leader")
    with pytest.raises(InvalidInput):
        rules.check_assignee_order(["volunteer", "mayor"])


def test_selections_and_their_json():
    square = Polygon([(0, 0), (1, 0), (1, 1), (0, 1)])
    drawn = Selection.drawn_area(square)
    assert drawn.area.geom_type == "MultiPolygon" and drawn.as_json() == {"kind": "drawn_area"}
    assert Selection.controlled_area(4).as_json() == {"kind": "controlled_area", "area_key": 4}
    assert Selection.grid(2).as_json() == {"kind": "grid", "grid_id": 2}
    assert Selection.buildings([3, 1, 3]).as_json() == {"kind": "buildings", "building_ids": [3, 1]}
    assert Selection.key_persons(["5"]).as_json() == {"kind": "key_persons", "key_person_ids": [5]}
    with pytest.raises(InvalidInput) as exc:
        Selection.buildings([])
    assert exc.value.code == "empty_selection"
    with pytest.raises(InvalidInput) as exc:
        Selection.drawn_area(LineString([(0, 0), (1, 1)]))
    assert exc.value.code == "not_polygon"
    bowtie = shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])
    with pytest.raises(InvalidInput) as exc:
        Selection.drawn_area(bowtie)
    assert exc.value.code == "invalid_geometry"


def test_item_count_limits():
    rules.check_item_count(1, 10)
    with pytest.raises(InvalidInput) as exc:
        rules.check_item_count(0, 10)
    assert exc.value.code == "empty_selection"
    with pytest.raises(InvalidInput) as exc:
        rules.check_item_count(11, 10)
    assert exc.value.code == "too_many_items"


def test_contacts_are_spread_over_the_week():
    monday = date(2022, 11, 21)
    assert rules.week_start_of(date(2022, 11, 27)) == monday
    assert rules.week_start_of(monday) == monday
    # The policy's twice a week (004 §8): Wednesday and Sunday.
    assert Settings.model_fields["vulnerable_contacts_per_week"].default == 2
    assert rules.contact_due_days(monday, 2) == [date(2022, 11, 23), date(2022, 11, 27)]
    assert [d.weekday() for d in rules.contact_due_days(date(2022, 11, 24), 3)] == [1, 3, 6]
    assert rules.contact_due_days(monday, 7) == [monday + timedelta(days=i) for i in range(7)]
    assert rules.contact_due_days(monday, 1) == [date(2022, 11, 27)]
    with pytest.raises(InvalidInput):
        rules.contact_due_days(monday, 0)


def test_due_by_the_end_of_the_local_day_and_one_key_per_week():
    end = rules.end_of_local_day(date(2022, 11, 23), SHANGHAI)
    assert end == datetime(2022, 11, 23, 15, 59, 59, tzinfo=UTC)  # the last second of Wednesday in Shanghai
    assert end.astimezone(SHANGHAI).date() == date(2022, 11, 23)
    assert rules.recurrence_key("contact_round", date(2022, 11, 25), 3) == "contact_round:2022-11-21:3"
