"""Contact-round items done in the field are contacts (issue 6; 004 §8): finishing one as done writes
``contact_log`` (one row per key person of the item, by the staff member, at the done time, with the
note) in the same transaction, exactly once, and the contact due-lists see it."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import text

from gridmap.domain.tasks import BadTransition, Selection
from gridmap.services import contacts, coverage, tasks

WEEK = date(2022, 11, 25)


def scalar(session, sql, **params):
    return session.execute(text(sql), params).scalar_one()


def contact_rows(session, key_person_id: int) -> list:
    """The person's contacts made from FIXED_NOW on (the demo's own are older)."""
    return session.execute(text("SELECT staff_id, contacted_at, method, outcome, note FROM contact_log"
                                " WHERE key_person_id = :k AND contacted_at >= '2022-11-25 09:00+00' ORDER BY id"),
                           {"k": key_person_id}).all()


@pytest.fixture
def uncontacted(session, settings, now):
    """A vulnerable person without any contact in the window (due), with this week's two round items."""
    overdue = [o for _grid, (_total, _on_time, late) in coverage.contacts_by_grid(session, settings, now, None).items()
               for o in late if o.contacts_in_window == 0]
    assert overdue, "the demo has vulnerable people not contacted this week"
    person = overdue[0].key_person_id
    rounds = tasks.generate_contact_rounds(session, settings, now, WEEK)
    items = session.execute(text("SELECT id FROM task_item WHERE task_id = ANY(:t) AND key_person_id = :k"
                                 " ORDER BY due_at"), {"t": rounds.task_ids, "k": person}).scalars().all()
    assert len(items) == settings.vulnerable_contacts_per_week == 2
    community = scalar(session, "SELECT g.community_id FROM key_person kp JOIN household h ON h.id = kp.household_id"
                                " JOIN building b ON b.id = h.building_id JOIN grid g ON g.id = b.grid_id"
                                " WHERE kp.id = :k", k=person)
    grid = scalar(session, "SELECT b.grid_id FROM key_person kp JOIN household h ON h.id = kp.household_id"
                           " JOIN building b ON b.id = h.building_id WHERE kp.id = :k", k=person)
    staff = scalar(session, "SELECT id FROM staff WHERE community_id = :c AND role = 'grid_leader' AND active"
                            " ORDER BY id LIMIT 1", c=community)
    worker = scalar(session, "SELECT id FROM staff WHERE community_id = :c AND role = 'community_worker' AND active"
                             " ORDER BY id LIMIT 1", c=community)
    return {"person": person, "items": items, "grid": grid, "staff": staff, "worker": worker}


def status_of(session, settings, grid_id: int, person: int, at):
    (row,) = [s for s in contacts.grid_contact_status(session, None, settings, grid_id, at) if s.key_person_id == person]
    return row


def overdue_ids(session, settings, at) -> set[int]:
    return {o.key_person_id for _t, _o, late in coverage.contacts_by_grid(session, settings, at, None).values()
            for o in late}


def do(session, settings, item_id: int, staff: int, at, note: str = ""):
    tasks.take_item(session, item_id, staff, at, settings)
    return tasks.finish_item(session, item_id, staff, outcome="done", note=note, now=at)


def test_two_round_items_done_meet_the_twice_a_week_rule(session, settings, now, uncontacted):
    person, (first, second) = uncontacted["person"], uncontacted["items"]
    before = status_of(session, settings, uncontacted["grid"], person, now)
    assert (before.status, before.contacts_in_window) == (contacts.DUE, 0)
    assert person in overdue_ids(session, settings, now)

    do(session, settings, first, uncontacted["staff"], now, note="  老人在家，身体尚好  ")
    rows = contact_rows(session, person)
    assert [(r.staff_id, r.contacted_at, r.method, r.outcome, r.note) for r in rows] == [
        (uncontacted["staff"], now, "visit", "done", "老人在家，身体尚好")]
    one = status_of(session, settings, uncontacted["grid"], person, now + timedelta(minutes=1))
    assert (one.status, one.contacts_in_window, one.contacts_missing) == (contacts.DUE, 1, 1)
    assert one.last_contact == now

    later = now + timedelta(hours=30)
    do(session, settings, second, uncontacted["staff"], later)
    assert len(contact_rows(session, person)) == 2
    done = status_of(session, settings, uncontacted["grid"], person, later + timedelta(minutes=1))
    assert (done.status, done.contacts_in_window, done.contacts_missing) == (contacts.ON_TIME, 2, 0)
    assert person not in overdue_ids(session, settings, later + timedelta(minutes=1))
    actions = [h["action"] for h in tasks.task_history(session, tasks.get_item(session, first, now).task_id)
               if h["task_item_id"] == first]
    assert actions == ["locked", "done", "contacts_logged"]


def test_a_contact_is_recorded_once_per_item(session, settings, now, uncontacted):
    person, item = uncontacted["person"], uncontacted["items"][0]
    do(session, settings, item, uncontacted["staff"], now)
    assert len(contact_rows(session, person)) == 1
    with pytest.raises(BadTransition):  # a second finish of a done item
        tasks.finish_item(session, item, uncontacted["staff"], outcome="done", now=now + timedelta(minutes=5))
    # Validation, sending back, doing it again and validating again add no contact.
    later = now + timedelta(hours=1)
    tasks.validate_item(session, item, uncontacted["worker"], valid=False, note="照片不清", now=later,
                        settings=settings)
    do(session, settings, item, uncontacted["staff"], later + timedelta(minutes=10))
    tasks.validate_item(session, item, uncontacted["worker"], valid=True, now=later + timedelta(minutes=20),
                        settings=settings)
    assert len(contact_rows(session, person)) == 1


def test_failed_items_and_other_task_types_record_no_contact(session, settings, now, uncontacted):
    person, item = uncontacted["person"], uncontacted["items"][0]
    tasks.take_item(session, item, uncontacted["staff"], now, settings)
    tasks.finish_item(session, item, uncontacted["staff"], outcome="failed", note="无人应门", now=now)
    assert contact_rows(session, person) == []
    # A door-knock round reaching the same household is not a contact round.
    knock = tasks.create_task(session, settings, type_code="door_knock", selection=Selection.key_persons([person]),
                              created_by="x", now=now)
    (knock_item,) = tasks.task_items(session, knock.id, now)
    do(session, settings, knock_item.id, uncontacted["staff"], now)
    assert contact_rows(session, person) == []
    # After being sent back, the failed contact-round item done records its contact.
    tasks.validate_item(session, item, uncontacted["worker"], valid=False, note="再去一次", now=now,
                        settings=settings)
    do(session, settings, item, uncontacted["staff"], now + timedelta(hours=2))
    assert len(contact_rows(session, person)) == 1


def test_a_household_item_records_the_selected_persons_of_its_household(session, settings, now):
    household, persons = session.execute(text(
        "SELECT household_id, array_agg(id ORDER BY id) FROM key_person GROUP BY household_id"
        " HAVING count(*) >= 2 ORDER BY household_id LIMIT 1")).one()
    task = tasks.create_task(session, settings, type_code="contact_round", selection=Selection.key_persons(persons),
                             created_by="x", now=now)
    (item,) = tasks.task_items(session, task.id, now)
    assert item.household_id == household and item.key_person_id is None
    staff = scalar(session, "SELECT id FROM staff WHERE community_id = :c AND active ORDER BY id LIMIT 1",
                   c=item.community_id)
    do(session, settings, item.id, staff, now)
    logged = session.execute(text("SELECT key_person_id FROM contact_log WHERE contacted_at = :at AND staff_id = :s"
                                  " ORDER BY key_person_id"), {"at": now, "s": staff}).scalars().all()
    assert logged == list(persons)
